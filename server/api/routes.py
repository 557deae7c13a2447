"""The server API under ``/tp/v1/api/`` (docs/api.md): one route per operation of its OpenAPI
document (api/openapi.py), each behind its key check: visitors (api/visitors.py), coupons
(api/coupons.py), data subject requests (api/subjects.py)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..web.responses import JSONResponse
from . import coupons, subjects, visitors
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
}


def routes(base: str) -> list[BaseRoute]:
    """The API's routes under ``base``, one per operation of the OpenAPI document."""
    return [
        Route(base + op.path, endpoint(op.scope, HANDLERS[op.id]), methods=[op.method.upper()])
        for op in document.OPERATIONS
    ]
