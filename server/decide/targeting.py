"""Which popups and content a visitor gets on a page view, and why: pure, no I/O, no clock.

``decide`` walks the campaigns that may match the page in priority order (ties by campaign
id). Per trigger (exit intent, a scroll depth, a click on one selector ...) the first eligible
popup is armed; the snippet shows whichever armed popup fires first, and only one per page view.
Per content slot on the page, the first eligible content campaign fills it. With
``explain=True`` every campaign gets the reason it was passed over.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from ..audience.conditions import explain
from ..audience.facts import Facts
from ..profiles.model import visit_start
from ..rules.campaigns import Campaign, Variant
from ..rules.ruleset import Ruleset
from ..store import CampaignHistory
from ..syntax.matchers import FOREVER


@dataclass(frozen=True)
class Decision:
    campaign: Campaign
    variant: Variant


@dataclass
class Outcome:
    popups: list[Decision] = field(default_factory=list)  # in priority order
    slots: dict[str, Decision] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)  # campaign id -> why not (explain)

    def chosen(self, campaign_id: str) -> Decision | None:
        for decision in (*self.popups, *self.slots.values()):
            if decision.campaign.id == campaign_id:
                return decision
        return None


def decide(
    rules: Ruleset,
    facts: Facts,
    *,
    slots: tuple[str, ...] = (),
    visitor_id: str | None = None,
    roll: float = 0.0,
    explain: bool = False,
) -> Outcome:
    """The decision for one page view.

    ``visitor_id`` (with the marketing consent) makes variants sticky; without it ``roll`` in
    [0, 1) picks one. ``explain`` evaluates every campaign, not only the page's candidates, and
    records why each one lost.
    """
    outcome = Outcome()
    reasons = outcome.reasons
    armed: dict[str, str] = {}  # trigger key -> the campaign armed for it
    gap = popup_gap(rules, facts)
    campaigns = rules.campaigns if explain else rules.candidates(facts.path)
    for campaign in campaigns:
        if campaign.kind == "popup":
            key = campaign.trigger.key  # type: ignore[union-attr]
            if key in armed:
                if explain:
                    reasons[campaign.id] = (
                        f"{armed[key]} has a higher priority and the same trigger"
                    )
                continue
            if gap:
                if explain:
                    reasons[campaign.id] = gap
                continue
        else:
            if campaign.slot not in slots:
                if explain:
                    reasons[campaign.id] = f"the page has no slot {campaign.slot!r}"
                continue
            if campaign.slot in outcome.slots:
                if explain:
                    winner = outcome.slots[campaign.slot].campaign.id
                    reasons[campaign.id] = f"{winner} has a higher priority and the same slot"
                continue
        reason = ineligible(campaign, facts, explain=explain)
        if reason:
            if explain:
                reasons[campaign.id] = reason
            continue
        decision = Decision(campaign, choose_variant(campaign, facts, visitor_id, roll))
        if campaign.kind == "popup":
            armed[campaign.trigger.key] = campaign.id  # type: ignore[union-attr]
            outcome.popups.append(decision)
        else:
            outcome.slots[campaign.slot] = decision  # type: ignore[index]
    return outcome


def popup_gap(rules: Ruleset, facts: Facts) -> str | None:
    """Why no popup may show at all: the visitor saw one less than site.popups.min_gap ago."""
    if not rules.site.min_gap or not facts.history:
        return None
    seen = [
        h.last_seen_at
        for cid, h in facts.history.items()
        if h.last_seen_at is not None and (c := rules.by_id.get(cid)) and c.kind == "popup"
    ]
    if seen and facts.now - max(seen) < rules.site.min_gap:
        return f"the visitor saw a popup {facts.now - max(seen)}s ago, within popups.min_gap"
    return None


def recheck(campaign: Campaign, rules: Ruleset, facts: Facts) -> str | None:
    """Why a popup decided earlier in the page view may no longer show: since the decision the
    visitor closed or converted it, or saw a popup, in another tab. The audience is not
    evaluated again (the page is the same); only the history-based rules are."""
    if campaign.kind == "popup" and (gap := popup_gap(rules, facts)):
        return gap
    history = facts.history.get(campaign.id) if facts.history else None
    return frequency_stop(campaign, history, facts) if history else None


def ineligible(campaign: Campaign, facts: Facts, *, explain: bool = False) -> str | None:
    """Why ``campaign`` cannot show on this page view, or None when it can. The reason is a
    short code unless ``explain`` asks for the failing condition."""
    if not campaign.audience.test(facts):
        return explain_audience(campaign, facts) if explain else "audience"
    if campaign.pools and (reason := coupon_stop(campaign, facts, explain=explain)):
        return reason
    history = facts.history.get(campaign.id) if facts.history else None
    return frequency_stop(campaign, history, facts) if history else None


def coupon_stop(campaign: Campaign, facts: Facts, *, explain: bool = False) -> str | None:
    """Why a campaign that hands out coupon codes cannot show: a visitor's own code is one per
    visitor, so it needs the marketing consent (a shared code does not); coupons.yaml's
    ``exclude`` names who never gets one; and a campaign whose pool has run out shows nothing
    rather than a popup without a code."""
    if facts.history is None and campaign.own_codes:
        return "coupons need the marketing consent (one code per visitor)"
    if campaign.exclude is not None and campaign.exclude.test(facts):
        return f"coupons.yaml exclude: {campaign.exclude.text}" if explain else "coupons exclude"
    for pool in sorted(campaign.pools & facts.empty_pools):
        return f"coupon pool {pool!r} is empty"
    return None


def explain_audience(campaign: Campaign, facts: Facts) -> str:
    reason = f"audience: {explain(campaign.audience, facts)}"
    if "personalisation" in campaign.needs and not facts.known:
        reason += " (no profile without personalisation consent: a first-time visitor)"
    elif "marketing" in campaign.needs and facts.history is None:
        reason += " (no campaign history without marketing consent)"
    return reason


def frequency_stop(campaign: Campaign, history: CampaignHistory, facts: Facts) -> str | None:
    """Which frequency rule stops ``campaign`` for this visitor now, if any."""
    now = facts.now
    for what, key, at, window in (
        ("closed", "after_close", history.last_closed_at, campaign.after_close),
        ("converted", "after_convert", history.last_converted_at, campaign.after_convert),
    ):
        if at is not None and (window is FOREVER or now - at < window):
            return f"visitor {what} it {now - at}s ago, within frequency.{key}"
    if campaign.max_impressions and history.impressions >= campaign.max_impressions:
        return f"seen {history.impressions} times, frequency.max_impressions is reached"
    if campaign.max_per_session and history.last_seen_at is not None:
        start = visit_start(
            facts.profile if facts.known else None, now=now, session_idle=facts.session_idle
        )
        if history.last_seen_at >= start:
            if history.session_impressions >= campaign.max_per_session:
                return "frequency.max_per_session is reached in this visit"
    return None


def choose_variant(
    campaign: Campaign, facts: Facts, visitor_id: str | None, roll: float
) -> Variant:
    """The visitor's variant: the one they were shown before while the campaign's version is
    unchanged (so new weights only apply to new visitors), else a sticky hash bucket."""
    if len(campaign.variants) == 1:
        return campaign.variants[0]
    history = facts.history.get(campaign.id) if facts.history else None
    if history and history.variant and history.version == campaign.version:
        for variant in campaign.variants:
            if variant.id == history.variant and variant.weight > 0:
                return variant
    salt = campaign.id if campaign.version == 1 else f"{campaign.id}@{campaign.version}"
    # Without a visitor id the page view's roll is spread per campaign, so that the same
    # visitors do not land in every campaign's holdout together.
    return pick_variant(campaign.variants, bucket(salt, visitor_id or repr(roll)))


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


def trace(
    rules: Ruleset,
    facts: Facts,
    *,
    slots: tuple[str, ...] = (),
    visitor_id: str | None = None,
    fired: str | None = None,
) -> dict[str, Any]:
    """The decision with an explanation for every campaign, as JSON-ready data (for
    ``touchpoint simulate``, and later the snippet's preview mode and the admin UI).
    ``fired`` names a trigger (``exit_intent``, ``scroll`` ...): which popup it would show."""
    outcome = decide(rules, facts, slots=slots, visitor_id=visitor_id, explain=True)
    return explanation(rules, outcome, fired=fired)


def explanation(rules: Ruleset, outcome: Outcome, *, fired: str | None = None) -> dict[str, Any]:
    """:func:`trace` of an ``outcome`` decided with ``explain=True``."""
    shown = None
    if fired:
        shown = next(
            (d.campaign.id for d in outcome.popups if _on(d) == fired),
            None,
        )
    rows = []
    for campaign in rules.campaigns:
        decision = outcome.chosen(campaign.id)
        rows.append(
            {
                "campaign": campaign.id,
                "kind": campaign.kind,
                "priority": campaign.priority,
                "source": campaign.source,
                "chosen": decision is not None,
                "variant": decision.variant.id if decision else None,
                "control": decision.variant.control if decision else None,
                "reason": outcome.reasons.get(campaign.id),
            }
        )
    return {
        "popups": [
            {"campaign": d.campaign.id, "variant": d.variant.id, "trigger": _on(d)}
            for d in outcome.popups
        ],
        "slots": {slot: d.campaign.id for slot, d in outcome.slots.items()},
        "fired": {"trigger": fired, "shows": shown} if fired else None,
        "campaigns": rows,
    }


def _on(decision: Decision) -> str:
    trigger = decision.campaign.trigger
    return trigger.client()["on"] if trigger else ""
