"""``POST /tp/v1/identify`` and ``POST /tp/v1/reset``: who the browser's visitor is.

Identify ties the visitor to an e-mail address or customer id (hashed, profiles/identity.py) and
needs the ``personalisation`` consent. When the browser joins another profile (the same e-mail
known from another device), the answer re-issues the signed cookie for that profile, after the
change is committed. Reset (logout on a shared computer) gives the browser a fresh, anonymous
visitor id with the same consent: the next person keeps the consent choice made on this browser
but nothing of the last person's profile.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .. import store
from ..consent import categories as consent_module
from ..profiles import identification, identity
from .limits import read_json
from .responses import JSONResponse

NO_STORE = {"Cache-Control": "no-store"}


async def identify(request: Request) -> Response:
    tp = request.app.state.tp
    tp.guard(request)
    data = await read_json(request, max_bytes=tp.settings.max_body_bytes)
    depth = tp.settings.data_depth
    who = identity.parse(
        data, tp.identity_key, depth=depth, secret=tp.settings.identity_secret, now=tp.now()
    )
    _, record = await tp.visitor(request)
    granted = consent_module.granted(record, tp.settings.consent_revision)
    if record is None or "personalisation" not in granted:
        return JSONResponse(
            {"identified": False, "reason": "no consent"}, status_code=202, headers=NO_STORE
        )
    rules = tp.rules
    write = identification.identify(
        record.id,
        who,
        now=tp.now(),
        depth=depth,
        rules=rules.profile,
        endpoints=rules.site.webhooks,
    )
    outcome, queued = await tp.writer.write(write)
    tp.webhooks_queued(queued)
    response = JSONResponse(
        {"identified": True, "merged": outcome.merged_from is not None}, headers=NO_STORE
    )
    if outcome.switched:
        remaining = tp.recognizer.remaining(request)
        tp.recognizer.remember(response, request, outcome.visitor_id, max_age=remaining)
    return response


async def reset(request: Request) -> Response:
    tp = request.app.state.tp
    tp.guard(request)
    await read_json(request, max_bytes=tp.settings.max_body_bytes)
    _, record = await tp.visitor(request)
    if record is None:
        return JSONResponse({"reset": False}, headers=NO_STORE)
    now = tp.now()
    fresh = await tp.writer.write(lambda conn: store.reset_visitor(conn, record.id, now=now))
    response = JSONResponse({"reset": True}, headers=NO_STORE)
    if record.consent_granted:
        remaining = tp.recognizer.remaining(request)
        tp.recognizer.remember(response, request, fresh, max_age=remaining)
    else:
        tp.recognizer.forget(response, request)
    return response
