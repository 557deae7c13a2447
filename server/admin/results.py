"""Results: the campaigns overview (results/report.py's ``campaigns``) for a range of days, as
a table and as CSV. The chart above the table is drawn by the console's script from the
``data-series`` attribute; without it the table says everything."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..results import breakdowns, report
from ..rules.ruleset import Ruleset
from ..store import Connection
from . import texts
from .guard import Console, read, require
from .layout import Page
from .sessions import Session

texts.add(
    {
        "results.title": ("Campaign results", "Kampagnenergebnisse"),
        "results.range": ("Date range", "Zeitraum"),
        "results.since": ("From", "Von"),
        "results.until": ("To", "Bis"),
        "results.show": ("Show", "Anzeigen"),
        "results.csv": ("Download as CSV", "Als CSV herunterladen"),
        "results.caption": (
            "Campaigns from {since} to {until}",
            "Kampagnen vom {since} bis {until}",
        ),
        "results.chart": (
            "Exposures and converted visitors per day, all campaigns",
            "Einblendungen und konvertierte Besucher pro Tag, alle Kampagnen",
        ),
        "results.empty": (
            "No campaign in the rules and no results in this range.",
            "Keine Kampagne in den Regeln und keine Ergebnisse in diesem Zeitraum.",
        ),
        "results.bad_date": ("Write the date as YYYY-MM-DD.", "Datum als JJJJ-MM-TT angeben."),
        "results.bad_order": (
            "The end must not be before the start.",
            "Das Ende darf nicht vor dem Anfang liegen.",
        ),
        "results.too_long": (
            "At most {days} days in one report.",
            "Höchstens {days} Tage in einem Bericht.",
        ),
        "results.y": ("Count", "Anzahl"),
        "results.removed": ("removed from the rules", "aus den Regeln entfernt"),
        "col.campaign": ("Campaign", "Kampagne"),
        "col.kind": ("Kind", "Art"),
        "col.armed": ("Armed", "Ausgespielt"),
        "col.exposures": ("Exposures", "Einblendungen"),
        "col.visitors": ("Visitors", "Besucher"),
        "col.converted": ("Converted", "Konvertiert"),
        "col.rate": ("Rate", "Quote"),
        "col.reveals": ("Codes shown", "Codes gezeigt"),
        "col.redemptions": ("Redeemed", "Eingelöst"),
        "col.revenue": ("Revenue", "Umsatz"),
        "col.verdict": ("Verdict", "Ergebnis"),
    }
)
COLUMNS = (
    ("campaign", "col.campaign"),
    ("kind", "col.kind"),
    ("armed", "col.armed"),
    ("exposures", "col.exposures"),
    ("unique_exposed", "col.visitors"),
    ("unique_converted", "col.converted"),
    ("conversion_rate", "col.rate"),
    ("reveals", "col.reveals"),
    ("redemptions", "col.redemptions"),
    ("revenue", "col.revenue"),
    ("verdict", "col.verdict"),
)


def asked_range(request: Request) -> tuple[report.Range | None, dict[str, str], dict[str, Any]]:
    """The range asked for, the form's values, and the errors by field (text key, values)."""
    tp = Console.tp(request)
    today = dt.datetime.fromtimestamp(tp.now(), tp.rules.site.timezone).date()
    values = {name: request.query_params.get(name, "").strip() for name in ("since", "until")}
    errors: dict[str, Any] = {}
    for name, value in values.items():
        if value:
            try:
                dt.date.fromisoformat(value)
            except ValueError:
                errors[name] = ("results.bad_date", {})
    if errors:
        return None, values, errors
    try:
        days = report.day_range(values["since"] or None, values["until"] or None, today=today)
    except report.ReportError:
        since = dt.date.fromisoformat(values["since"]) if values["since"] else None
        until = dt.date.fromisoformat(values["until"]) if values["until"] else today
        if since is not None and since > until:
            errors["until"] = ("results.bad_order", {})
        else:
            errors["since"] = ("results.too_long", {"days": report.MAX_DAYS})
        return None, values, errors
    return days, {"since": days.since.isoformat(), "until": days.until.isoformat()}, errors


async def _campaigns(request: Request, days: report.Range) -> list[dict[str, Any]]:
    rules = Console.tp(request).rules
    body = await read(request, lambda conn: report.campaigns(conn, rules, days))
    rows: list[dict[str, Any]] = body["campaigns"]
    return rows


def _overview(
    conn: Connection, rules: Ruleset, days: report.Range
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows: list[dict[str, Any]] = report.campaigns(conn, rules, days)["campaigns"]
    return rows, breakdowns.daily_totals(conn, days)


def csv_response(header: list[str], rows: list[list[Any]], filename: str) -> Response:
    """A CSV download (numbers as numbers, None as an empty cell)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([["" if cell is None else cell for cell in row] for row in rows])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def revenue_text(revenue: dict[str, Any]) -> str:
    return "; ".join(f"{m['revenue']:.2f} {currency}" for currency, m in sorted(revenue.items()))


def percent(value: float | None, lang: str) -> str:
    if value is None:
        return "—"
    shown = f"{value * 100:.1f}"
    return (shown.replace(".", ",") if lang == "de" else shown) + "\u00a0%"


def _verdict(row: dict[str, Any]) -> str:
    return str(row.get("verdict", {}).get("call", "")).replace("_", " ")


@require("viewer")
async def overview(request: Request, session: Session) -> Response:
    """``/results``: every campaign's counts in the range, a chart's data and a CSV link."""
    console = Console.of(request)
    days, values, errors = asked_range(request)
    rows: list[dict[str, Any]] = []
    daily: dict[str, Any] = {"days": [], "exposures": [], "converted": []}
    if days is not None:
        rules = Console.tp(request).rules
        rows, daily = await read(request, lambda conn: _overview(conn, rules, days))
    lang = texts.language(request)
    series = {  # charts.js: days on x, one line per figure
        "x": daily["days"],
        "y": "conversions",
        "series": [
            {"label": texts.text("col.exposures", lang), "values": daily["exposures"]},
            {"label": texts.text("col.converted", lang), "values": daily["converted"]},
        ],
    }
    return console.layout.render(
        request,
        "results.html",
        {
            "days": days,
            "values": values,
            "errors": errors,
            "rows": rows,
            "columns": COLUMNS,
            "series": series,
            "revenue": revenue_text,
            "verdict": _verdict,
            "percent": lambda value: percent(value, lang),
            "csv_query": "since={since}&until={until}".format(**values) if days else "",
        },
        session=session,
        section="results",
    )


@require("viewer")
async def overview_csv(request: Request, session: Session) -> Response:
    """``/results.csv``: the overview's table as CSV, numbers as numbers."""
    days, _, errors = asked_range(request)
    if days is None:
        return Console.of(request).refuse(request, "results.bad_date", status=400, session=session)
    rows = []
    for row in await _campaigns(request, days):
        cells = [row.get(name) for name, _ in COLUMNS]
        cells[COLUMNS.index(("revenue", "col.revenue"))] = revenue_text(row["revenue"])
        cells[-1] = _verdict(row)
        rows.append(cells)
    filename = f"campaigns-{days.since.isoformat()}-{days.until.isoformat()}.csv"
    return csv_response([name for name, _ in COLUMNS], rows, filename)


PAGES = [
    Page("/results", overview, nav="results"),
    Page("/results.csv", overview_csv),
]
