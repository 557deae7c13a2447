"""Which popup a visitor gets on a page, and why: pure evaluation, no I/O, no clock reads.

``decide`` walks the campaigns in priority order (ties by campaign id) and returns the first
eligible popup, because a page view shows at most one popup. Every campaign it passes over gets
a reason, so "why did / didn't this visitor get that popup?" has an answer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from .rules import FOREVER, Campaign, Ruleset, Variant
from .store import CampaignHistory


@dataclass(frozen=True)
class Page:
    path: str
    title: str = ""


@dataclass(frozen=True)
class Visitor:
    """What targeting may know about a visitor: nothing unless consent allows it."""

    id: str | None = None
    campaigns: dict[str, CampaignHistory] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    campaign: Campaign
    variant: Variant


@dataclass
class Outcome:
    decision: Decision | None = None
    reasons: dict[str, str] = field(default_factory=dict)  # campaign id -> why not shown


def decide(rules: Ruleset, visitor: Visitor, page: Page, now: int, *, roll: float = 0.0) -> Outcome:
    """The popup for this page view. ``roll`` in [0, 1) picks a variant for anonymous visitors."""
    outcome = Outcome()
    for campaign in rules.campaigns:
        if outcome.decision is not None:
            outcome.reasons[campaign.id] = (
                f"a higher-priority popup ({outcome.decision.campaign.id}) won"
            )
            continue
        reason = ineligible(campaign, visitor, page, now)
        if reason:
            outcome.reasons[campaign.id] = reason
            continue
        if len(campaign.variants) == 1:
            variant = campaign.variants[0]
        else:
            point = bucket(campaign.id, visitor.id) if visitor.id else roll
            variant = pick_variant(campaign.variants, point)
        outcome.decision = Decision(campaign, variant)
    return outcome


def ineligible(campaign: Campaign, visitor: Visitor, page: Page, now: int) -> str | None:
    """Why ``campaign`` cannot show on this page view, or None when it can."""
    if not campaign.matches_path(page.path):
        return "page path does not match audience.page.path"
    history = visitor.campaigns.get(campaign.id)
    if history is None:
        return None
    for what, key, at, window in (
        ("closed", "after_close", history.last_closed_at, campaign.after_close),
        ("converted", "after_convert", history.last_converted_at, campaign.after_convert),
    ):
        if at is not None and (window is FOREVER or now - at < window):
            return f"visitor {what} it {now - at}s ago, within frequency.{key}"
    return None


def bucket(campaign_id: str, visitor_id: str) -> float:
    """A sticky, uniform point in [0, 1) for this visitor and campaign.

    The first 64 bits of SHA-256 over both ids: computed in C (a pure-Python FNV-1a cost more
    than the database read on the decide path). Changing this function reshuffles every visitor
    between variants; a test pins its values.
    """
    digest = hashlib.sha256(f"{campaign_id}:{visitor_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def pick_variant(variants: tuple[Variant, ...], point: float) -> Variant:
    total = sum(v.weight for v in variants)
    threshold = point * total
    for variant in variants:
        if threshold < variant.weight:
            return variant
        threshold -= variant.weight
    return variants[-1]
