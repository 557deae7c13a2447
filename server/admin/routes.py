"""The console's routes: sign-in, its assets and every page module's :data:`PAGES`, mounted
under PREFIX/admin with the console's security headers. A page module joins the console with
one line in :data:`PAGES` (docs/admin.md#extending-the-console)."""

from __future__ import annotations

import mimetypes

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..settings import Settings
from . import (
    campaign,
    consent,
    coupons,
    lifecycle,
    results,
    rules_editor,
    rules_history,
    rules_status,
    signin,
    simulator,
    visitors,
    webhooks,
)
from .guard import Console
from .layout import HERE, OnlyHost, Page, SecurityHeaders

PAGES: list[Page] = [
    *results.PAGES,
    *campaign.PAGES,
    *lifecycle.PAGES,
    *coupons.PAGES,
    *consent.PAGES,
    *rules_status.PAGES,
    *rules_editor.PAGES,
    *rules_history.PAGES,
    *simulator.PAGES,
    *visitors.PAGES,
    *webhooks.PAGES,
]
IMMUTABLE = "public, max-age=31536000, immutable"


async def asset(request: Request) -> Response:
    """A file of admin/assets/ (the stylesheet), cached for good: its URL names its content."""
    console = Console.of(request)
    name = request.path_params["name"]
    if name not in console.layout.assets:
        return Response("not found", status_code=404, media_type="text/plain")
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Response(
        (HERE / "assets" / name).read_bytes(),
        media_type=kind,
        headers={"Cache-Control": IMMUTABLE},
    )


async def not_found(request: Request) -> Response:
    """Any other path under the console: its own 404 page, with the console's headers (the
    app's plain 404 would come from outside the mount, without them)."""
    return Console.of(request).refuse(request, "error.not_found", status=404)


def mount(settings: Settings, secret_key: str) -> tuple[Mount, Console]:
    """The console's mount at PREFIX/admin, and its state for ``app.state.console``."""
    console = Console(settings, secret_key, PAGES)
    routes: list[BaseRoute] = [
        Route("/", signin.start, methods=["GET", "HEAD"]),
        Route("/signin", signin.signin_page, methods=["GET", "HEAD"]),
        Route("/signin", signin.signin, methods=["POST"]),
        Route("/signout", signin.signout, methods=["POST"]),
        Route("/language", signin.language, methods=["POST"]),
        Route("/assets/{name}", asset, methods=["GET", "HEAD"]),
    ]
    for page in PAGES:
        methods = list(page.methods) + (["HEAD"] if "GET" in page.methods else [])
        routes.append(Route(page.path, page.endpoint, methods=methods))
    if (HERE / "static").is_dir():  # the built scripts (charts, editor), when there are any
        routes.append(Mount("/static", StaticFiles(directory=HERE / "static")))
    routes.append(Route("/{path:path}", not_found, methods=["GET", "HEAD", "POST"]))
    middleware = [Middleware(SecurityHeaders)]
    if settings.admin_host:
        middleware.insert(0, Middleware(OnlyHost, host=settings.admin_host))
    return Mount(console.base, routes=routes, middleware=middleware), console
