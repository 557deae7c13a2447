"""Console sessions: a signed cookie, no server-side row (docs/admin.md#sessions).

The cookie holds the user's name, the generation of their sessions when they signed in, the
sign-in time and the time of their last request, signed with the secret key under a salt of
its own (a visitor cookie can never pass for a session). It is re-signed on every request, so
it expires ``admin_session_idle_minutes`` after the last one, and never lives longer than
``admin_session_max_hours`` after sign-in. A new password, a sign-out or the user's removal
raises or drops the generation the database holds, which ends every cookie issued before.

The CSRF token is derived from the session (an HMAC of name, generation and sign-in time), so
it changes with every sign-in and needs no storage.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from starlette.requests import Request
from starlette.responses import Response

from ..store import AdminUser

COOKIE = "tp_admin"
SALT = "touchpoint.admin.session"
CSRF_SALT = b"touchpoint.admin.csrf"


@dataclass(frozen=True)
class Session:
    """A signed-in user, as their cookie and the database agree on them."""

    user: AdminUser
    signed_in_at: float
    seen_at: float
    csrf: str

    @property
    def name(self) -> str:
        return self.user.name

    @property
    def role(self) -> str:
        return self.user.role


@dataclass(frozen=True)
class Claim:
    """What a cookie says, before the database confirms it."""

    name: str
    generation: int
    signed_in_at: float
    seen_at: float


class Sessions:
    """Issues and reads session cookies."""

    def __init__(
        self,
        secret_key: str,
        *,
        path: str,
        idle_seconds: float,
        max_seconds: float,
        secure: str,
    ) -> None:
        self.serializer = URLSafeSerializer(secret_key, salt=SALT)
        self._csrf_key = hmac.digest(secret_key.encode(), CSRF_SALT, "sha256")
        self.path = path
        self.idle_seconds = idle_seconds
        self.max_seconds = max_seconds
        self.secure = secure

    def claim(self, request: Request, *, now: float) -> Claim | None:
        """The cookie's claim if it is signed with this key, well formed and not expired."""
        value = request.cookies.get(COOKIE)
        if not value:
            return None
        try:
            data: Any = self.serializer.loads(value)
            claim = Claim(str(data["u"]), int(data["g"]), float(data["s"]), float(data["a"]))
        except (BadSignature, KeyError, TypeError, ValueError):
            return None
        if now - claim.seen_at > self.idle_seconds or now - claim.signed_in_at > self.max_seconds:
            return None
        if claim.seen_at > now + 60 or claim.signed_in_at > claim.seen_at:
            return None  # from the future: not a cookie this server issued
        return claim

    def confirm(self, claim: Claim, user: AdminUser | None, *, now: float) -> Session | None:
        """The session, if the user still exists and their sessions were not ended since."""
        if user is None or user.name != claim.name or user.sessions != claim.generation:
            return None
        return Session(user, claim.signed_in_at, now, self.csrf_token(claim))

    def start(self, user: AdminUser, *, now: float) -> Session:
        claim = Claim(user.name, user.sessions, now, now)
        return Session(user, now, now, self.csrf_token(claim))

    def csrf_token(self, claim: Claim) -> str:
        message = f"{claim.name}\n{claim.generation}\n{claim.signed_in_at!r}".encode()
        return hmac.digest(self._csrf_key, message, "sha256").hex()

    def csrf_matches(self, session: Session, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(session.csrf, given)

    def remember(self, response: Response, request: Request, session: Session) -> None:
        """Set (or refresh) the cookie: its last request is now."""
        value = self.serializer.dumps(
            {
                "u": session.name,
                "g": session.user.sessions,
                "s": session.signed_in_at,
                "a": session.seen_at,
            }
        )
        remaining = self.max_seconds - (session.seen_at - session.signed_in_at)
        response.set_cookie(
            COOKIE,
            value,
            max_age=max(1, int(min(self.idle_seconds, remaining))),
            path=self.path,
            httponly=True,
            samesite="strict",
            secure=self._secure(request),
        )

    def forget(self, response: Response, request: Request) -> None:
        response.delete_cookie(
            COOKIE, path=self.path, httponly=True, samesite="strict", secure=self._secure(request)
        )

    def _secure(self, request: Request) -> bool:
        # Behind a proxy uvicorn sets the scheme from X-Forwarded-Proto when the proxy is one of
        # forwarded_allow_ips (docs/admin.md#https-and-the-reverse-proxy), so "auto" follows
        # what the browser used.
        if self.secure == "auto":
            return request.url.scheme == "https"
        return self.secure == "always"
