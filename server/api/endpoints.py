"""What every route of the server API shares: bearer keys with scopes (api/keys.py), errors as
RFC 9457 problem documents (``application/problem+json``), and references to a visitor.

Server-to-server: no cross-site guard and no cookie, but a body size limit
(``api_max_body_bytes``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..errors import FieldError, RequestError
from ..profiles import identity
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
        super().__init__(detail, status=status, headers=headers)
        self.errors = errors


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
    if isinstance(exc, Problem):
        if exc.errors is not None:
            body["errors"] = exc.errors
    elif isinstance(exc, FieldError):
        body["errors"] = [{"field": exc.field, "message": exc.message}]
    return ProblemResponse(body, status_code=exc.status, headers=exc.headers)


def authenticate(request: Request, scope: str) -> ApiKey:
    """The request's key if it has ``scope``; 401 (RFC 6750 ``WWW-Authenticate``) or 403."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            401,
            "an API key is required: Authorization: Bearer <key>",
            headers={"WWW-Authenticate": REALM},
        )
    key: ApiKey | None = request.app.state.tp.api_keys.authenticate(token.strip())
    if key is None:
        raise Problem(
            401,
            "unknown or revoked API key",
            headers={"WWW-Authenticate": REALM + ', error="invalid_token"'},
        )
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


def ref_of(request: Request) -> tuple[str, str]:
    tp = request.app.state.tp
    return identity.reference(unquote(request.path_params["ref"]), tp.identity_key)


def not_found() -> Problem:
    return Problem(404, "no visitor with a profile for this reference")


def reference(ref: tuple[str, str], key: bytes) -> tuple[str, str]:
    """The store's reference for an event's visitor_id, customer_id or email."""
    field, value = ref
    if field == "visitor_id":
        return "id", value
    try:
        return identity.reference(f"{field.removesuffix('_id')}:{value}", key)
    except FieldError as exc:
        raise FieldError(field, exc.message) from None


def unindexed(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in error.items() if k != "index"} for error in errors]
