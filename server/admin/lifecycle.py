"""The lifecycle in the console: profiles entering each stage, the flows between stages (the
backwards ones marked), the score thresholds crossed, and entries per day as a chart, as
``touchpoint report lifecycle`` reads them (results/report.py's ``lifecycle``)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..results import report
from . import texts
from .guard import Console, read, require
from .layout import Page
from .results import asked_range, csv_response, percent
from .sessions import Session

texts.add(
    {
        "lifecycle.title": ("Lifecycle", "Lebenszyklus"),
        "lifecycle.funnel": (
            "Profiles entering each stage, {since} to {until}",
            "Profile, die in jede Phase eintraten, {since} bis {until}",
        ),
        "lifecycle.flows": ("Moves between stages", "Wechsel zwischen Phasen"),
        "lifecycle.thresholds": ("Score thresholds crossed", "Überschrittene Punkteschwellen"),
        "lifecycle.chart": ("Profiles entering each stage per day", "Eintritte je Phase pro Tag"),
        "lifecycle.y": ("Profiles", "Profile"),
        "lifecycle.new": ("(new profile)", "(neues Profil)"),
        "lifecycle.backwards": ("backwards", "rückwärts"),
        "lifecycle.no_moves": (
            "No profile changed its stage in this range.",
            "In diesem Zeitraum hat kein Profil die Phase gewechselt.",
        ),
        "lifecycle.no_thresholds": (
            "No score threshold was crossed in this range.",
            "In diesem Zeitraum wurde keine Punkteschwelle überschritten.",
        ),
        "col.stage": ("Stage", "Phase"),
        "col.entered": ("Entered", "Eingetreten"),
        "col.share": ("Of the first stage", "Anteil an der ersten Phase"),
        "col.from": ("From", "Von"),
        "col.to": ("To", "Nach"),
        "col.direction": ("Direction", "Richtung"),
        "col.threshold": ("Threshold", "Schwelle"),
        "col.crossings": ("Crossings", "Überschreitungen"),
    }
)


def chart(body: dict[str, Any], days: report.Range) -> dict[str, Any]:
    """charts.js's data: one line per stage that anyone entered, every day of the range."""
    by_day = {d["day"]: d["entered"] for d in body["daily"]}
    return {
        "x": days.days,
        "y": "conversions",
        "series": [
            {
                "label": s["stage"],
                "values": [by_day.get(day, {}).get(s["stage"], 0) for day in days.days],
            }
            for s in body["stages"]
            if s["entered"]
        ][:7],  # seven lines at most before colours and dashes repeat
    }


async def _lifecycle(request: Request, days: report.Range) -> dict[str, Any]:
    rules = Console.tp(request).rules
    body: dict[str, Any] = await read(request, lambda conn: report.lifecycle(conn, rules, days))
    return body


@require("viewer")
async def lifecycle_page(request: Request, session: Session) -> Response:
    """``/lifecycle``: the funnel, the flows, the thresholds and a chart of entries per day."""
    console = Console.of(request)
    days, values, errors = asked_range(request)
    body = await _lifecycle(request, days) if days else None
    first = body["stages"][0]["entered"] if body and body["stages"] else 0
    lang = texts.language(request)
    return console.layout.render(
        request,
        "lifecycle.html",
        {
            "days": days,
            "values": values,
            "errors": errors,
            "body": body,
            "first": first,
            "percent": lambda value: percent(value, lang),
            "series": chart(body, days) if body and days else None,
            "query": "since={since}&until={until}".format(**values) if days else "",
        },
        session=session,
        section="lifecycle",
    )


@require("viewer")
async def lifecycle_csv(request: Request, session: Session) -> Response:
    """``/lifecycle.csv``: the flows, as ``touchpoint report lifecycle --csv`` writes them,
    with the direction in a column of its own."""
    days, _, _ = asked_range(request)
    if days is None:
        return Console.of(request).refuse(request, "results.bad_date", status=400, session=session)
    body = await _lifecycle(request, days)
    rows = [[f["from"] or "", f["to"], f["visitors"], f["backwards"]] for f in body["flows"]]
    name = f"lifecycle-{days.since.isoformat()}-{days.until.isoformat()}.csv"
    return csv_response(["from", "to", "visitors", "backwards"], rows, name)


PAGES = [
    Page("/lifecycle", lifecycle_page, nav="lifecycle"),
    Page("/lifecycle.csv", lifecycle_csv),
]
