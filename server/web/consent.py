"""``POST /tp/v1/consent``: the visitor's answer, logged append-only before the response.

Granting any category creates the visitor and sets the recognition cookie; granting none (reject
all, or withdrawal) expires it and erases what was stored about the visitor, and a refusal
given in the built-in banner is remembered in a cookie holding only the revision refused. Every
answer is logged with the current consent revision, the categories granted and denied, and how
it was given, as proof of consent. Under Global Privacy Control "accept all" grants measurement
only (``consent.honour_gpc``).

``GET /tp/v1/consent?lang=de``: the built-in banner's texts, for the settings link.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..consent import answers
from ..consent import categories as consent_module
from ..profiles.recognition import REFUSAL_COOKIE
from ..store.records import new_visitor_id
from .limits import read_json
from .responses import JSONResponse


async def consent(request: Request) -> Response:
    tp = request.app.state.tp
    tp.guard(request)
    data = consent_module.ANSWER.parse(
        await read_json(request, max_bytes=tp.settings.max_body_bytes)
    )
    method = data.get("method", "api")
    gpc = request.headers.get("sec-gpc") == "1"
    granted = consent_module.honour_gpc(frozenset(data["granted"]), method, gpc=gpc)
    revision = tp.settings.consent_revision
    known_id = tp.recognizer.visitor_id(request)
    # A rejection from an unknown visitor is still counted (consent statistics per revision)
    # under a throwaway id that is never sent back.
    visitor_id = known_id or new_visitor_id()
    answer = answers.record(
        visitor_id,
        granted,
        method=method,
        revision=revision,
        known=known_id is not None,
        now=tp.now(),
        key=tp.identity_key,
    )
    await tp.writer.write(answer)
    response = JSONResponse(
        {"revision": revision, "granted": sorted(granted)}, headers={"Cache-Control": "no-store"}
    )
    if granted and not known_id:
        tp.recognizer.remember(response, request, visitor_id)
    elif not granted and known_id:
        tp.recognizer.forget(response, request)
    if not granted and method.startswith("banner-"):
        tp.recognizer.remember_refusal(response, request, revision)
    elif granted and REFUSAL_COOKIE in request.cookies:  # whichever revision it refused
        tp.recognizer.forget_refusal(response, request)
    return response


async def texts(request: Request) -> Response:
    """The banner's texts in the language asked for (``lang``, else Accept-Language)."""
    tp = request.app.state.tp
    tp.limiter.check(request.client.host if request.client else "")
    config = tp.rules.site.consent
    language = request.query_params.get("lang") or request.headers.get("accept-language", "")
    body = {"mode": config.mode, **config.banner(language[:256])}
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=300"})
