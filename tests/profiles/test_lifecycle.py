"""Lifecycle stages: forwards and backwards, recorded with reasons, evaluated at read time;
and the loader of scoring.yaml and lifecycle.yaml."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from touchpoint import store
from touchpoint.audience.conditions import Compiler
from touchpoint.audience.facts import Facts, PageView
from touchpoint.profiles.lifecycle import DEFAULT_STAGES, evaluate
from touchpoint.profiles.rules import ProfileRules
from touchpoint.rules import ruleset as rules_module
from touchpoint.store.activity import Activity
from touchpoint.store.records import PageViewUpdate, Profile

ROOT = Path(__file__).parent.parent.parent
DAY = 86400
T0 = 1_800_000_000
RULES = ProfileRules()  # no points, the built-in stages


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    path = tmp_path / "t.db"
    store.migrate(path)
    conn = store.connect(path)
    store.record_consent(
        conn, "v1", at=T0, revision=1, granted={"personalisation"}, denied=set(), method="api"
    )
    return conn


def stage_of(conn: sqlite3.Connection) -> str:
    return str(conn.execute("SELECT stage FROM visitors").fetchone()[0])


def stage_now(conn: sqlite3.Connection, now: int) -> str:
    visitor = conn.execute("SELECT id FROM visitors").fetchone()[0]
    profile = store.profile_of(conn, visitor)
    assert profile is not None
    return RULES.read(profile, now)[1]


def test_a_customer_goes_inactive_and_comes_back(conn: sqlite3.Connection) -> None:
    def visit(at: int) -> None:
        store.record_page_view(
            conn, "v1", PageViewUpdate(at, None, path="/"), session_idle=1800, rules=RULES
        )

    def do(at: int, kind: str) -> None:
        store.record_activities(conn, "v1", [Activity(kind, at)], rules=RULES, now=at)

    visit(T0)
    assert stage_of(conn) == "visitor"
    do(T0 + 60, "identify")
    assert stage_of(conn) == "lead"
    do(T0 + DAY, "purchase")
    assert stage_of(conn) == "new-customer"
    # Nothing happens; reading tells the stage as of the reading.
    assert stage_now(conn, T0 + 91 * DAY) == "customer"
    assert stage_now(conn, T0 + 181 * DAY) == "inactive"
    assert stage_of(conn) == "new-customer"  # reading stores nothing
    visit(T0 + 200 * DAY)  # back after months: inactive, then welcomed back
    assert stage_of(conn) == "win-back"
    assert stage_now(conn, T0 + 240 * DAY) == "inactive"  # gone again for 40 days
    do(T0 + 250 * DAY, "purchase")
    assert stage_of(conn) == "customer"
    rows = conn.execute("SELECT before, after, at FROM stage_history ORDER BY id").fetchall()
    history = [(before, after, at - T0) for before, after, at in rows]
    assert history == [
        ("visitor", "lead", 60),
        ("lead", "new-customer", DAY),
        ("new-customer", "inactive", 200 * DAY),
        ("inactive", "win-back", 200 * DAY),
        ("win-back", "inactive", 250 * DAY),
        ("inactive", "customer", 250 * DAY),
    ]
    reasons = conn.execute("SELECT reason FROM stage_history").fetchall()
    assert reasons[2] == ("inactive: purchases gte 1, days_since_last_purchase gte 180",)


def test_withdrawing_personalisation_drops_the_stage_history(conn: sqlite3.Connection) -> None:
    store.record_activities(conn, "v1", [Activity("identify", T0)], rules=RULES, now=T0)
    assert conn.execute("SELECT count(*) FROM stage_history").fetchone() == (1,)
    store.record_consent(
        conn,
        "v1",
        at=T0 + 1,
        revision=1,
        granted={"measurement"},
        denied={"personalisation"},
        method="api",
    )
    assert conn.execute("SELECT count(*) FROM stage_history").fetchone() == (0,)


def test_stage_conditions_see_the_stage_and_score_as_of_now() -> None:
    def facts(profile: Profile) -> Facts:
        return Facts(
            PageView("/"),
            now=T0 + 200 * DAY,
            tz=rules_module.Site().timezone,
            profile=profile,
            profile_rules=RULES,
        )

    compiler = Compiler(lambda key, message: None, interests=frozenset())
    inactive = compiler.conditions({"visitor.stage": "inactive"}, "")
    assert inactive is not None
    bought = Profile(stage="customer", purchases=2, last_purchase_at=T0, stage_since=T0)
    assert inactive.test(facts(bought))
    assert not inactive.test(
        facts(Profile(stage="customer", purchases=2, last_purchase_at=T0 + 190 * DAY))
    )
    in_stage = compiler.conditions({"visitor.days_in_stage": 0}, "")
    assert in_stage is not None and in_stage.test(facts(bought))  # it only now became inactive


def test_no_matching_stage_keeps_the_stage() -> None:
    assert evaluate(Profile(stage="lead"), T0, DEFAULT_STAGES[:2], score=0)[0] == "lead"


def problems(tmp_path: Path, name: str, text: str) -> list[str]:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir(exist_ok=True)
    (rules_dir / name).write_text(text)
    found, ruleset = rules_module.check(rules_dir)
    assert ruleset is None
    return [str(p).removeprefix(str(rules_dir) + "/") for p in found]


def test_scoring_problems_name_file_line_and_a_hint(tmp_path: Path) -> None:
    text = """points:
  - {id: webinar, activity: webinr, points: 10}
  - {id: dwell, activity: dwell, points: 1, min_valu: 60}
decay: {half_life: 30 days}
thresholds:
  - {name: hot, at: 0, actions: {stage: sales}}
"""
    assert problems(tmp_path, "scoring.yaml", text) == [
        "scoring.yaml:2:19: points.0.activity: did you mean `webinar`? required: one of"
        " page_view, dwell, scroll, click, custom, form_submit, purchase, newsletter_open,"
        " email_click, webinar, identify",
        "scoring.yaml:3:45: points.1.min_valu: unknown key — did you mean `min_value`? (expected"
        " one of: activity, channel, first_time, id, max_per_day, max_per_visit, min_value,"
        " name, path, points, returning)",
        "scoring.yaml:4:9: decay.half_life: expected a duration like 7d, 12h, 30m or never, got"
        " '30 days' — write `30d`",
        "scoring.yaml:6:17: thresholds.0.at: required: the score that crosses it, above 0",
        "scoring.yaml:6:34: thresholds.0.actions.stage: one of visitor, lead, new-customer,"
        " customer, inactive, win-back",
    ]


def test_lifecycle_problems_name_file_and_line(tmp_path: Path) -> None:
    text = """stages:
  - stage: customer
    when: {purchases: {gte: x}}
  - stage: vip
  - stage: lead
    when: [{identified: yes please}, {days_since_visit: 3}]
"""
    assert problems(tmp_path, "lifecycle.yaml", text) == [
        "lifecycle.yaml:3:12: stages.0.when.purchases: `gte` needs a number, got 'x'",
        "lifecycle.yaml:4:5: stages.1.stage: required: one of visitor, lead, new-customer,"
        " customer, inactive, win-back",
        "lifecycle.yaml:6:13: stages.2.when.0.identified: must be true or false",
        "lifecycle.yaml:6:39: stages.2.when.1.days_since_visit: unknown key — did you mean"
        " `days_since_last_visit`? (expected one of: days_since_last_purchase,"
        " days_since_last_visit, identified, purchases, score, stage, visits)",
    ]


def test_the_files_are_optional_and_not_campaigns(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    assert rules_module.load(rules_dir).profile == ProfileRules()
    for name in ("scoring.yaml", "lifecycle.yaml"):
        shutil.copy(ROOT / "rules" / name, rules_dir)
    ruleset = rules_module.load(rules_dir)
    assert ruleset.campaigns == ()
    assert [t.name for t in ruleset.profile.scoring.thresholds] == ["sales-ready"]
    assert [s.stage for s in ruleset.profile.stages][:2] == ["win-back", "inactive"]


def test_evolving_a_profile_is_replace_without_its_cost() -> None:
    from dataclasses import replace

    from touchpoint.store.records import Profile

    profile = Profile(visits=3, interests={"running": 2})
    assert profile.evolve(stage="lead", visits=4) == replace(profile, stage="lead", visits=4)
    assert profile.stage == "visitor"  # the original is left as it was
    with pytest.raises(TypeError, match="no field 'stag'"):
        profile.evolve(stag="lead")
