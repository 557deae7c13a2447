"""``POST /tp/v1/events``: what the visitor did, in one batch: with a campaign (impression,
close, convert, and exposure: the impression a holdout visitor would have had), and on the page
(dwell time, scroll depth, tracked clicks, custom events, form submissions).

Campaign events are stored only for a recognised visitor who granted ``marketing``; behaviour
events with ``measurement`` or ``personalisation`` (which also moves the profile on: points,
stage). The response says how many were stored. Close, convert and form submissions decide what
the visitor sees next, so their response waits for the commit; a batch of behaviour events
alone is queued for the writer's next group commit without waiting.
"""

from __future__ import annotations

import math
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .. import store
from ..errors import RequestError
from ..profiles import tracking
from ..profiles.tracking import Batch
from ..store.activity import Activity
from ..syntax.shapes import flat_values, optional_str
from .limits import read_json
from .responses import JSONResponse

EVENT_TYPES = ("impression", "exposure", "close", "convert")
# Behaviour types the snippet sends (snippet/src/tracking.js) and the keys each may carry.
BEHAVIOUR_KEYS = {
    "dwell": ("type", "value", "path"),
    "scroll": ("type", "value", "path"),
    "click": ("type", "name", "path"),
    "custom": ("type", "name", "props", "path"),
    "form_submit": ("type", "name", "props", "path"),
}
ALL_TYPES = EVENT_TYPES + tuple(BEHAVIOUR_KEYS)
MAX_EVENTS = 50
MAX_PROPS = 10
MAX_VALUE = {"dwell": 86400, "scroll": 100}
PROP_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # as the snippet keeps them


def parse_events(data: dict[str, Any], known_campaigns: dict[str, Any], *, now: int = 0) -> Batch:
    """The request's events, validated; a RequestError names the first bad one by index."""
    items = data.get("events")
    if not isinstance(items, list) or not items:
        raise RequestError("events must be a non-empty list")
    if len(items) > MAX_EVENTS:
        raise RequestError(f"at most {MAX_EVENTS} events per request")
    batch = Batch()
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise RequestError(f"events[{i}] must be an object")
        kind = item.get("type")
        if kind in BEHAVIOUR_KEYS:
            batch.behaviour.append(_behaviour(i, item, kind, now))
        elif kind in EVENT_TYPES:
            batch.campaign.append(_campaign_event(i, item, kind, known_campaigns))
        else:
            raise RequestError(f"events[{i}].type must be one of {', '.join(ALL_TYPES)}")
    return batch


def _campaign_event(i: int, item: dict[str, Any], kind: str, known: dict[str, Any]) -> store.Event:
    campaign = _str(i, item, "campaign", max_length=64)
    if campaign is None:
        raise RequestError(f"events[{i}].campaign is required")
    if campaign not in known:
        raise RequestError(f"events[{i}].campaign: unknown campaign {campaign!r}", status=422)
    variant = _str(i, item, "variant", max_length=64)
    if variant is not None and variant not in known[campaign].variant_ids:
        raise RequestError(
            f"events[{i}].variant: {campaign} has no variant {variant!r}", status=422
        )
    return store.Event(
        type=kind,
        campaign=campaign,
        variant=variant,
        path=_str(i, item, "path", max_length=2048),
        version=known[campaign].version,
    )


def _behaviour(i: int, item: dict[str, Any], kind: str, now: int) -> Activity:
    allowed = BEHAVIOUR_KEYS[kind]
    for key in item:
        if key not in allowed:
            raise RequestError(f"events[{i}]: unknown key {str(key)[:64]!r} for {kind}"
                               f" (expected {', '.join(allowed)})")  # fmt: skip
    path = _str(i, item, "path", max_length=2048)
    if path is not None and not path.startswith("/"):
        raise RequestError(f"events[{i}].path must start with /")
    value = name = None
    if kind in MAX_VALUE:
        value = item.get("value")
        upto = MAX_VALUE[kind]
        if not (isinstance(value, (int, float)) and not isinstance(value, bool)
                and math.isfinite(value) and 0 <= value <= upto):  # fmt: skip
            raise RequestError(f"events[{i}].value must be a number from 0 to {upto}")
    else:
        name = _str(i, item, "name", max_length=64)
        # A click takes the element's text when its data-tp-track is empty: it may be empty too.
        if name is None or (not name and kind != "click"):
            raise RequestError(f"events[{i}].name is required")
    props = flat_values(item.get("props"), f"events[{i}].props", max_keys=MAX_PROPS, name=PROP_NAME)
    return Activity(kind, now, path=path, name=name, value=value, props=props)


def _str(i: int, item: dict[str, Any], key: str, *, max_length: int) -> str | None:
    try:
        return optional_str(item, key, max_length=max_length)
    except RequestError as exc:
        raise RequestError(f"events[{i}].{exc}") from None


async def events(request: Request) -> Response:
    tp = request.app.state.tp
    tp.guard(request)
    now = tp.now()
    rules = tp.rules
    data = await read_json(request, max_bytes=tp.settings.max_body_bytes)
    batch = parse_events(data, rules.by_id, now=now)
    _, record = tp.visitor(request)
    recording = tracking.record(
        batch, record, rules=rules.profile, session_idle=rules.site.session_idle,
        endpoints=rules.site.webhooks, now=now, depth=tp.settings.data_depth,
        revision=tp.settings.consent_revision,
    )  # fmt: skip
    if recording is None:
        return JSONResponse({"stored": 0, "reason": "no consent"}, status_code=202)
    if recording.urgent:
        stored, queued = await tp.writer.write(recording.unit)
        tp.webhooks_queued(queued)
    else:
        tp.writer.submit(recording.unit)
        stored = recording.queued
    body: dict[str, Any] = {"stored": stored}
    if recording.dropped:
        body.update(dropped=recording.dropped, reason="no consent")
    return JSONResponse(body, status_code=202)
