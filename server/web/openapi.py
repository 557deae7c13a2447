"""The OpenAPI 3.1 document of the public routes, the ones the snippet calls from the site's
pages (``touchpoint schema openapi-public``, committed as ``docs/openapi-public.json``). Each
request body's schema comes from the shape its route validates with (syntax/shapes.py), so the
document and the validators cannot disagree. Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..consent.categories import ANSWER
from ..profiles.identity import IDENTIFY
from . import coupons, decide, eligible, events


@dataclass(frozen=True)
class PublicOperation:
    id: str
    method: str
    path: str  # under /tp/v1
    summary: str
    body: dict[str, Any] | None  # the request body's schema, from the route's shape
    ok: tuple[int, str]  # status and what the answer holds
    errors: tuple[int, ...] = (400, 403, 413, 429)
    reasons: tuple[tuple[int, str], ...] = ()
    also: tuple[tuple[int, str], ...] = ()  # other answers that are no error
    stores: bool = False  # answers once what it sent is stored: 503 when it cannot be


_PUBLIC_REASONS = {
    400: "Malformed body or an invalid field",
    403: "A cross-site request",
    404: "Not found",
    409: "Conflict",
    410: "Gone",
    413: "Body too large",
    422: "Names a campaign or value the rules do not know",
    429: "Too many requests from this client",
    503: "The database cannot be written (a full disk, say): nothing was stored; send it"
    " again after Retry-After seconds",
}


def public_operations() -> tuple[PublicOperation, ...]:
    """The routes the snippet calls, their bodies' schemas from the shapes they validate with."""
    return (
        PublicOperation(
            "decide",
            "post",
            "/decide",
            "The popups to arm and the slot contents for a page view",
            decide.DECIDE.schema(),
            (200, "consent, counted, popups, slots, and the popups' styles when there are popups"),
        ),
        PublicOperation(
            "events",
            "post",
            "/events",
            "What the visitor did: campaign events and behaviour",
            events.schema(),
            (202, "stored, and dropped with the reason when consent did not allow some"),
            (400, 403, 413, 422, 429),
            stores=True,
        ),
        PublicOperation(
            "eligible",
            "post",
            "/eligible",
            "May a popup armed earlier still show?",
            eligible.ELIGIBLE.schema(),
            (200, "eligible: true or false"),
            (400, 403, 413, 422, 429),
        ),
        PublicOperation(
            "consent",
            "post",
            "/consent",
            "The visitor's consent answer",
            ANSWER.schema(),
            (200, "revision and granted"),
            stores=True,
        ),
        PublicOperation(
            "consentTexts",
            "get",
            "/consent",
            "The built-in banner's texts",
            None,
            (200, "mode and the banner's texts"),
            (429,),
        ),
        PublicOperation(
            "identify",
            "post",
            "/identify",
            "Who the visitor is: an e-mail address or customer id",
            IDENTIFY.schema(),
            (200, "identified, merged"),
            (400, 403, 409, 413, 422, 429),
            ((409, "The identifiers belong to two different visitors"),),
            ((202, "identified: false, reason: no consent (nothing was stored)"),),
            stores=True,
        ),
        PublicOperation(
            "reset",
            "post",
            "/reset",
            "A fresh, anonymous visitor on this browser (logout)",
            {"type": "object"},
            (200, "reset"),
            stores=True,
        ),
        PublicOperation(
            "revealCoupon",
            "post",
            "/coupons/reveal",
            "The visitor's coupon code for the popup shown",
            coupons.REVEAL.schema(),
            (200, "code, pool, expires_at"),
            (400, 403, 404, 409, 410, 413, 429),
            (
                (403, "A cross-site request, or a code of one's own without the marketing consent"),
                (404, "No coupon for this campaign and variant"),
                (409, "Excluded, or not this visitor's variant"),
                (410, "The pool is empty or has ended"),
            ),
            stores=True,
        ),
    )


def public_openapi(base: str = "/tp/v1") -> dict[str, Any]:
    """The OpenAPI 3.1 document of the public routes under ``base`` (docs/openapi-public.json):
    what the snippet, or a page's own code, may send. They take the signed visitor cookie
    (``tp_vid``), not a key."""
    error = {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}},
            }
        }
    }
    paths: dict[str, Any] = {}
    for op in public_operations():
        entry: dict[str, Any] = {"operationId": op.id, "summary": op.summary}
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": op.body}},
            }
        if op.method == "get":
            entry["parameters"] = [
                {
                    "name": "lang",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "The page's language.",
                }
            ]
        status, holds = op.ok
        responses: dict[str, Any] = {
            str(status): {
                "description": f"Success: {holds}",
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        }
        for code, meaning in op.also:
            responses[str(code)] = {
                "description": meaning,
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        reasons = {**_PUBLIC_REASONS, **dict(op.reasons)}
        for code in (*op.errors, 503) if op.stores else op.errors:
            responses[str(code)] = {"description": reasons[code], "content": error}
        entry["responses"] = responses
        paths.setdefault(base + op.path, {})[op.method] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Touchpoint public routes",
            "version": __version__,
            "description": "The routes the snippet calls from the site's pages, on the"
            " site's own origin. See docs/api.md and docs/embedding.md.",
        },
        "paths": paths,
    }
