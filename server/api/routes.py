"""The server API under ``/tp/v1/api/`` (docs/api.md): one route per operation of its OpenAPI
document (api/openapi.py), each behind its key check: visitors (api/visitors.py), coupons
(api/coupons.py), data subject requests (api/subjects.py)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..web.responses import JSONResponse
from . import coupons, reports, subjects, visitors
from . import openapi as document
from .endpoints import Handler, endpoint


async def openapi(request: Request) -> Response:
    base = request.app.state.tp.settings.prefix + "/v1/api"
    return JSONResponse(document.openapi(base))


HANDLERS: dict[str, Handler] = {
    "pushEvents": visitors.push_events,
    "getVisitor": visitors.get_visitor,
    "setAttributes": visitors.set_attributes,
    "deleteAttribute": visitors.delete_attribute,
    "openapi": openapi,
    **coupons.HANDLERS,
    **subjects.HANDLERS,
    **reports.HANDLERS,
}


def routes(base: str) -> list[BaseRoute]:
    """The API's routes under ``base``: one per path of the OpenAPI document, answering each
    of its operations by method, so that a 405 lists every method the path has (``Allow``)."""
    by_path: dict[str, dict[str, Handler]] = {}
    for op in document.OPERATIONS:
        by_path.setdefault(op.path, {})[op.method.upper()] = endpoint(op.scope, HANDLERS[op.id])
    return [
        Route(base + path, _by_method(views), methods=list(views))
        for path, views in by_path.items()
    ]


def _by_method(views: dict[str, Handler]) -> Handler:
    async def view(request: Request) -> Response:
        # HEAD is answered as GET (Starlette adds it to a GET route and drops the body).
        method = request.method if request.method in views else "GET"
        return await views[method](request)

    return view
