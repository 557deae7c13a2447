"""Recognising returning visitors by a signed, server-set first-party cookie.

The cookie holds a random visitor id signed with itsdangerous' ``TimestampSigner`` (a few
microseconds to verify, unlike the JSON serializers). It is HttpOnly, so page scripts never see
the id, and it is set only after consent. Its lifetime is fixed when it is set and is not
extended on later visits: consent-based identifiers last at most 13 months (CNIL guidance).
A missing, forged, tampered or expired cookie simply means "unknown visitor", never an error.
"""

from __future__ import annotations

import secrets

from itsdangerous import BadSignature, TimestampSigner
from starlette.requests import Request
from starlette.responses import Response

VISITOR_ID_BYTES = 16


def new_visitor_id() -> str:
    return secrets.token_urlsafe(VISITOR_ID_BYTES)


class Recognizer:
    def __init__(
        self, secret_key: str, *, cookie_name: str, max_age_days: int, secure: str
    ) -> None:
        self.signer = TimestampSigner(secret_key, salt="touchpoint.visitor")
        self.cookie_name = cookie_name
        self.max_age = max_age_days * 86400
        self.secure = secure

    def visitor_id(self, request: Request) -> str | None:
        return self.read(request.cookies.get(self.cookie_name))

    def read(self, value: str | None) -> str | None:
        """The visitor id in a cookie value, or None when it is missing, forged or expired."""
        if not value or len(value) > 128:
            return None
        try:
            return self.signer.unsign(value, max_age=self.max_age).decode()
        except (BadSignature, UnicodeDecodeError):
            return None

    def remember(self, response: Response, request: Request, visitor_id: str) -> None:
        response.set_cookie(
            self.cookie_name,
            self.signer.sign(visitor_id).decode(),
            max_age=self.max_age,
            path="/",
            httponly=True,
            samesite="lax",
            secure=self._secure(request),
        )

    def forget(self, response: Response, request: Request) -> None:
        response.delete_cookie(
            self.cookie_name, path="/", httponly=True, samesite="lax", secure=self._secure(request)
        )

    def _secure(self, request: Request) -> bool:
        if self.secure == "auto":
            return request.url.scheme == "https"
        return self.secure == "always"
