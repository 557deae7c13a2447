"""``POST /tp/v1/events``: what the visitor did with a campaign (impression, close, convert,
and exposure: the impression a holdout visitor would have had).

Events are stored only for a recognised visitor who granted the ``marketing`` category; the
response says how many were stored. Close and convert decide what the visitor sees next, so the
response waits until they are committed.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .. import consent as consent_module
from .. import store
from ..errors import RequestError
from ..limits import optional_str, read_json
from ..profiles import visit_start
from ..responses import JSONResponse

EVENT_TYPES = ("impression", "exposure", "close", "convert")
MAX_EVENTS = 50


def parse_events(data: dict[str, Any], known_campaigns: dict[str, Any]) -> list[store.Event]:
    items = data.get("events")
    if not isinstance(items, list) or not items:
        raise RequestError("events must be a non-empty list")
    if len(items) > MAX_EVENTS:
        raise RequestError(f"at most {MAX_EVENTS} events per request")
    parsed = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise RequestError(f"events[{i}] must be an object")
        kind = item.get("type")
        if kind not in EVENT_TYPES:
            raise RequestError(f"events[{i}].type must be one of {', '.join(EVENT_TYPES)}")
        campaign = optional_str(item, "campaign", max_length=64)
        if campaign is None:
            raise RequestError(f"events[{i}].campaign is required")
        if campaign not in known_campaigns:
            raise RequestError(f"events[{i}].campaign: unknown campaign {campaign!r}", status=422)
        variant = optional_str(item, "variant", max_length=64)
        if variant is not None and variant not in known_campaigns[campaign].variant_ids:
            raise RequestError(
                f"events[{i}].variant: {campaign} has no variant {variant!r}", status=422
            )
        parsed.append(
            store.Event(
                type=kind,
                campaign=campaign,
                variant=variant,
                path=optional_str(item, "path", max_length=2048),
                version=known_campaigns[campaign].version,
            )
        )
    return parsed


async def events(request: Request) -> Response:
    tp = request.app.state.tp
    tp.guard(request)
    batch = parse_events(
        await read_json(request, max_bytes=tp.settings.max_body_bytes), tp.rules.by_id
    )
    _, record = tp.visitor(request)
    profile, history = consent_module.usable(record, tp.settings.consent_revision)
    if record is None or history is None:  # campaign events need the marketing consent
        return JSONResponse({"stored": 0, "reason": "no consent"}, status_code=202)
    now = tp.now()
    start = visit_start(profile, now=now, session_idle=tp.rules.site.session_idle)
    stored = await tp.writer.write(
        lambda conn: store.record_events(conn, record.id, batch, at=now, visit_start=start)
    )
    return JSONResponse({"stored": stored}, status_code=202)
