"""The server API's visitor routes: shop, CRM and e-mail systems push events (a batch with one
bad event is refused whole, its problem listing every bad item by index and field), set
attributes and read a visitor's profile (docs/api.md)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .. import store
from ..errors import FieldError
from ..profiles import tracking
from ..web.limits import read_json
from ..web.responses import JSONResponse
from . import spec as apispec
from .endpoints import Problem, not_found, ref_of, reference, unindexed


async def push_events(request: Request) -> Response:
    tp = request.app.state.tp
    data = await read_json(request, max_bytes=tp.settings.api_max_body_bytes)
    now = tp.now()
    batched = "events" in data
    items = data["events"] if batched else [data]
    if batched and (set(data) != {"events"} or not isinstance(items, list) or not items):
        raise Problem(400, 'a batch is {"events": [...]} with at least one event')
    if len(items) > apispec.MAX_BATCH:
        raise Problem(422, f"at most {apispec.MAX_BATCH} events per batch")
    parsed, batch, errors = [], [], []
    for index, item in enumerate(items):
        try:
            pushed = apispec.parse_event(item, now=now)
            ref = reference(pushed.ref, tp.identity_key)
        except FieldError as exc:
            errors.append({"index": index, "field": exc.field, "message": exc.message})
            continue
        parsed.append(pushed)
        batch.append((ref, pushed.activity, pushed.order))
    if errors:
        detail = f"{len(errors)} invalid event(s); nothing was stored"
        raise Problem(422, detail, errors=errors if batched else unindexed(errors))
    revision, profile_rules = tp.settings.consent_revision, tp.rules.profile
    endpoints, depth, goals = tp.rules.site.webhooks, tp.settings.data_depth, tp.rules.goals
    try:
        result: store.PushResult = await tp.writer.write(
            lambda conn: tracking.push(
                conn, batch, revision, profile_rules, endpoints, now, depth, goals
            )
        )
    except store.UnknownVisitors as exc:
        errors = [
            {"index": i, "field": parsed[i].ref[0], "message": "no visitor with a profile"}
            for i in exc.indexes
        ]
        detail = f"{len(errors)} event(s) name no known visitor; nothing was stored"
        raise Problem(404, detail, errors=errors if batched else unindexed(errors)) from None
    tp.webhooks_queued(result.queued)
    return JSONResponse({"stored": result.stored, "duplicates": result.duplicates}, status_code=202)


async def get_visitor(request: Request) -> Response:
    tp = request.app.state.tp
    revision = tp.settings.consent_revision
    visitor_id = tp.reader.profile_visitor(ref_of(request), revision=revision)
    record = tp.reader.visitor(visitor_id) if visitor_id else None
    if record is None:
        raise not_found()
    history = tp.reader.history(record.id)
    depth = tp.settings.data_depth
    identifiers = [
        {
            "kind": row["kind"],
            "since": row["created_at"],
            **({"value": row["value"]} if depth == "full" and row["value"] else {}),
        }
        for row in history["identifiers"]
    ]
    profile = record.profile
    score, stage = tp.rules.profile.read(profile, tp.now())  # decayed and settled as of now
    body = {
        "id": record.id,
        "identified": profile.identified,
        "identifiers": identifiers,
        "first_name": profile.first_name if depth != "minimal" else None,
        "score": score,
        "stage": stage,
        "stage_history": tp.reader.stage_history(record.id),
        "consent": {"revision": record.consent_revision, "granted": sorted(record.consent_granted)},
        "profile": {
            "first_seen_at": profile.first_seen_at,
            "last_seen_at": profile.last_seen_at,
            "visits": profile.visits,
            "page_views": profile.page_views,
            **{k: v for k, v in profile.data_json().items() if k != "first_name"},
        },
        "campaigns": {cid: vars(state) for cid, state in record.campaigns.items()},
        "events": [_event(row) for row in history["events"]],
        "orders": [{**row, "items": orjson.loads(row["items"])} for row in history["orders"]],
        "consent_log": [
            {**row, "granted": orjson.loads(row["granted"]), "denied": orjson.loads(row["denied"])}
            for row in history["consent_log"]
        ],
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def _event(row: dict[str, Any]) -> dict[str, Any]:
    event = {k: v for k, v in row.items() if v is not None}
    if "props" in event:
        event["props"] = orjson.loads(event["props"])
    return event


async def set_attributes(request: Request) -> Response:
    tp = request.app.state.tp
    ref = ref_of(request)
    values = apispec.parse_attributes(
        await read_json(request, max_bytes=tp.settings.api_max_body_bytes)
    )
    return await _write_attributes(request, ref, values)


async def delete_attribute(request: Request) -> Response:
    ref = ref_of(request)
    name = request.path_params["name"]
    apispec.parse_attributes({name: None})
    await _write_attributes(request, ref, {name: None})
    return Response(status_code=204)


async def _write_attributes(
    request: Request, ref: tuple[str, str], values: dict[str, Any]
) -> Response:
    tp = request.app.state.tp
    revision = tp.settings.consent_revision
    attributes = await tp.writer.write(
        lambda conn: store.set_attributes(conn, ref, values, revision=revision)
    )
    if attributes is None:
        raise not_found()
    return JSONResponse({"attributes": attributes})
