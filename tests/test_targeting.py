"""The pure decision: priority, frequency windows, sticky variant bucketing."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from touchpoint import rules
from touchpoint.rules import Variant
from touchpoint.store import CampaignHistory
from touchpoint.targeting import Page, Visitor, bucket, decide, pick_variant

NOW = 2_000_000_000
RULE = """\
campaign: {id}
trigger: {{exit_intent: {{}}}}
priority: {priority}
frequency: {{after_close: {after_close}}}
variants:
  - {{id: a, weight: 1, template: first-order-coupon.html}}
  - {{id: b, weight: 3, template: first-order-coupon.html}}
"""


@pytest.fixture
def ruleset(rules_dir: Path) -> rules.Ruleset:
    for cid, priority, after_close in (
        ("high", 20, "1h"),
        ("also-high", 20, "never"),
        ("low", 1, "0"),
    ):
        (rules_dir / f"{cid}.yaml").write_text(
            RULE.format(id=cid, priority=priority, after_close=after_close)
        )
    (rules_dir / "first-order-coupon.yaml").unlink()
    return rules.load(rules_dir)


def closed(seconds_ago: int) -> CampaignHistory:
    return CampaignHistory(
        impressions=1, last_seen_at=NOW - seconds_ago, last_closed_at=NOW - seconds_ago
    )


def test_highest_priority_wins_and_ties_go_by_campaign_id(ruleset: rules.Ruleset) -> None:
    outcome = decide(ruleset, Visitor(), Page("/"), NOW)
    assert outcome.decision is not None
    assert outcome.decision.campaign.id == "also-high"
    assert outcome.reasons == {
        "high": "a higher-priority popup (also-high) won",
        "low": "a higher-priority popup (also-high) won",
    }


def test_frequency_windows(ruleset: rules.Ruleset) -> None:
    visitor = Visitor("v1", {"also-high": closed(10**8), "high": closed(3599), "low": closed(1)})
    outcome = decide(ruleset, visitor, Page("/"), NOW)
    assert outcome.decision is not None and outcome.decision.campaign.id == "low"
    assert outcome.reasons == {
        "also-high": "visitor closed it 100000000s ago, within frequency.after_close",
        "high": "visitor closed it 3599s ago, within frequency.after_close",
    }
    visitor.campaigns["high"] = closed(3600)
    outcome = decide(ruleset, visitor, Page("/"), NOW)
    assert outcome.decision is not None and outcome.decision.campaign.id == "high"


def test_path_mismatch_is_explained(rules_dir: Path) -> None:
    ruleset = rules.load(rules_dir)
    outcome = decide(ruleset, Visitor(), Page("/demo/"), NOW)
    assert outcome.decision is None
    assert outcome.reasons == {"first-order-coupon": "page path does not match audience.page.path"}


@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_bucket_is_sticky_and_in_range(campaign: str, visitor: str) -> None:
    point = bucket(campaign, visitor)
    assert 0 <= point < 1
    assert bucket(campaign, visitor) == point


def test_bucket_values_are_pinned() -> None:
    # A change here would move visitors between variants in the middle of a campaign.
    assert bucket("first-order-coupon", "visitor-1") == pytest.approx(0.7146167, abs=1e-7)
    assert bucket("first-order-coupon", "visitor-2") == pytest.approx(0.9191349, abs=1e-7)


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


def test_variants_split_visitors_by_weight(ruleset: rules.Ruleset) -> None:
    campaign = ruleset.by_id["also-high"]
    picks = [
        pick_variant(campaign.variants, bucket(campaign.id, f"visitor-{i}")).id for i in range(4000)
    ]
    assert 0.22 < picks.count("a") / 4000 < 0.28  # weights 1:3
