"""Results through the server API (docs/reports.md): ``/tp/v1/api/reports/campaigns``, one
campaign's experiment, and the lifecycle, read from the rollups alone (results/report.py) on
a worker thread, with the scope ``reports:read``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..results import report
from ..store import Connection
from ..web.responses import JSONResponse
from .endpoints import Handler, Problem
from .subjects import NO_STORE, read


def _range(request: Request) -> report.Range:
    tp = request.app.state.tp
    today = dt.datetime.fromtimestamp(tp.now(), tp.rules.site.timezone).date()
    query = request.query_params
    try:
        return report.day_range(query.get("since"), query.get("until"), today=today)
    except report.ReportError as exc:
        raise Problem(400, str(exc)) from None


async def _answer(request: Request, build: Callable[[Connection], dict[str, Any]]) -> Response:
    try:
        body = await read(request, build)
    except report.ReportError as exc:
        raise Problem(404, str(exc)) from None
    return JSONResponse(body, headers=NO_STORE)


async def campaigns(request: Request) -> Response:
    rules, days = request.app.state.tp.rules, _range(request)
    return await _answer(request, lambda conn: report.campaigns(conn, rules, days))


async def campaign(request: Request) -> Response:
    rules, days = request.app.state.tp.rules, _range(request)
    raw = request.query_params.get("version")
    if raw is not None and not (raw.isascii() and raw.isdigit() and 0 < len(raw) < 10):
        raise Problem(400, "version must be a whole number from 1")
    version = int(raw) if raw is not None else None
    if version == 0:
        raise Problem(400, "version must be a whole number from 1")
    name = request.path_params["campaign"]
    return await _answer(
        request, lambda conn: report.campaign_report(conn, rules, name, days, version=version)
    )


async def lifecycle(request: Request) -> Response:
    rules, days = request.app.state.tp.rules, _range(request)
    return await _answer(request, lambda conn: report.lifecycle(conn, rules, days))


HANDLERS: dict[str, Handler] = {
    "reportCampaigns": campaigns,
    "reportCampaign": campaign,
    "reportLifecycle": lifecycle,
}
