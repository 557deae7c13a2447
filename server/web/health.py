"""``GET /tp/healthz``: for load balancers and monitoring; answers 503 when the database is not."""

from __future__ import annotations

import sqlite3

from starlette.requests import Request
from starlette.responses import Response

from .responses import JSONResponse


async def healthz(request: Request) -> Response:
    tp = request.app.state.tp
    try:
        tp.reader.ping()
        if not tp.writer.alive:
            raise sqlite3.OperationalError("the writer has stopped")
    except sqlite3.Error:
        return JSONResponse({"status": "error", "database": "unavailable"}, status_code=503)
    body: dict[str, object] = {"status": "ok", "campaigns": len(tp.rules.campaigns)}
    if tp.reloader and tp.reloader.problems:
        # Still serving, with the last good rules: monitoring should notice, not fail over.
        body["status"] = "degraded"
        body["rules_problems"] = tp.reloader.report()
    return JSONResponse(body, headers={"Cache-Control": "no-store"})
