"""Recognising returning visitors by a signed, server-set first-party cookie.

The cookie holds a random visitor id signed with itsdangerous' ``TimestampSigner`` and
HMAC-SHA256 (microseconds to verify, unlike the JSON serializers). It is HttpOnly, so page
scripts never see the id, and it is set only after consent. Its lifetime is fixed when it is set
and is not extended on later visits: consent-based identifiers last at most 13 months (CNIL
guidance). A missing, forged, tampered or expired cookie means "unknown visitor", never an error.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from itsdangerous import BadSignature, TimestampSigner
from itsdangerous.signer import HMACAlgorithm
from starlette.requests import Request
from starlette.responses import Response

VERIFIED_CACHE_SIZE = 100_000
CLOCK_SKEW = 60  # seconds a cookie may seem to come from the future (another host's clock)
# A refusal is remembered without an identifier: the cookie holds only the consent revision
# refused, the same value for everyone who refused it. Strictly necessary to respect the refusal
# (ePrivacy Art. 5(3) exemption), so it needs no consent; six months, then the banner asks again
# (CNIL guidance on refusals).
REFUSAL_COOKIE = "tp_refused"
REFUSAL_MAX_AGE = 182 * 86400


class _OneShotHMAC(HMACAlgorithm):
    """HMAC-SHA256 through ``hmac.digest`` (OpenSSL's one-shot call): the same bytes as
    ``hmac.new(...).digest()`` without building an HMAC object on every request."""

    def __init__(self) -> None:
        super().__init__(hashlib.sha256)

    def get_signature(self, key: bytes, value: bytes) -> bytes:
        return hmac.digest(key, value, "sha256")


class VisitorSigner(TimestampSigner):
    """itsdangerous' TimestampSigner, HMAC-SHA256, deriving its key once instead of per call."""

    def __init__(self, secret_key: str) -> None:
        super().__init__(
            secret_key,
            salt="touchpoint.visitor",
            digest_method=hashlib.sha256,
            algorithm=_OneShotHMAC(),
        )
        self._derived: dict[str | bytes | None, bytes] = {}

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        if secret_key not in self._derived:
            self._derived[secret_key] = super().derive_key(secret_key)
        return self._derived[secret_key]


class Recognizer:
    def __init__(
        self, secret_key: str, *, cookie_name: str, max_age_days: int, secure: str
    ) -> None:
        self.signer = VisitorSigner(secret_key)
        self.cookie_name = cookie_name
        self.max_age = max_age_days * 86400
        self.secure = secure
        # Cookie values whose signature already checked out -> (visitor id, signing time). A
        # returning visitor sends the same value on every request; only forged values, which
        # never enter, need the HMAC each time. Cleared when full: a bound, not an LRU.
        self._verified: dict[str, tuple[str, float]] = {}

    def visitor_id(self, request: Request) -> str | None:
        return self.read(request.cookies.get(self.cookie_name))

    def read(self, value: str | None) -> str | None:
        """The visitor id in a cookie value, or None when it is missing, forged or expired."""
        if not value or len(value) > 128:
            return None
        verified = self._verified.get(value)
        if verified is None:
            try:
                raw, signed = self.signer.unsign(value, return_timestamp=True)
                verified = (raw.decode(), signed.timestamp())
            except (BadSignature, UnicodeDecodeError):
                return None
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                self._verified.clear()
            self._verified[value] = verified
        visitor_id, signed_at = verified
        age = time.time() - signed_at
        if not -CLOCK_SKEW <= age <= self.max_age:
            return None
        return visitor_id

    def remaining(self, request: Request) -> int | None:
        """Seconds the request's valid cookie has left, or None without one."""
        value = request.cookies.get(self.cookie_name)
        if self.read(value) is None:
            return None
        assert value is not None
        return max(1, int(self.max_age - (time.time() - self._verified[value][1])))

    def remember(
        self, response: Response, request: Request, visitor_id: str, *, max_age: int | None = None
    ) -> None:
        """Set the cookie for ``visitor_id``; ``max_age`` (default: the full lifetime) lets a
        cookie re-issued for another id keep the expiry of the one it replaces."""
        response.set_cookie(
            self.cookie_name,
            self.signer.sign(visitor_id).decode(),
            max_age=self.max_age if max_age is None else min(max_age, self.max_age),
            path="/",
            httponly=True,
            samesite="lax",
            secure=self._secure(request),
        )

    def forget(self, response: Response, request: Request) -> None:
        response.delete_cookie(
            self.cookie_name, path="/", httponly=True, samesite="lax", secure=self._secure(request)
        )

    def refused(self, request: Request, revision: int) -> bool:
        """Whether the browser refused consent revision ``revision`` through the banner."""
        return request.cookies.get(REFUSAL_COOKIE) == str(revision)

    def remember_refusal(self, response: Response, request: Request, revision: int) -> None:
        response.set_cookie(
            REFUSAL_COOKIE,
            str(revision),
            max_age=REFUSAL_MAX_AGE,
            path="/",
            httponly=True,
            samesite="lax",
            secure=self._secure(request),
        )

    def forget_refusal(self, response: Response, request: Request) -> None:
        response.delete_cookie(
            REFUSAL_COOKIE, path="/", httponly=True, samesite="lax", secure=self._secure(request)
        )

    def _secure(self, request: Request) -> bool:
        if self.secure == "auto":
            return request.url.scheme == "https"
        return self.secure == "always"
