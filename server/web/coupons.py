"""``POST /tp/v1/coupons/reveal``: the visitor's coupon code, assigned when it is revealed.

A popup's template marks where its code goes (``data-tp-coupon``); the snippet asks for the code
when that part of the popup is first shown — on show, or after the form step — so a popup that
is decided but never seen burns no code. The claim is one unit of the writer: one code per
visitor per pool (asking again returns the same code), never one code for two visitors, also
with several worker processes (the claim runs in a ``BEGIN IMMEDIATE`` transaction).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .. import store
from ..audience.facts import Facts, PageView
from ..consent import categories as consent_module
from ..coupons import pools as coupons
from ..coupons.pools import Pool
from ..decide.targeting import choose_variant
from ..errors import RequestError
from ..rules.campaigns import CAMPAIGN_ID
from ..rules.ruleset import Ruleset
from .limits import optional_str, read_json
from .responses import JSONResponse

log = logging.getLogger("touchpoint.coupons")
NO_STORE = {"Cache-Control": "no-store"}


class Stock:
    """Which coupon pools have run out, as the decide path sees them in this worker process.

    Probing a pool is one index lookup; it runs at most once per ``ttl`` seconds, so a pool
    emptied by another worker keeps its campaigns showing for at most that long (a reveal then
    answers 410 and the popup keeps the template's fallback text). A claim that finds the pool
    empty marks it at once."""

    def __init__(self, ttl: float = 2.0) -> None:
        self.ttl = ttl
        self._checked = -math.inf
        self._empty: frozenset[str] = frozenset()

    def empty(self, pools: Mapping[str, Pool], reader: store.Reader) -> frozenset[str]:
        now = time.monotonic()
        if now - self._checked >= self.ttl:
            self._checked = now
            at = int(time.time())  # a pool past its valid.until counts as empty
            self._empty = frozenset(
                name
                for name, pool in pools.items()
                # The Pool, not its name: a generated pool has codes while under its limit.
                if pool.finite and not store.pool_has_codes(reader.conn, pool, now=at)
            )
        return self._empty

    def ran_out(self, pool: str) -> None:
        self._empty |= {pool}

    def refilled(self) -> None:
        """Codes were added: probe again at the next decide."""
        self._checked = -math.inf


async def reveal(request: Request) -> Response:
    tp = request.app.state.tp
    tp.guard(request)
    data = await read_json(request, max_bytes=tp.settings.max_body_bytes)
    rules: Ruleset = tp.rules
    campaign_id = optional_str(data, "campaign", max_length=64)
    variant_id = optional_str(data, "variant", max_length=64)
    if not campaign_id or not variant_id or not CAMPAIGN_ID.match(campaign_id):
        raise RequestError("campaign and variant are required: the ids of the popup shown")
    campaign = rules.by_id.get(campaign_id)
    variant = next((v for v in campaign.variants if v.id == variant_id), None) if campaign else None
    if campaign is None or variant is None or variant.coupon is None:
        raise RequestError(
            f"no coupon for campaign {campaign_id!r}, variant {variant_id!r}", status=404
        )
    pool = rules.pools[variant.coupon]
    _, record = tp.visitor(request)
    profile, history = consent_module.usable(record, tp.settings.consent_revision)
    now = tp.now()
    facts = Facts(PageView(path="/"), now=now, tz=rules.site.timezone, profile=profile,
                  history=history, session_idle=rules.site.session_idle,
                  profile_rules=rules.profile)  # fmt: skip
    if campaign.exclude is not None and campaign.exclude.test(facts):
        raise RequestError("this visitor is excluded from coupons (coupons.yaml)", status=409)
    if record is None or history is None:
        if pool.codes != "static":
            raise RequestError(
                "a visitor's own coupon code needs the marketing consent", status=403
            )
        # A shared code for a visitor without an id: shown, not recorded (no attribution).
        if not store.pool_has_codes(tp.reader.conn, pool, now=now):
            raise RequestError(f"coupon pool {pool.name!r} has ended", status=410)
        body = {"code": pool.code, "pool": pool.name, "expires_at": pool.expires(now)}
        return JSONResponse(body, headers=NO_STORE)
    if choose_variant(campaign, facts, record.id, 0.0).id != variant.id:
        raise RequestError(f"variant {variant.id!r} is not this visitor's", status=409)
    endpoints = rules.site.webhooks

    def claim(conn: Any) -> tuple[store.Claim | None, int]:
        if not store.visitor_exists(conn, record.id):  # erased since the request read it
            raise RequestError("this visitor no longer exists; reload the page", status=409)
        got = store.claim_coupon(conn, pool, record.id, campaign.id, variant.id, now)
        queued = 0
        if got is not None:
            queued = coupons.queue_claim(
                conn, endpoints, pool, got, visitor_id=record.id, campaign=campaign.id,
                variant=variant.id, now=now,
            )  # fmt: skip
        return got, queued

    got, queued = await tp.writer.write(claim)
    tp.webhooks_queued(queued)
    if got is None:
        tp.stock.ran_out(pool.name)
        log.warning("coupon pool %s is empty: campaign %s shows no more", pool.name, campaign.id)
        raise RequestError(f"coupon pool {pool.name!r} is empty", status=410)
    body = {"code": got.code, "pool": pool.name, "expires_at": got.expires_at}
    return JSONResponse(body, headers=NO_STORE)
