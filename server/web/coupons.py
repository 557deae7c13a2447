"""``POST /tp/v1/coupons/reveal``: the visitor's coupon code, assigned when it is revealed
(decide/reveal.py)."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

from ..decide.reveal import reveal as reveal_code
from ..errors import RequestError
from ..rules.campaigns import CAMPAIGN_ID
from ..rules.ruleset import Ruleset
from ..syntax.shapes import Field, Shape
from .limits import read_json
from .responses import JSONResponse

log = logging.getLogger("touchpoint.coupons")
NO_STORE = {"Cache-Control": "no-store"}

REVEAL = Shape(
    (
        Field(
            "campaign",
            "string",
            "The campaign of the popup shown.",
            required=True,
            max_length=64,
            pattern=CAMPAIGN_ID,
            hint="must be a campaign id",
        ),
        Field("variant", "string", "The variant shown.", required=True, max_length=64),
    )
)


async def reveal(request: Request) -> Response:
    tp = request.app.state.tp
    tp.guard(request)
    data = await read_json(request, max_bytes=tp.settings.max_body_bytes)
    rules: Ruleset = tp.rules
    values = REVEAL.parse(data)
    campaign_id, variant_id = values["campaign"], values["variant"]
    _, record = await tp.visitor(request)
    found = reveal_code(
        rules,
        campaign_id,
        variant_id,
        record,
        now=tp.now(),
        revision=tp.settings.consent_revision,
        conn=tp.reader.conn,
    )
    if found.claim is None:
        return JSONResponse(found.shown, headers=NO_STORE)
    got, queued = await tp.writer.write(found.claim)
    tp.webhooks_queued(queued)
    pool = found.pool
    if got is None:
        if tp.stock.ran_out(pool.name):
            log.warning(
                "coupon pool %s is empty: campaign %s shows no more", pool.name, found.campaign
            )
        raise RequestError(f"coupon pool {pool.name!r} is empty", status=410)
    body = {"code": got.code, "pool": pool.name, "expires_at": got.expires_at}
    return JSONResponse(body, headers=NO_STORE)
