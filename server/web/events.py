"""``POST /tp/v1/events``: what the visitor did, in one batch: with a campaign (impression,
close, convert, and exposure: the impression a holdout visitor would have had), and on the page
(dwell time, scroll depth, tracked clicks, custom events, form submissions).

Campaign events are stored only for a recognised visitor who granted ``marketing``; behaviour
events with ``measurement`` or ``personalisation`` (which also moves the profile on: points,
stage). The response says how many were stored, so it waits for the commit (the writer's next
group commit); the writer reads the visitor's consent in that transaction, once per batch.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .. import store
from ..errors import RequestError
from ..profiles import tracking
from ..profiles.tracking import Batch
from ..store.activity import Activity
from ..syntax.shapes import Field, Shape
from .limits import read_json
from .responses import JSONResponse

EVENT_TYPES = ("impression", "exposure", "close", "convert")
MAX_EVENTS = 50
MAX_PROPS = 10
PROP_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # as the snippet keeps them

_PATH = Field(
    "path",
    "string",
    "The page's path.",
    blank=True,
    max_length=2048,
    pattern=re.compile("^/"),
    hint="must start with /",
)
_PROPS = Field(
    "props", "flat", f"At most {MAX_PROPS} flat properties.", max_items=MAX_PROPS, pattern=PROP_NAME
)


def _value(upto: int, unit: str) -> Field:
    return Field(
        "value",
        "number",
        f"{unit}, 0 to {upto}.",
        required=True,
        minimum=0,
        maximum=upto,
        hint=f"must be a number from 0 to {upto}",
    )


def _name(help: str, *, blank: bool = False) -> Field:
    return Field("name", "string", help, required=True, blank=blank, max_length=64)


# The behaviour the snippet sends (snippet/src/tracking.js), a closed shape per type.
BEHAVIOUR = {
    kind: Shape(fields, closed=True, what=kind, constants={"type": kind})
    for kind, fields in {
        "dwell": (_value(86400, "Seconds on the page"), _PATH),
        "scroll": (_value(100, "Percent of the page scrolled"), _PATH),
        # A click takes the element's text when its data-tp-track is empty: it may be empty too.
        "click": (_name("data-tp-track of the element, else its text.", blank=True), _PATH),
        "custom": (_name("The event's name."), _PROPS, _PATH),
        "form_submit": (_name("The campaign whose form was sent."), _PROPS, _PATH),
    }.items()
}
# Events of a campaign the visitor was shown: the frequency caps count them.
CAMPAIGN_EVENT = Shape(
    (
        Field("campaign", "string", "The campaign id.", required=True, blank=True, max_length=64),
        Field("variant", "string", "The variant id.", blank=True, max_length=64),
        Field("path", "string", "The page's path.", blank=True, max_length=2048),
    )
)
ALL_TYPES = EVENT_TYPES + tuple(BEHAVIOUR)


def schema() -> dict[str, Any]:
    """The JSON Schema of a request body, from the shapes above."""
    campaign = CAMPAIGN_EVENT.schema()
    campaign["properties"] = {"type": {"enum": list(EVENT_TYPES)}, **campaign["properties"]}
    campaign["required"] = ["type", *campaign["required"]]
    items = [campaign, *(shape.schema() for shape in BEHAVIOUR.values())]
    return {
        "type": "object",
        "required": ["events"],
        "properties": {
            "events": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_EVENTS,
                "items": {"oneOf": items},
            }
        },
    }


def parse_events(data: dict[str, Any], known_campaigns: dict[str, Any], *, now: int = 0) -> Batch:
    """The request's events, validated; a RequestError names the first bad one by index."""
    items = data.get("events")
    if not isinstance(items, list) or not items:
        raise RequestError("events must be a non-empty list")
    if len(items) > MAX_EVENTS:
        raise RequestError(f"at most {MAX_EVENTS} events per request")
    batch = Batch()
    for i, item in enumerate(items):
        where = f"events[{i}]"
        if not isinstance(item, dict):
            raise RequestError(f"{where} must be an object")
        kind = item.get("type")
        kind = kind if isinstance(kind, str) else None  # {} or [] as a type is no type
        if kind in BEHAVIOUR:
            values = BEHAVIOUR[kind].parse(item, where=where)
            batch.behaviour.append(
                Activity(
                    kind,
                    now,
                    path=values.get("path"),
                    name=values.get("name"),
                    value=values.get("value"),
                    props=values.get("props", {}),
                )
            )
        elif kind in EVENT_TYPES:
            batch.campaign.append(_campaign_event(where, item, kind, known_campaigns))
        else:
            raise RequestError(f"{where}.type must be one of {', '.join(ALL_TYPES)}")
    return batch


def _campaign_event(
    where: str, item: dict[str, Any], kind: str, known: dict[str, Any]
) -> store.Event:
    values = CAMPAIGN_EVENT.parse(item, where=where)
    campaign, variant = values["campaign"], values.get("variant")
    if campaign not in known:
        raise RequestError(f"{where}.campaign: unknown campaign {campaign!r}", status=422)
    if variant is not None and variant not in known[campaign].variant_ids:
        raise RequestError(f"{where}.variant: {campaign} has no variant {variant!r}", status=422)
    return store.Event(
        type=kind,
        campaign=campaign,
        variant=variant,
        path=values.get("path"),
        version=known[campaign].version,
    )


async def events(request: Request) -> Response:
    tp = request.app.state.tp
    tp.guard(request)
    now = tp.now()
    rules = tp.rules
    data = await read_json(request, max_bytes=tp.settings.max_body_bytes)
    batch = parse_events(data, rules.by_id, now=now)
    visitor = tp.recognizer.visitor_id(request)
    if visitor is None:
        return JSONResponse({"stored": 0, "reason": "no consent"}, status_code=202)
    unit = tracking.record(
        batch,
        visitor,
        rules=rules.profile,
        session_idle=rules.site.session_idle,
        endpoints=rules.site.webhooks,
        now=now,
        depth=tp.settings.data_depth,
        revision=tp.settings.consent_revision,
        goals=rules.goals,
    )
    # The answer says what is stored, so it waits for the commit; a storage failure is a 503.
    done = await tp.writer.write(unit, small=True)
    tp.webhooks_queued(done.queued)
    body: dict[str, Any] = {"stored": done.stored}
    if done.dropped and done.stored:
        body.update(dropped=done.dropped, reason="no consent")
    elif done.dropped:
        body.update(reason="no consent")
    return JSONResponse(body, status_code=202)
