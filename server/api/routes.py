"""The server API under ``/tp/v1/api/``: shop, CRM and e-mail systems push events and
attributes and read profiles (coupons: views/couponapi.py, data subject requests:
views/subjects.py), authenticated by bearer keys (server/apikeys.py).

Server-to-server: no cross-site guard and no cookie, but a body size limit
(``api_max_body_bytes``). Errors are RFC 9457 problem documents
(``application/problem+json``); a batch with one bad event is refused whole, and its problem
lists every bad item by index and field.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .. import store
from ..errors import RequestError
from ..profiles import identity
from ..profiles.rules import ProfileRules
from ..store.activity import Activity
from ..web.limits import read_json
from ..web.responses import JSONResponse
from ..webhooks import delivery as webhooks
from . import spec as apispec
from .keys import ApiKey

Handler = Callable[[Request], Awaitable[Response]]
REALM = 'Bearer realm="touchpoint"'


class Problem(RequestError):
    """An RFC 9457 problem: status, detail, optional ``errors`` and headers."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail, status=status)
        self.errors = errors
        self.headers = headers or {}


class ProblemResponse(Response):
    media_type = "application/problem+json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def problem_response(exc: RequestError) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(exc.status).phrase,
        "status": exc.status,
        "detail": str(exc),
    }
    headers: dict[str, str] = {}
    if isinstance(exc, Problem):
        headers = exc.headers
        if exc.errors is not None:
            body["errors"] = exc.errors
    elif isinstance(exc, identity.FieldError):
        body["errors"] = [{"field": exc.field, "message": exc.message}]
    return ProblemResponse(body, status_code=exc.status, headers=headers)


def authenticate(request: Request, scope: str) -> ApiKey:
    """The request's key if it has ``scope``; 401 (RFC 6750 ``WWW-Authenticate``) or 403."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(401, "an API key is required: Authorization: Bearer <key>",
                      headers={"WWW-Authenticate": REALM})  # fmt: skip
    key: ApiKey | None = request.app.state.tp.api_keys.authenticate(token.strip())
    if key is None:
        raise Problem(401, "unknown or revoked API key",
                      headers={"WWW-Authenticate": REALM + ', error="invalid_token"'})  # fmt: skip
    if scope not in key.scopes:
        raise Problem(
            403,
            f"the key {key.name!r} lacks the scope {scope}",
            headers={"WWW-Authenticate": REALM + f', error="insufficient_scope", scope="{scope}"'},
        )
    return key


def endpoint(scope: str | None, handler: Handler) -> Handler:
    """``handler`` behind the key check, its errors rendered as problem documents."""

    async def view(request: Request) -> Response:
        try:
            if scope is not None:
                request.state.api_key = authenticate(request, scope)
            return await handler(request)
        except RequestError as exc:
            return problem_response(exc)

    view.__name__ = handler.__name__
    return view


def _ref(request: Request) -> tuple[str, str]:
    tp = request.app.state.tp
    return identity.reference(unquote(request.path_params["ref"]), tp.identity_key)


def _not_found() -> Problem:
    return Problem(404, "no visitor with a profile for this reference")


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
        except identity.FieldError as exc:
            errors.append({"index": index, "field": exc.field, "message": exc.message})
            continue
        parsed.append(pushed)
        batch.append((ref, pushed.activity, pushed.order))
    if errors:
        detail = f"{len(errors)} invalid event(s); nothing was stored"
        raise Problem(422, detail, errors=errors if batched else _unindexed(errors))
    revision, profile_rules = tp.settings.consent_revision, tp.rules.profile
    endpoints, depth = tp.rules.site.webhooks, tp.settings.data_depth
    try:
        result: store.PushResult = await tp.writer.write(
            lambda conn: _push(conn, batch, revision, profile_rules, endpoints, now, depth)
        )
    except store.UnknownVisitors as exc:
        errors = [{"index": i, "field": parsed[i].ref[0], "message": "no visitor with a profile"}
                  for i in exc.indexes]  # fmt: skip
        detail = f"{len(errors)} event(s) name no known visitor; nothing was stored"
        raise Problem(404, detail, errors=errors if batched else _unindexed(errors)) from None
    tp.webhooks_queued(result.queued)
    return JSONResponse({"stored": result.stored, "duplicates": result.duplicates},
                        status_code=202)  # fmt: skip


def _push(
    conn: sqlite3.Connection,
    batch: list[tuple[tuple[str, str], Activity, dict[str, Any] | None]],
    revision: int,
    profile_rules: ProfileRules,
    endpoints: Mapping[str, webhooks.Endpoint],
    now: int,
    depth: str,
) -> store.PushResult:
    """Store the batch and queue the webhooks of what it changed, in one transaction."""
    result = store.push_activities(
        conn, batch, revision=revision, rules=profile_rules, now=now, depth=depth
    )
    for visitor_id, effects in result.effects.items():
        result.queued += webhooks.report(conn, endpoints, visitor_id, effects, now=now)
    return result


def reference(ref: tuple[str, str], key: bytes) -> tuple[str, str]:
    """The store's reference for an event's visitor_id, customer_id or email."""
    field, value = ref
    if field == "visitor_id":
        return "id", value
    try:
        return identity.reference(f"{field.removesuffix('_id')}:{value}", key)
    except identity.FieldError as exc:
        raise identity.FieldError(field, exc.message) from None


def _unindexed(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in error.items() if k != "index"} for error in errors]


async def get_visitor(request: Request) -> Response:
    tp = request.app.state.tp
    revision = tp.settings.consent_revision
    visitor_id = tp.reader.profile_visitor(_ref(request), revision=revision)
    record = tp.reader.visitor(visitor_id) if visitor_id else None
    if record is None:
        raise _not_found()
    history = tp.reader.history(record.id)
    depth = tp.settings.data_depth
    identifiers = [
        {"kind": row["kind"], "since": row["created_at"],
         **({"value": row["value"]} if depth == "full" and row["value"] else {})}
        for row in history["identifiers"]
    ]  # fmt: skip
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
    ref = _ref(request)
    values = apispec.parse_attributes(
        await read_json(request, max_bytes=tp.settings.api_max_body_bytes)
    )
    return await _write_attributes(request, ref, values)


async def delete_attribute(request: Request) -> Response:
    ref = _ref(request)
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
        raise _not_found()
    return JSONResponse({"attributes": attributes})


async def openapi(request: Request) -> Response:
    base = request.app.state.tp.settings.prefix + "/v1/api"
    return JSONResponse(apispec.openapi(base))


HANDLERS: dict[str, Handler] = {
    "pushEvents": push_events,
    "getVisitor": get_visitor,
    "setAttributes": set_attributes,
    "deleteAttribute": delete_attribute,
    "openapi": openapi,
}


def routes(base: str) -> list[BaseRoute]:
    """The API's routes under ``base``, one per operation of the OpenAPI document."""
    # Imported here: they build on this module.
    from .coupons import HANDLERS as COUPONS
    from .subjects import HANDLERS as SUBJECTS

    handlers = {**HANDLERS, **COUPONS, **SUBJECTS}
    return [
        Route(base + op.path, endpoint(op.scope, handlers[op.id]), methods=[op.method.upper()])
        for op in apispec.OPERATIONS
    ]
