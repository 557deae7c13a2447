"""Consent in the console: the answers per consent revision and method (accepted everything,
rejected everything, chose some categories) and how often each category was granted, as
``touchpoint consent summary`` shows them (store/subjects.py's ``consent_summary``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .. import store
from . import texts
from .guard import Console, read, require
from .layout import Page
from .results import percent
from .sessions import Session

texts.add(
    {
        "consent.title": ("Consent", "Einwilligungen"),
        "consent.range": (
            "Answers from {since} to {until} (UTC days)",
            "Antworten vom {since} bis {until} (UTC-Tage)",
        ),
        "consent.all_time": ("All answers so far", "Alle bisherigen Antworten"),
        "consent.hint": (
            "Leave both dates empty for every answer in the consent log; its days are UTC days.",
            "Beide Daten leer lassen für alle Antworten im Einwilligungsprotokoll (Tage in UTC).",
        ),
        "consent.revision": ("Revision {revision}", "Fassung {revision}"),
        "consent.none": (
            "No consent answers in this time.",
            "Keine Einwilligungsantworten in dieser Zeit.",
        ),
        "consent.all_methods": ("all methods", "alle Wege"),
        "consent.granted": ("Categories granted", "Erteilte Kategorien"),
        "col.method": ("Method", "Weg"),
        "col.accepted": ("Accepted all", "Alle akzeptiert"),
        "col.rejected": ("Rejected all", "Alle abgelehnt"),
        "col.customised": ("Chose some", "Teilweise"),
        "col.answers": ("Answers", "Antworten"),
        "col.category": ("Category", "Kategorie"),
        "col.granted": ("Granted", "Erteilt"),
        "col.of_answers": ("Of the answers", "Anteil der Antworten"),
    }
)


def asked_times(
    request: Request,
) -> tuple[tuple[int | None, int | None] | None, dict[str, str], dict[str, Any]]:
    """The UTC instants of the days asked for (``until`` exclusive, either open), the form's
    values, and the errors by field; the consent log counts UTC days, as the CLI does."""
    values = {name: request.query_params.get(name, "").strip() for name in ("since", "until")}
    dates: dict[str, dt.date | None] = {}
    errors: dict[str, Any] = {}
    for name, value in values.items():
        try:
            dates[name] = dt.date.fromisoformat(value) if value else None
        except ValueError:
            errors[name] = ("results.bad_date", {})
    if errors:
        return None, values, errors
    since, until = dates["since"], dates["until"]
    if since is not None and until is not None and since > until:
        return None, values, {"until": ("results.bad_order", {})}

    def instant(day: dt.date | None, *, after: bool = False) -> int | None:
        if day is None:
            return None
        start = dt.datetime.combine(day + dt.timedelta(days=after), dt.time(), dt.UTC)
        return int(start.timestamp())

    return (instant(since), instant(until, after=True)), values, errors


@require("viewer")
async def consent_page(request: Request, session: Session) -> Response:
    """``/consent``: per consent revision, the answers by method and the categories granted."""
    console = Console.of(request)
    times, values, errors = asked_times(request)
    revisions: list[dict[str, Any]] = []
    if times is not None:
        since, until = times
        revisions = await read(
            request, lambda conn: store.consent_summary(conn, since=since, until=until)
        )
    lang = texts.language(request)
    return console.layout.render(
        request,
        "consent.html",
        {
            "times": times,
            "values": values,
            "errors": errors,
            "revisions": revisions,
            "percent": lambda value: percent(value, lang),
        },
        session=session,
        section="consent",
    )


PAGES = [Page("/consent", consent_page, nav="consent")]
