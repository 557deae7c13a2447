"""The pure decision: priority per trigger and slot, frequency, holdout, sticky variants."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from touchpoint import store
from touchpoint.audience.facts import Facts, PageView
from touchpoint.decide.targeting import bucket, decide, pick_variant, recheck, trace
from touchpoint.rules import ruleset as rules
from touchpoint.rules.campaigns import Variant
from touchpoint.store import CampaignHistory
from touchpoint.store.records import Profile

NOW = 2_000_000_000
UTC = ZoneInfo("UTC")
TEMPLATE = "first-order-coupon.html"


def write(rules_dir: Path, cid: str, text: str = "", **fields: Any) -> None:
    """A campaign file: ``fields`` are top-level keys (YAML flow values), ``text`` extra lines."""
    lines = [f"campaign: {cid}"]
    fields.setdefault("trigger", "{exit_intent: {}}")
    fields.setdefault("variants", f"[{{id: a, template: {TEMPLATE}}}]")
    if fields.get("kind") == "content":
        fields.pop("trigger")
    lines += [f"{key}: {value}" for key, value in fields.items()]
    (rules_dir / f"{cid}.yaml").write_text("\n".join(lines) + "\n" + text)


@pytest.fixture
def empty(rules_dir: Path) -> Path:
    (rules_dir / "first-order-coupon.yaml").unlink()
    return rules_dir


def facts(
    path: str = "/",
    *,
    profile: Profile | None = None,
    history: dict[str, CampaignHistory] | None = None,
    now: int = NOW,
    **view: Any,
) -> Facts:
    return Facts(PageView(path=path, **view), now=now, tz=UTC, profile=profile, history=history)


def armed(outcome: Any) -> list[str]:
    return [d.campaign.id for d in outcome.popups]


def test_one_popup_per_trigger_highest_priority_first_ties_by_id(empty: Path) -> None:
    write(empty, "b-exit", priority=20)
    write(empty, "a-exit", priority=20)
    write(empty, "low-exit", priority=1)
    write(empty, "scroll", trigger="{scroll_percent: 50}", priority=5)
    write(empty, "click-buy", trigger="{click: '.buy'}")
    write(empty, "click-chat", trigger="{click: '#chat'}")
    ruleset = rules.load(empty)
    outcome = decide(ruleset, facts(), explain=True)
    assert armed(outcome) == ["a-exit", "scroll", "click-buy", "click-chat"]
    assert outcome.reasons == {
        "b-exit": "a-exit has a higher priority and the same trigger",
        "low-exit": "a-exit has a higher priority and the same trigger",
    }
    assert armed(decide(ruleset, facts())) == armed(outcome)


def test_frequency_windows(empty: Path) -> None:
    write(empty, "hour", frequency="{after_close: 1h}", trigger="load")
    write(empty, "forever", frequency="{after_close: never}", trigger="{after_seconds: 3}")
    write(empty, "converts", trigger="{scroll_percent: 10}")
    ruleset = rules.load(empty)

    def closed(ago: int) -> CampaignHistory:
        return CampaignHistory(1, NOW - ago, last_closed_at=NOW - ago)

    history = {
        "forever": closed(10**8),
        "hour": closed(3599),
        "converts": CampaignHistory(1, NOW, last_converted_at=NOW - 10**8),
    }
    outcome = decide(ruleset, facts(history=history), explain=True)
    assert armed(outcome) == []
    assert outcome.reasons == {
        "converts": "visitor converted it 100000000s ago, within frequency.after_convert",
        "forever": "visitor closed it 100000000s ago, within frequency.after_close",
        "hour": "visitor closed it 3599s ago, within frequency.after_close",
    }
    history["hour"] = closed(3600)
    assert armed(decide(ruleset, facts(history=history))) == ["hour"]


def test_impression_caps(empty: Path) -> None:
    write(empty, "capped", frequency="{max_impressions: 3, max_per_session: 1}")
    ruleset = rules.load(empty)
    profile = Profile(visits=2, session_started_at=NOW - 600, last_seen_at=NOW)
    seen_this_visit = CampaignHistory(2, NOW - 60, session_impressions=1)
    seen_last_visit = replace(seen_this_visit, last_seen_at=NOW - 700)
    seen_three_times = replace(seen_last_visit, impressions=3)
    for history, reason in [
        (seen_this_visit, "frequency.max_per_session is reached in this visit"),
        (seen_last_visit, None),
        (seen_three_times, "seen 3 times, frequency.max_impressions is reached"),
    ]:
        outcome = decide(ruleset, facts(profile=profile, history={"capped": history}), explain=True)
        assert outcome.reasons.get("capped") == reason
    # Without a profile, an impression less than the idle time ago is in the same visit.
    no_profile = decide(ruleset, facts(history={"capped": seen_this_visit}), explain=True)
    assert no_profile.reasons["capped"] == "frequency.max_per_session is reached in this visit"
    long_ago = replace(seen_this_visit, last_seen_at=NOW - 1800)
    assert armed(decide(ruleset, facts(history={"capped": long_ago}))) == ["capped"]


def test_minimum_gap_between_popups(empty: Path) -> None:
    (empty / "site.yaml").write_text("popups: {min_gap: 10m}\n")
    write(empty, "a")
    write(empty, "hero", kind="content", slot="hero")
    ruleset = rules.load(empty)
    recent = {"a": CampaignHistory(1, NOW - 599), "hero": CampaignHistory(1, NOW)}
    outcome = decide(ruleset, facts(history=recent), slots=("hero",), explain=True)
    assert armed(outcome) == [] and list(outcome.slots) == ["hero"]  # content is not a popup
    assert outcome.reasons == {"a": "the visitor saw a popup 599s ago, within popups.min_gap"}
    recent["a"] = CampaignHistory(1, NOW - 600)
    assert armed(decide(ruleset, facts(history=recent))) == ["a"]


def test_recheck_applies_the_history_as_it_is_now(empty: Path) -> None:
    (empty / "site.yaml").write_text("popups: {min_gap: 10m}\n")
    write(empty, "a", frequency="{after_close: 1d}")
    write(empty, "b")
    ruleset = rules.load(empty)
    a = ruleset.by_id["a"]
    assert recheck(a, ruleset, facts(history=None)) is None  # no history known: as decided
    assert recheck(a, ruleset, facts(history={})) is None
    closed = {"a": CampaignHistory(0, None, last_closed_at=NOW - 60)}
    assert recheck(a, ruleset, facts(history=closed)) == (
        "visitor closed it 60s ago, within frequency.after_close"
    )
    other_shown = {"b": CampaignHistory(1, NOW - 30)}  # in another tab, half a minute ago
    assert recheck(a, ruleset, facts(history=other_shown)) == (
        "the visitor saw a popup 30s ago, within popups.min_gap"
    )


def test_slots_are_filled_independently(empty: Path) -> None:
    write(
        empty,
        "hero-returning",
        kind="content",
        slot="hero",
        priority=5,
        audience="{visitor.returning: true}",
    )
    write(empty, "hero-default", kind="content", slot="hero")
    write(empty, "sidebar", kind="content", slot="sidebar")
    ruleset = rules.load(empty)
    returning = Profile(visits=2)
    outcome = decide(ruleset, facts(profile=returning), slots=("hero", "sidebar"), explain=True)
    assert {s: d.campaign.id for s, d in outcome.slots.items()} == {
        "hero": "hero-returning",
        "sidebar": "sidebar",
    }
    assert outcome.reasons == {
        "hero-default": "hero-returning has a higher priority and the same slot"
    }
    outcome = decide(ruleset, facts(), slots=("hero",), explain=True)
    assert outcome.slots["hero"].campaign.id == "hero-default"
    assert outcome.reasons == {
        "hero-returning": "audience: visitor.returning is true (it is False)"
        " (no profile without personalisation consent: a first-time visitor)",
        "sidebar": "the page has no slot 'sidebar'",
    }


def test_audience_reasons_and_consent_needs(empty: Path) -> None:
    write(empty, "products", audience="{page.path: /products/*}")
    write(empty, "history", audience="{campaign.products.closed: true}", trigger="load")
    write(
        empty,
        "exclude",
        audience="{not: {visitor.attributes.late_payer: true}}",
        trigger="{scroll_percent: 9}",
    )
    ruleset = rules.load(empty)
    outcome = decide(ruleset, facts("/cart"), explain=True)
    assert outcome.reasons == {
        "products": "audience: page.path is /products/* (it is '/cart')",
        "history": "audience: campaign.products.closed happened (it is None)"
        " (no campaign history without marketing consent)",
    }
    assert armed(outcome) == ["exclude"]  # nothing known: not a late payer
    late = Profile(attributes={"late_payer": True})
    assert armed(decide(ruleset, facts("/cart", profile=late))) == []
    closed = {"products": CampaignHistory(1, NOW - 5, last_closed_at=NOW - 5)}
    assert armed(decide(ruleset, facts("/cart", history=closed))) == ["exclude", "history"]


def test_nth_page_view_and_time_on_site_need_the_visit(empty: Path) -> None:
    write(empty, "third", trigger="{nth_page_view: 3}")
    write(empty, "minute", trigger="{after_seconds_on_site: 60}")
    ruleset = rules.load(empty)
    # Without a profile: a first page view, and time on site counts from this page.
    assert armed(decide(ruleset, facts())) == ["minute"]
    visit = Profile(visits=1, session_started_at=NOW - 45, session_page_views=3)
    outcome = decide(ruleset, facts(profile=visit))
    assert armed(outcome) == ["minute", "third"]
    minute = ruleset.by_id["minute"].trigger
    assert minute is not None and minute.client(session_seconds=45) == {
        "on": "seconds",
        "seconds": 15,
    }
    assert armed(decide(ruleset, facts(profile=replace(visit, session_page_views=4)))) == ["minute"]


def test_holdout_and_sticky_variants(empty: Path) -> None:
    a, b = f"{{id: a, template: {TEMPLATE}", f"{{id: b, template: {TEMPLATE}"
    write(
        empty,
        "split",
        variants=f"[{a}, weight: 45}}, {b}, weight: 45}}, "
        "{id: holdout, weight: 10, control: true}]",
    )
    ruleset = rules.load(empty)
    picks = [
        decide(ruleset, facts(history={}), visitor_id=f"v{i}").popups[0].variant
        for i in range(3000)
    ]
    share = sum(v.control for v in picks) / len(picks)
    assert 0.08 < share < 0.12
    # The variant a visitor saw stays theirs while the version is unchanged ...
    shown_b = {"split": CampaignHistory(1, NOW - 10, variant="b", version=1)}
    for i in range(50):
        decision = decide(ruleset, facts(history=shown_b), visitor_id=f"v{i}").popups[0]
        assert decision.variant.id == "b"
    # ... and a version bump re-buckets everyone.
    write(empty, "split", version=2, variants=f"[{a}}}, {b}}}]")
    bumped = rules.load(empty)
    ids = {
        decide(bumped, facts(history=shown_b), visitor_id=f"v{i}").popups[0].variant.id
        for i in range(50)
    }
    assert ids == {"a", "b"}


def test_trace_says_what_a_trigger_would_show(empty: Path) -> None:
    write(empty, "exit", priority=2)
    write(empty, "scroll", trigger="{scroll_percent: 50}")
    result = trace(rules.load(empty), facts(), fired="scroll")
    assert result["fired"] == {"trigger": "scroll", "shows": "scroll"}
    assert [p["trigger"] for p in result["popups"]] == ["exit_intent", "scroll"]


campaign_specs = st.lists(
    st.tuples(
        st.sampled_from(["/a/*", "/a/b/*", "/a/**", "/b", "/*/c", "**", None, "/a/b/c"]),
        st.integers(0, 3),
        st.sampled_from(["load", "{scroll_percent: 5}", "exit_intent"]),
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(campaign_specs, st.sampled_from(["/", "/a", "/a/b", "/a/b/c", "/b", "/x/c", "/a/x"]))
def test_the_path_index_never_changes_a_decision(empty: Path, specs: list[Any], path: str) -> None:
    for old in empty.glob("c*.yaml"):
        old.unlink()
    for i, (pattern, priority, trigger) in enumerate(specs):
        audience = f"{{page.path: '{pattern}'}}" if pattern else "{language: de}"
        write(empty, f"c{i}", priority=priority, trigger=trigger, audience=audience)
    ruleset = rules.load(empty)
    f = facts(path, accept_language="de")
    assert armed(decide(ruleset, f)) == armed(decide(ruleset, f, explain=True))


event = st.tuples(st.integers(1, 4000), st.sampled_from(["impression", "close", "impression"]))


@settings(
    max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(st.lists(event, max_size=12), st.integers(1, 4000))
def test_frequency_over_simulated_time(
    empty: Path, events: list[tuple[int, str]], wait: int
) -> None:
    """The history the store keeps, step by step, decides like a model that sees every event."""
    write(empty, "p", frequency="{after_close: 1h, max_impressions: 5, max_per_session: 2}")
    ruleset = rules.load(empty)
    idle = ruleset.site.session_idle
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.db"
        store.migrate(path)
        conn = store.connect(path)
        conn.execute("INSERT INTO visitors (id, created_at) VALUES ('v', 0)")
        at, times = NOW, []
        for gap, kind in events:
            at += gap
            batch = [store.Event(kind, "p", "a", "/")]
            store.record_events(conn, "v", batch, at=at, visit_start=at - idle + 1)
            times.append((at, kind))
        conn.close()
        reader = store.Reader(path)
        record = reader.visitor("v")
        reader.close()
    assert record is not None
    now = at + wait
    shown = bool(decide(ruleset, facts(history=record.campaigns, now=now)).popups)

    impressions = [t for t, k in times if k == "impression"]
    closes = [t for t, k in times if k == "close"]
    visit = 0  # impressions in the current visit: a chain without an idle gap, up to now
    if impressions and now - impressions[-1] < idle:
        visit = 1
        for earlier, later in zip(impressions[-2::-1], impressions[:0:-1], strict=True):
            if later - earlier >= idle:
                break
            visit += 1
    blocked = bool(closes and now - max(closes) < 3600) or len(impressions) >= 5 or visit >= 2
    assert shown is not blocked


def test_bucket_values_are_pinned() -> None:
    # A change here would move visitors between variants in the middle of a campaign.
    assert bucket("first-order-coupon", "visitor-1") == pytest.approx(0.7146167, abs=1e-7)
    assert bucket("first-order-coupon", "visitor-2") == pytest.approx(0.9191349, abs=1e-7)


@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_bucket_is_sticky_and_in_range(campaign: str, visitor: str) -> None:
    point = bucket(campaign, visitor)
    assert 0 <= point < 1
    assert bucket(campaign, visitor) == point


@given(st.text(min_size=1, max_size=20))
def test_bucket_differs_between_campaigns(visitor: str) -> None:
    assert bucket("a", visitor) != bucket("b", visitor)


@given(
    st.lists(st.integers(min_value=0, max_value=100), min_size=1, max_size=6),
    st.floats(0, 1, exclude_max=True),
)
def test_pick_variant_respects_weights(weights: list[int], point: float) -> None:
    if sum(weights) == 0:
        return
    variants = tuple(Variant(str(i), w, "t.html") for i, w in enumerate(weights))
    chosen = pick_variant(variants, point)
    assert chosen.weight > 0
    cumulative = 0
    for variant in variants:
        if variant is chosen:
            assert cumulative <= point * sum(weights) < cumulative + variant.weight
        cumulative += variant.weight


def test_buckets_are_evenly_distributed() -> None:
    counts = [0] * 10
    for i in range(20000):
        counts[int(bucket("campaign", f"visitor-{i}") * 10)] += 1
    assert all(1800 < c < 2200 for c in counts), counts
