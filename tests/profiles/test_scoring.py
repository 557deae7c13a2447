"""Lead scoring: points, limits, decay at read time, thresholds; the seeds' example end to end."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from touchpoint import store
from touchpoint.profiles.rules import ProfileRules, apply
from touchpoint.profiles.scoring import Decay, PointRule, ScoringRules, Threshold, decayed, score_at
from touchpoint.rules import ruleset as rules_module
from touchpoint.store.activity import Activity, Effects
from touchpoint.store.records import PageViewUpdate, Profile, Touch

from ..conftest import consenting_visitor, with_sales_webhook

ROOT = Path(__file__).parent.parent.parent
DAY = 86400
T0 = 1_800_000_000
HALF = Decay(half_life=30 * DAY, after=7 * DAY)


@pytest.fixture
def example(tmp_path: Path) -> ProfileRules:
    """The scoring example, telling sales through the endpoint `sales` as its comment shows."""
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    return rules_module.load(with_sales_webhook(rules)).profile


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    return consenting_visitor(tmp_path / "t.db", at=T0)


def profile_of(conn: sqlite3.Connection, visitor: str = "v1") -> Profile:
    profile = store.profile_of(conn, visitor)
    assert profile is not None
    return profile


def record(
    conn: sqlite3.Connection, rules: ProfileRules, at: int, *activities: Activity
) -> Effects:
    effects = store.record_activities(conn, "v1", activities, rules=rules, now=at)
    assert effects is not None
    return effects


def view(conn: sqlite3.Connection, rules: ProfileRules, at: int, touch: Touch | None) -> Effects:
    update = PageViewUpdate(at, touch, path="/")
    effects = store.record_page_view(conn, "v1", update, session_idle=1800, rules=rules)
    assert effects is not None
    return effects


def test_the_seeds_example(conn: sqlite3.Connection, example: ProfileRules) -> None:
    social = Touch(
        "social",
        "facebook.com",
        {"source": "facebook", "medium": "social", "campaign": "spring-workshop"},
    )
    view(conn, example, T0, social)
    first = profile_of(conn)
    assert first.score == 5  # a consented first visit
    assert first.first_touch == social  # the campaign is kept as the source
    view(conn, example, T0 + 60, None)  # the same visit: nothing more
    view(conn, example, T0 + 2 * DAY, None)  # a return visit
    assert profile_of(conn).score == 10
    effects = record(
        conn,
        example,
        T0 + 2 * DAY + 90,
        Activity("form_submit", T0 + 2 * DAY + 90, name="workshop"),
        Activity("identify", T0 + 2 * DAY + 90),
    )
    assert profile_of(conn).score == 30
    assert [(c.before, c.after) for c in effects.stage_changes] == [("visitor", "lead")]
    record(conn, example, T0 + 5 * DAY, Activity("webinar", T0 + 5 * DAY, source="api"))
    assert profile_of(conn).score == 40
    for n in range(6):
        at = T0 + (6 + n) * DAY
        record(conn, example, at, Activity("newsletter_open", at, source="api"))
    assert profile_of(conn).score == 70
    for n in range(7):
        at = T0 + (12 + n) * DAY
        effects = record(conn, example, at, Activity("email_click", at, source="api"))
        assert effects.webhooks == []
    assert profile_of(conn).score == 140
    at = T0 + 19 * DAY
    effects = record(conn, example, at, Activity("email_click", at, source="api"))
    assert effects.crossed == ["sales-ready"]
    ((endpoint, event, payload),) = effects.webhooks
    assert (endpoint, event) == ("sales", "score.threshold")
    assert payload["visitor_id"] == "v1"
    assert payload["score"] == 150
    sent = payload["profile"]
    assert sent["attributes"] == {"sales_ready": True}
    assert sent["first_touch"]["utm"]["campaign"] == "spring-workshop"
    assert sent["identified"] is True and sent["stage"] == "lead" and sent["visits"] == 2
    # Once per crossing: more points do not notify again.
    at += DAY
    assert record(conn, example, at, Activity("email_click", at, source="api")).webhooks == []
    assert [r[0] for r in conn.execute("SELECT type FROM events WHERE type != 'page_view'")][
        :2
    ] == ["form_submit", "identify"]


def test_a_threshold_re_arms_when_the_score_falls_back_below(
    conn: sqlite3.Connection, example: ProfileRules
) -> None:
    at = T0
    for _ in range(15):
        effects = record(conn, example, at, Activity("email_click", at))
        at += DAY
    assert effects.crossed == ["sales-ready"]
    # Sixty days of silence: 7 days' grace, then 53 days of decay with a 30-day half-life.
    later = at - DAY + 60 * DAY
    assert score_at(profile_of(conn), later, example) == pytest.approx(150 * 0.5 ** (53 / 30))
    effects = record(conn, example, later, Activity("webinar", later))
    assert effects.crossed == []  # back below: re-armed, not crossed
    for n in range(1, 20):  # 44 + 10 (webinar) + 10 per click
        effects = record(conn, example, later + n, Activity("email_click", later + n))
        if effects.crossed:
            break
    assert effects.crossed == ["sales-ready"] and n == 10
    assert len(effects.webhooks) == 1


def rule(**kwargs) -> PointRule:  # type: ignore[no-untyped-def]
    return PointRule(**{"id": "r", "activity": "click", "points": 1.0, **kwargs})


def total(rules: ScoringRules, *activities: Activity, profile: Profile | None = None) -> float:
    result, _ = apply(
        profile or Profile(), activities, ProfileRules(rules), now=T0 + 10 * DAY, visitor_id="v"
    )
    return result.score


def test_conditions_narrow_what_earns_points() -> None:
    path = rules_module.conditions.matchers.globs("/pricing/*", segments=True)[0]
    rules = ScoringRules(points=(rule(activity="dwell", min_value=60, path=path),))
    assert total(rules, Activity("dwell", T0, path="/pricing/pro", value=60)) == 1
    assert total(rules, Activity("dwell", T0, path="/pricing/pro", value=59)) == 0
    assert total(rules, Activity("dwell", T0, path="/blog/x", value=600)) == 0
    assert total(rules, Activity("scroll", T0, path="/pricing/pro", value=100)) == 0


def test_limits_per_day_per_visit_and_first_time() -> None:
    clicks = [Activity("click", T0 + n * 3600, name="x") for n in range(30)]  # 30 hours
    per_day = ScoringRules(points=(rule(max_per_day=2),))
    assert total(per_day, *clicks) == 4  # two calendar days (UTC)
    once = ScoringRules(points=(rule(first_time=True),))
    assert total(once, *clicks) == 1
    per_visit = ScoringRules(points=(rule(max_per_visit=3),))
    visiting = Profile(session_started_at=T0)
    assert total(per_visit, *clicks, profile=visiting) == 3


def test_the_score_never_goes_below_zero() -> None:
    rules = ScoringRules(points=(rule(points=-5.0),))
    assert total(rules, Activity("click", T0)) == 0


def test_decay_holds_during_the_grace_period_then_halves() -> None:
    assert decayed(100, T0, T0 + 7 * DAY, HALF) == 100
    assert decayed(100, T0, T0 + 37 * DAY, HALF) == 50
    assert decayed(100, T0, T0 + 67 * DAY, HALF) == 25
    assert decayed(100, T0, T0 + 999 * DAY, Decay()) == 100  # no decay configured


def test_an_activity_restarts_the_grace_period() -> None:
    rules = ProfileRules(ScoringRules(decay=HALF))
    profile = Profile(score=100, score_at=T0)
    later, _ = apply(
        profile,
        [Activity("custom", T0 + 37 * DAY, name="x")],
        rules,
        now=T0 + 37 * DAY,
        visitor_id="v",
    )
    assert later.score == 50 and later.score_at == T0 + 37 * DAY
    assert score_at(later, T0 + 44 * DAY, rules) == 50


scores = st.floats(min_value=0, max_value=1e9, allow_nan=False)
times = st.integers(min_value=0, max_value=10 * 365 * DAY)
decays = st.builds(
    Decay,
    half_life=st.integers(min_value=1, max_value=365 * DAY),
    after=st.integers(min_value=0, max_value=90 * DAY),
)


@given(scores, times, times, decays)
def test_decay_never_increases_without_activity(score: float, a: int, b: int, decay: Decay) -> None:
    early, late = sorted((a, b))
    assert decayed(score, 0, late, decay) <= decayed(score, 0, early, decay) <= score


@given(scores, times, decays)
def test_reading_twice_gives_what_reading_once_gives(score: float, t: int, decay: Decay) -> None:
    profile = Profile(score=score, score_at=0)
    rules = ScoringRules(decay=decay)
    once = score_at(profile, t, rules)
    assert score_at(profile, t, rules) == once
    assert profile.score == score  # reading stores nothing


@given(
    scores,
    st.integers(min_value=1, max_value=365 * DAY),
    st.integers(0, 90 * DAY),
    st.integers(1, 4),
)
def test_half_life_is_exact(score: float, half_life: int, after: int, n: int) -> None:
    decay = Decay(half_life=half_life, after=after)
    assert decayed(score, 0, after + n * half_life, decay) == score * 0.5**n


def test_threshold_actions_set_the_stage_and_attributes() -> None:
    threshold = Threshold("hot", 10, stage="lead", attributes={"hot": True})
    rules = ProfileRules(ScoringRules(points=(rule(points=10.0),), thresholds=(threshold,)))
    profile, effects = apply(Profile(), [Activity("click", T0)], rules, now=T0, visitor_id="v")
    assert effects.crossed == ["hot"] and effects.webhooks == []
    assert profile.attributes == {"hot": True}
    assert [c.reason for c in effects.stage_changes] == ["score reached 10 (hot)"]
    assert profile.stage == "lead"  # and stays: the default stages keep a lead a lead
    again, effects = apply(profile, [Activity("click", T0 + 1)], rules, now=T0 + 1, visitor_id="v")
    assert again.stage == "lead" and effects.stage_changes == [] and effects.crossed == []


def test_measurement_alone_stores_the_events_but_no_profile(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    store.migrate(path)
    conn = store.connect(path)
    store.record_consent(
        conn, "m", at=T0, revision=1, granted={"measurement"}, denied=set(), method="api"
    )
    rules = ProfileRules(ScoringRules(points=(rule(),)))
    activity = Activity("click", T0, path="/", name="size-guide", props={"size": 42})
    assert store.record_activities(conn, "m", [activity], rules=rules, now=T0) is None
    assert store.record_activities(conn, "nobody", [activity], rules=rules, now=T0) is None
    assert conn.execute("SELECT type, name, props FROM events").fetchall() == [
        ("click", "size-guide", '{"size":42}')
    ]
    assert conn.execute("SELECT score, data FROM visitors").fetchone() == (0, "{}")


def test_a_threshold_added_later_fires_at_the_next_activity() -> None:
    rules = ProfileRules(ScoringRules(thresholds=(Threshold("warm", 50, webhook="sales"),)))
    profile = Profile(score=80, score_at=T0)
    profile, effects = apply(
        profile, [Activity("custom", T0, name="x")], rules, now=T0, visitor_id="v"
    )
    assert effects.crossed == ["warm"] and len(effects.webhooks) == 1
