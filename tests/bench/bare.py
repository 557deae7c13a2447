"""The baseline: a bare Starlette route returning a small JSON body, served like Touchpoint."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def bare(request: Request) -> Response:
    return JSONResponse({"popup": None})


app = Starlette(
    routes=[Route(path, bare, methods=["POST"]) for path in ("/tp/v1/decide", "/tp/v1/events")]
)
