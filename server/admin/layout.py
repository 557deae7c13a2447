"""The console's pages: the registry of pages and their navigation, the Jinja2 environment, the
layout every page renders into, and the headers every console response carries.

A page module defines its views with :func:`~touchpoint.admin.guard.require` and lists them as
:class:`Page` entries; admin/routes.py collects the lists. A page with ``nav`` set appears in
the navigation, in the order of :data:`SECTIONS`, for the users whose role may open it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import texts
from .users import allows

HERE = Path(__file__).resolve().parent
Endpoint = Callable[[Request], Awaitable[Response]]

# The navigation's order. A section shows once a page registers it (Page.nav).
SECTIONS = (
    "results",
    "lifecycle",
    "coupons",
    "consent",
    "rules",
    "simulator",
    "visitors",
    "webhooks",
)

# No inline script or style anywhere in the console: everything comes from its own origin.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none';"
    " base-uri 'none'; object-src 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]

# Scripts, styles and images may be cached as their own headers say.
STATIC_TYPES = (b"text/css", b"text/javascript", b"application/javascript", b"image/", b"font/")


@dataclass(frozen=True)
class Page:
    """One console route: ``path`` under PREFIX/admin, its view (made with ``require``), and
    for a page of the navigation its section (a key of :data:`SECTIONS`)."""

    path: str
    endpoint: Endpoint
    methods: tuple[str, ...] = ("GET",)
    nav: str | None = None


class Layout:
    """Renders pages into the layout; one per app."""

    def __init__(self, base: str, pages: list[Page]) -> None:
        self.base = base  # PREFIX/admin
        self.environment = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.environment.filters["json_attr"] = json_attribute
        navigable = {page.nav: page for page in pages if page.nav}
        unknown = set(navigable) - set(SECTIONS)
        if unknown:
            raise ValueError(f"console pages in unknown sections: {sorted(unknown)}")
        self.nav = [(section, navigable[section]) for section in SECTIONS if section in navigable]
        self.assets = {
            path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            for path in (HERE / "assets").iterdir()
            if path.is_file()
        }

    def url(self, path: str = "/") -> str:
        return self.base + path

    def asset(self, name: str) -> str:
        """The URL of a file of admin/assets/, versioned by its content (cached for good)."""
        return f"{self.base}/assets/{name}?v={self.assets[name]}"

    def render(
        self,
        request: Request,
        template: str,
        context: Mapping[str, Any] | None = None,
        *,
        status: int = 200,
        session: Any = None,
        section: str | None = None,
    ) -> HTMLResponse:
        """``template`` with the layout's context: ``t`` (texts in the request's language),
        ``decimal`` (a number with the language's decimal mark), ``url``, ``asset``, the
        navigation for ``session``'s role with ``section`` current, ``csrf`` (the session's
        token, for every form that posts)."""
        lang = texts.language(request)

        def t(key: str, **values: Any) -> str:
            phrase = texts.text(key, lang)
            return phrase.format(**values) if values else phrase

        def decimal(value: float, digits: int = 1) -> str:
            """A number with the language's decimal mark (26.0, 26,0)."""
            shown = f"{value:.{digits}f}"
            return shown.replace(".", ",") if lang == "de" else shown

        nav = [
            {"section": name, "url": self.url(page.path), "current": name == section}
            for name, page in self.nav
            if session is not None and allows(session.role, required_role(page.endpoint))
        ]
        html = self.environment.get_template(template).render(
            {
                "t": t,
                "decimal": decimal,
                "lang": lang,
                "languages": texts.LANGUAGE_NAMES,
                "url": self.url,
                "asset": self.asset,
                "nav": nav,
                "session": session,
                "csrf": session.csrf if session is not None else "",
                "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
                **(context or {}),
            }
        )
        return HTMLResponse(html, status_code=status, headers={"Content-Language": lang})

    def redirect(self, path: str) -> RedirectResponse:
        """303 See Other to a console path: after a POST the browser follows with a GET."""
        return RedirectResponse(self.url(path), status_code=303)


def required_role(endpoint: Endpoint) -> str:
    """The role ``require`` gave an endpoint (every console page states one)."""
    role = getattr(endpoint, "required_role", None)
    if role is None:
        raise TypeError(f"console view {endpoint!r} states no role: wrap it in require(role)")
    return str(role)


def json_attribute(value: Any) -> Markup:
    """``value`` as JSON for an HTML attribute (``data-series="{{ series|json_attr }}"``): the
    JSON is escaped like any attribute value, so a quote or ``<`` in the data stays text."""
    return Markup.escape(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


class OnlyHost:
    """ASGI middleware of the console's mount with ``admin_host`` set: another Host is a 404,
    as if there were no console (a script on the shop's own origin cannot reach it)."""

    def __init__(self, app: ASGIApp, *, host: str) -> None:
        self.app = app
        self.host = host.lower()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"host", b"").decode("latin-1").lower()
            # The name without its port; an IPv6 literal keeps its brackets.
            name = given[: given.find("]") + 1] if given.startswith("[") else given.split(":")[0]
            if name != self.host:
                refused = Response("not found", status_code=404, media_type="text/plain")
                await refused(scope, receive, send)
                return
        await self.app(scope, receive, send)


class SecurityHeaders:
    """ASGI middleware of the console's mount: the CSP and friends on every response, and
    ``Cache-Control: no-store`` on pages and exports (what a signed-in user saw must not stay
    in a shared cache or the browser's history after sign-out)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower(): value for name, value in headers}
                kind = names.get(b"content-type", b"")
                if b"cache-control" not in names and not kind.startswith(STATIC_TYPES):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers + HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)
