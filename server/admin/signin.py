"""Signing in and out, the language switch, and the console's start page.

A sign-in is refused the same way for an unknown name and a wrong password, and takes as long
(users.verify); attempts are rate-limited per client address and per user name, and a failure
is logged with both, never with the password (docs/security.md#the-console).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging

from starlette.requests import Request
from starlette.responses import Response

from .. import store
from ..errors import RateLimited
from . import texts, users
from .guard import Console, end_session, posted_form, require
from .layout import required_role
from .sessions import Session

log = logging.getLogger("touchpoint.admin")
LANGUAGE_MAX_AGE = 365 * 86400


async def signin_page(request: Request) -> Response:
    console = Console.of(request)
    if console.session(request) is not None:
        return console.layout.redirect(console.next_path(request.query_params.get("next")))
    notice = None
    if request.query_params.get("expired"):
        notice = "signin.expired"
    elif request.query_params.get("signed_out"):
        notice = "signin.signed_out"
    return _signin(request, notice=notice)


def _signin(
    request: Request,
    *,
    status: int = 200,
    error: str | None = None,
    notice: str | None = None,
    name: str = "",
    seconds: int = 0,
) -> Response:
    console = Console.of(request)
    no_users = not store.has_admin_users(console.tp(request).reader.conn)
    response = console.layout.render(
        request,
        "signin.html",
        {
            "error": error,
            "notice": notice,
            "name": name,
            "seconds": seconds,
            "no_users": no_users,
            "next": request.query_params.get("next", ""),
        },
        status=status,
    )
    if seconds:
        response.headers["Retry-After"] = str(seconds)
    return response


async def signin(request: Request) -> Response:
    """``POST /signin``: name and password; on success a new session and the page asked for."""
    console = Console.of(request)
    fields = await posted_form(request)
    if isinstance(fields, Response):
        return fields
    name = fields.get("name", "").strip().lower()[:200]
    password = fields.get("password", "")
    address = request.client.host if request.client else ""
    if not name or not password:
        return _signin(request, status=400, error="signin.missing", name=name)
    try:
        console.by_address.check(_network(address))
        console.by_name.check(name)
        console.all_signins.check("")
    except RateLimited as exc:
        log.warning("console sign-in refused (rate limit) for user %r from %s", name, address)
        return _signin(
            request, status=429, error="signin.limited", name=name, seconds=exc.retry_after
        )
    user = console.user(request, name) if users.NAME.fullmatch(name) else None
    async with console.verifying:
        right = await asyncio.to_thread(users.verify, user, password)
    if not right:
        log.warning("console sign-in failed for user %r from %s", name, address)
        return _signin(request, status=401, error="signin.wrong", name=name)
    assert user is not None
    if users.needs_rehash(user.password_hash):
        fresh = await asyncio.to_thread(users.hash_password, password)
        await console.tp(request).writer.write(
            lambda conn: store.rehash_admin_password(
                conn, user.name, old_hash=user.password_hash, password_hash=fresh
            )
        )
    log.info("console sign-in: user %r from %s", user.name, address)
    session = console.sessions.start(user, now=console.clock())
    response = console.layout.redirect(console.next_path(fields.get("next")))
    console.sessions.remember(response, request, session)
    return response


def _network(address: str) -> str:
    """The address as the sign-in limit counts it: an IPv6 address by its /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


@require("viewer")
async def signout(request: Request, session: Session) -> Response:
    """``POST /signout``: ends every session of the user, since a cookie may have been copied."""
    console = Console.of(request)
    await console.tp(request).writer.write(
        lambda conn: store.end_admin_sessions(conn, session.name)
    )
    end_session(request)
    log.info("console sign-out: user %r", session.name)
    response = console.layout.redirect("/signin?signed_out=1")
    console.sessions.forget(response, request)
    return response


async def language(request: Request) -> Response:
    """``POST /language``: the console's language, in a cookie; then back to the page."""
    console = Console.of(request)
    fields = await posted_form(request)
    if isinstance(fields, Response):
        return fields
    response = console.layout.redirect(console.next_path(fields.get("next")))
    chosen = fields.get("lang", "")
    if chosen in texts.LANGUAGES:
        response.set_cookie(
            texts.LANGUAGE_COOKIE,
            chosen,
            max_age=LANGUAGE_MAX_AGE,
            path=console.base,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https" or console.settings.cookie_secure == "always",
        )
    return response


@require("viewer")
async def start(request: Request, session: Session) -> Response:
    """``/``: the first page of the navigation this user may open."""
    console = Console.of(request)
    nav = [
        page
        for _, page in console.layout.nav
        if users.allows(session.role, required_role(page.endpoint))
    ]
    if nav:
        return console.layout.redirect(nav[0].path)
    return console.layout.render(request, "start.html", session=session)
