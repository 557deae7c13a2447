"""Who may do what in the console: the :class:`Console` state, :func:`require` (signed in,
the role a view states, and for a POST the CSRF token and the request's origin), and the
console's forms and refusals.

Every console view is ``require(role)(view)``; the view gets the request and the
:class:`~touchpoint.admin.sessions.Session`. See docs/admin.md#extending-the-console.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from .. import store
from ..errors import PayloadTooLarge, RequestError
from ..settings import Settings
from ..store import Connection
from ..web.limits import RateLimiter, read_body, refuse_cross_site
from . import texts
from .layout import Endpoint, Layout, Page
from .sessions import COOKIE, Session, Sessions
from .users import ROLES, allows

log = logging.getLogger("touchpoint.admin")
SAFE_METHODS = ("GET", "HEAD")
MAX_FORM_BYTES = 1024 * 1024  # a rules file in the editor's form
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"  # for the console's own scripts (fetch), instead of the field
T = TypeVar("T")
View = Callable[[Request, Session], Awaitable[Response]]


class Console:
    """The console's state, one per app (``request.app.state.console``)."""

    def __init__(self, settings: Settings, secret_key: str, pages: list[Page]) -> None:
        self.settings = settings
        self.base = settings.prefix + "/admin"
        self.layout = Layout(self.base, pages)
        self.sessions = Sessions(
            secret_key,
            path=self.base,
            idle_seconds=settings.admin_session_idle_minutes * 60,
            max_seconds=settings.admin_session_max_hours * 3600,
            secure=settings.cookie_secure,
        )
        # Sign-in attempts (docs/admin.md#signing-in): per client address (an IPv6 address by
        # its /64, which one host holds), per user name ten times as many (a stranger cannot
        # lock a user out with a few tries), and in all sixty times as many per minute and two
        # at a time, so that argon2's 64 MiB and tenth of a second of CPU per try stay bounded
        # however many addresses an attacker has.
        per_minute = settings.admin_login_per_minute
        self.by_address = RateLimiter(per_minute)
        self.by_name = RateLimiter(per_minute * 10)
        self.all_signins = RateLimiter(per_minute * 60)
        self.verifying = asyncio.Semaphore(2)
        self.clock: Callable[[], float] = time.time  # tests move it

    @staticmethod
    def of(request: Request) -> Console:
        console: Console = request.app.state.console
        return console

    @staticmethod
    def tp(request: Request) -> Any:
        return request.app.state.tp

    def user(self, request: Request, name: str) -> store.AdminUser | None:
        """One primary-key read on the event loop, as the decide path reads a visitor."""
        return store.admin_user(self.tp(request).reader.conn, name)

    def session(self, request: Request) -> Session | None:
        """The request's session, if its cookie is valid, unexpired and its user's sessions
        were not ended since."""
        now = self.clock()
        claim = self.sessions.claim(request, now=now)
        if claim is None:
            return None
        return self.sessions.confirm(claim, self.user(request, claim.name), now=now)

    def to_signin(self, request: Request) -> Response:
        """Back to the sign-in page, coming back here afterwards when this was a page view."""
        target = "/signin"
        expired = COOKIE in request.cookies
        query = []
        if expired:
            query.append("expired=1")
        if request.method in SAFE_METHODS:
            here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            query.append("next=" + quote(here, safe="/"))
        response = self.layout.redirect(target + ("?" + "&".join(query) if query else ""))
        if expired:
            self.sessions.forget(response, request)
        return response

    def refuse(
        self,
        request: Request,
        message: str,
        *,
        status: int = 403,
        session: Session | None = None,
        **values: Any,
    ) -> Response:
        """The page that says why a request was refused (``message``: a text key)."""
        return self.layout.render(
            request,
            "error.html",
            {"message": message, "values": values},
            status=status,
            session=session,
        )

    def next_path(self, wanted: str | None) -> str:
        """Where to go after signing in: a console path only (never another site)."""
        if (
            wanted
            and wanted.startswith(self.base + "/")
            and "//" not in wanted
            and "\\" not in wanted
            # no . or .. segment: the browser would resolve /tp/admin/../x out of the console
            and not {".", ".."} & set(wanted.split("?", 1)[0].split("/"))
        ):
            return wanted[len(self.base) :]
        return "/"


def _is_form(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return kind == "application/x-www-form-urlencoded"


async def form(request: Request) -> dict[str, str]:
    """The request's urlencoded form (the last value of a repeated field), read once."""
    cached: dict[str, str] | None = getattr(request.state, "form", None)
    if cached is not None:
        return cached
    if not _is_form(request):
        raise RequestError("error.bad_form", status=415)
    body = await read_body(request, max_bytes=MAX_FORM_BYTES)
    try:
        fields = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        raise RequestError("error.bad_form") from None
    request.state.form = fields
    return fields


async def posted_form(
    request: Request, session: Session | None = None
) -> dict[str, str] | Response:
    """The form of a POST from the console's own pages, or the page refusing it: sent from
    another site (Sec-Fetch-Site, Origin), too large or unreadable."""
    console = Console.of(request)
    try:
        refuse_cross_site(request)
    except RequestError:
        return console.refuse(request, "error.cross_site", session=session)
    try:
        return await form(request)
    except PayloadTooLarge:
        return console.refuse(request, "error.too_large", status=413, session=session)
    except RequestError as exc:
        return console.refuse(request, "error.bad_form", status=exc.status, session=session)
    except ClientDisconnect:
        return Response(status_code=400)


async def refused_post(request: Request, session: Session) -> Response | None:
    """The refusal of a state-changing request from another site, or without the session's
    CSRF token (compared in constant time); None when it may go ahead."""
    console = Console.of(request)
    given = request.headers.get(CSRF_HEADER)
    if given is not None:
        try:
            refuse_cross_site(request)
        except RequestError:
            return console.refuse(request, "error.cross_site", session=session)
    elif _is_form(request):
        fields = await posted_form(request, session)
        if isinstance(fields, Response):
            return fields
        given = fields.get(CSRF_FIELD)
    else:
        try:
            refuse_cross_site(request)
        except RequestError:
            return console.refuse(request, "error.cross_site", session=session)
    if not console.sessions.csrf_matches(session, given):
        log.warning("console: CSRF token refused for user %r on %s", session.name, request.url.path)
        return console.refuse(request, "error.csrf", session=session)
    return None


async def read(request: Request, fn: Callable[[Connection], T]) -> T:
    """``fn(conn)`` on a worker thread, in one read-only snapshot of its own connection:
    reports and lists read more than the event loop should wait for."""
    path = request.app.state.tp.settings.database_url
    return await asyncio.to_thread(store.read_snapshot, path, fn)


def end_session(request: Request) -> None:
    """Tell ``require`` not to refresh the cookie after this view (a sign-out)."""
    request.state.session_ended = True


def require(role: str) -> Callable[[View], Endpoint]:
    """The view, for users with ``role`` (or a role above it) only: signed in, and for a
    state-changing method with the session's CSRF token from the console's own pages. Refreshes
    the session cookie (its idle expiry) on every answer."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")

    def decorate(view: View) -> Endpoint:
        @functools.wraps(view)
        async def endpoint(request: Request) -> Response:
            console = Console.of(request)
            session = console.session(request)
            if session is None:
                return console.to_signin(request)
            refusal = None
            if request.method not in SAFE_METHODS:
                refusal = await refused_post(request, session)
            if refusal is None and not allows(session.role, role):
                lang = texts.language(request)
                refusal = console.refuse(
                    request,
                    "error.role",
                    session=session,
                    role=texts.text("role." + role, lang),
                    current=texts.text("role." + session.role, lang),
                )
            response = refusal or await view(request, session)
            if not getattr(request.state, "session_ended", False):
                console.sessions.remember(response, request, session)
            return response

        endpoint.required_role = role  # type: ignore[attr-defined]
        return endpoint

    return decorate
