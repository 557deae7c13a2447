"""Revealing a popup's coupon code (``POST /tp/v1/coupons/reveal``, docs/coupons.md): the
campaign's decision checked again for this visitor (their sticky variant, the coupon exclusion,
the consent a code of their own needs), then the claim as one unit of the writer.

A popup's template marks where its code goes (``data-tp-coupon``); the snippet asks for the code
when that part of the popup is first shown, so a popup that is decided but never seen burns no
code. The claim gives one code per visitor per pool (asking again returns the same code) and
never one code to two visitors, with any number of worker processes (the claim runs in a
``BEGIN IMMEDIATE`` transaction).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import store
from ..audience.facts import PageView
from ..consent import categories as consent
from ..coupons import pools as coupons
from ..coupons.pools import Pool
from ..errors import RequestError
from ..rules.ruleset import Ruleset
from ..store import Connection
from .page import facts_for
from .targeting import choose_variant

Claim = Callable[[Connection], tuple[store.Claim | None, int]]


@dataclass(frozen=True)
class Reveal:
    """What a reveal hands out: a shared code at once (``shown``), or a ``claim`` for the
    writer that returns the visitor's code (None when the pool ran out) and the webhooks it
    queued."""

    pool: Pool
    campaign: str
    shown: dict[str, Any] | None = None
    claim: Claim | None = None


def reveal(
    rules: Ruleset,
    campaign_id: str,
    variant_id: str,
    record: store.VisitorRecord | None,
    *,
    now: int,
    revision: int,
    conn: Connection,
) -> Reveal:
    """The coupon of ``variant_id`` of ``campaign_id`` for this visitor; ``conn`` reads the stock
    of a shared code. Raises RequestError: 404 no such coupon, 409 excluded or not this
    visitor's variant, 403 a code of one's own without the marketing consent, 410 ended."""
    campaign = rules.by_id.get(campaign_id)
    variant = next((v for v in campaign.variants if v.id == variant_id), None) if campaign else None
    if campaign is None or variant is None or variant.coupon is None:
        raise RequestError(
            f"no coupon for campaign {campaign_id!r}, variant {variant_id!r}", status=404
        )
    pool = rules.pools[variant.coupon]
    profile, history = consent.usable(record, revision)
    facts = facts_for(rules, PageView(path="/"), now=now, profile=profile, history=history)
    if campaign.exclude is not None and campaign.exclude.test(facts):
        raise RequestError("this visitor is excluded from coupons (coupons.yaml)", status=409)
    if record is None or history is None:
        if pool.codes != "static":
            raise RequestError(
                "a visitor's own coupon code needs the marketing consent", status=403
            )
        # A shared code for a visitor without an id: shown, not recorded (no attribution).
        if not store.pool_has_codes(conn, pool, now=now):
            raise RequestError(f"coupon pool {pool.name!r} has ended", status=410)
        shown = {"code": pool.code, "pool": pool.name, "expires_at": pool.expires(now)}
        return Reveal(pool, campaign.id, shown=shown)
    if choose_variant(campaign, facts, record.id, 0.0).id != variant.id:
        raise RequestError(f"variant {variant.id!r} is not this visitor's", status=409)
    endpoints, visitor = rules.site.webhooks, record.id

    def claim(conn: Connection) -> tuple[store.Claim | None, int]:
        if not store.visitor_exists(conn, visitor):  # erased since the request read it
            raise RequestError("this visitor no longer exists; reload the page", status=409)
        got = store.claim_coupon(conn, pool, visitor, campaign.id, variant.id, now)
        queued = 0
        if got is not None and got.new:
            on = store.day(now, rules.site.timezone)
            store.count_campaign(conn, on, campaign.id, variant.id, campaign.version, reveals=1)
        if got is not None:
            queued = coupons.queue_claim(
                conn,
                endpoints,
                pool,
                got,
                visitor_id=visitor,
                campaign=campaign.id,
                variant=variant.id,
                now=now,
            )
        return got, queued

    return Reveal(pool, campaign.id, claim=claim)
