"""The simulator: ``touchpoint simulate`` in the browser. What a visitor would get on a page,
and for every campaign why it lost, for an anonymous visitor, a stored one (editors only: it
reads a person's profile) or a what-if profile; with preview links that open a campaign's
variant on the live site (decide/preview.py). The rules editor runs the same form against a
changed text before it is saved (admin/rules_editor.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..audience.geolocation import FixedCountry
from ..consent import categories as consent
from ..coupons.stock import Stock
from ..decide import simulation
from ..decide.preview import link as preview_link
from ..errors import ConfigError
from ..rules import ruleset as rules_module
from ..syntax.countries import country_code
from . import texts, visitors
from .guard import Console, posted_form, require
from .layout import Page
from .sessions import Session
from .users import allows
from .visitorview import Asked

texts.add(
    {
        "sim.title": ("Simulator", "Simulator"),
        "sim.intro": (
            "What a visitor would get on a page, and why every other campaign was not chosen:"
            " the same as touchpoint simulate. Nothing is recorded.",
            "Was ein Besucher auf einer Seite bekäme und warum jede andere Kampagne nicht"
            " gewählt wurde, wie touchpoint simulate. Es wird nichts gespeichert.",
        ),
        "sim.page": ("The page", "Die Seite"),
        "sim.url": ("Path or URL", "Pfad oder URL"),
        "sim.referrer": ("Referrer", "Referrer"),
        "sim.user_agent": ("User agent", "User-Agent"),
        "sim.language": ("Accept-Language", "Accept-Language"),
        "sim.country": ("Country (ISO code)", "Land (ISO-Code)"),
        "sim.context": ("Context (JSON)", "Kontext (JSON)"),
        "sim.slots": ("Slots on the page (space-separated)", "Slots der Seite (mit Leerzeichen)"),
        "sim.trigger": ("Trigger that fires", "Auslöser, der feuert"),
        "sim.no_trigger": ("(none)", "(keiner)"),
        "sim.at": ("At (date, time or Unix seconds; empty: now)", "Zeitpunkt (leer: jetzt)"),
        "sim.who": ("The visitor", "Der Besucher"),
        "sim.anonymous": ("Anonymous", "Anonym"),
        "sim.stored": ("A stored visitor (by visitor id)", "Ein gespeicherter Besucher (ID)"),
        "sim.what_if": ("A what-if profile", "Ein Was-wäre-wenn-Profil"),
        "sim.visitor": ("Visitor id", "Besucher-ID"),
        "sim.profile": ("What-if profile (JSON)", "Was-wäre-wenn-Profil (JSON)"),
        "sim.run": ("Simulate", "Simulieren"),
        "sim.result": ("{url} for {who} at {at}", "{url} für {who} am {at}"),
        "sim.who_anonymous": ("an anonymous visitor", "einen anonymen Besucher"),
        "sim.who_stored": ("visitor {id}", "Besucher {id}"),
        "sim.who_what_if": ("a what-if visitor", "einen Was-wäre-wenn-Besucher"),
        "sim.profile_reading": (
            "Score {score}, stage {stage}, {visits} visit(s), last visit {last}",
            "Score {score}, Phase {stage}, {visits} Besuch(e), letzter Besuch {last}",
        ),
        "sim.never": ("never", "nie"),
        "sim.days_ago": ("{days} day(s) ago", "vor {days} Tag(en)"),
        "sim.in_country": ("Country: {country}", "Land: {country}"),
        "sim.popup": (
            "Popup {campaign} ({variant}) on {trigger}",
            "Popup {campaign} ({variant}) bei {trigger}",
        ),
        "sim.slot": ("Slot {slot}: {campaign}", "Slot {slot}: {campaign}"),
        "sim.nothing": ("Nothing is shown.", "Es wird nichts gezeigt."),
        "sim.fired": ("When {trigger} fires: {shows}", "Wenn {trigger} feuert: {shows}"),
        "sim.campaigns": ("Every campaign and why", "Jede Kampagne und warum"),
        "sim.chosen": ("chosen", "gewählt"),
        "sim.not_chosen": ("not chosen: {reason}", "nicht gewählt: {reason}"),
        "sim.preview": ("Preview", "Vorschau"),
        "sim.preview_link": ("open {campaign} on the site", "{campaign} auf der Website öffnen"),
        "sim.preview_note": (
            "Preview links show a campaign's variant on the live site, whatever its audience says,"
            " for 24 hours; they show the rules as served, not an unsaved change.",
            "Vorschau-Links zeigen eine Variante auf der Website, unabhängig von der Zielgruppe,"
            " 24 Stunden lang; sie zeigen die ausgespielten Regeln, keine ungespeicherte Änderung.",
        ),
        "col.source": ("File", "Datei"),
        "col.outcome": ("Outcome", "Ergebnis"),
        "sim.bad_json": ("Not JSON: {detail}", "Kein JSON: {detail}"),
        "sim.bad_value": ("{detail}", "{detail}"),
        "sim.bad_url": (
            "A path starting with / or an http(s) URL.",
            "Ein Pfad mit / am Anfang oder eine http(s)-URL.",
        ),
        "sim.no_visitor": ("No visitor with this id.", "Kein Besucher mit dieser ID."),
        "sim.need_visitor": ("Give the visitor id.", "Die Besucher-ID angeben."),
        "sim.need_profile": ("Give the profile as JSON.", "Das Profil als JSON angeben."),
        "sim.editors_only": (
            "Only editors may simulate a stored visitor.",
            "Nur Bearbeiter dürfen einen gespeicherten Besucher simulieren.",
        ),
    }
)
TRIGGERS = ("load", "seconds", "scroll", "inactivity", "exit_intent", "click", "event")
FIELDS = (
    "url",
    "referrer",
    "user_agent",
    "language",
    "country",
    "context",
    "slots",
    "trigger",
    "at",
    "who",
    "visitor",
    "profile",
)
PREVIEW_TTL = 24 * 3600
Errors = dict[str, tuple[str, dict[str, Any]]]


def values_of(fields: Mapping[str, str]) -> dict[str, str]:
    """The simulation form's values, with its defaults."""
    values = {name: fields.get(name, "").strip() for name in FIELDS}
    values["url"] = values["url"] or "/"
    values["context"] = values["context"] or "{}"
    if values["who"] not in ("anonymous", "visitor", "profile"):
        values["who"] = "anonymous"
    return values


def _json(text: str, field: str, errors: Errors) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        errors[field] = ("sim.bad_json", {"detail": str(exc)})
    except RecursionError:  # nested deeper than the parser goes
        errors[field] = ("sim.bad_json", {"detail": "nested too deeply"})
    return None


async def audited(request: Request, session: Session, values: Mapping[str, str]) -> Response | None:
    """A simulation of a stored visitor reads a person's profile: audited like a lookup
    (admin/visitors.py) before anything is read; the 503 page when it cannot be stored."""
    visitor_id = values["visitor"]
    if values["who"] != "visitor" or not visitor_id or not allows(session.role, "editor"):
        return None
    return await visitors.audited(
        request, session, "simulate", Asked("id", visitor_id, ("id", visitor_id))
    )


def run(
    request: Request,
    ruleset: rules_module.Ruleset,
    values: Mapping[str, str],
    *,
    may_read_visitors: bool,
) -> tuple[dict[str, Any] | None, Errors]:
    """The simulation the form asks for with ``ruleset``, or the errors by field."""
    tp = Console.tp(request)
    errors: Errors = {}
    url = values["url"]
    if not (url.startswith("/") or url.startswith(("http://", "https://"))):
        errors["url"] = ("sim.bad_url", {})
    context = _json(values["context"], "context", errors)
    source = None
    if values["country"]:
        try:
            source = FixedCountry(country_code(values["country"]))
        except ValueError as exc:
            errors["country"] = ("sim.bad_value", {"detail": str(exc)})
    now = tp.now()
    if values["at"]:
        try:
            now = simulation.at_time(values["at"], ruleset)
        except ConfigError as exc:
            errors["at"] = ("sim.bad_value", {"detail": str(exc).removeprefix("--at: ")})
    profile, history, visitor_id = None, None, None
    who = values["who"]
    if who == "visitor":
        if not may_read_visitors:
            errors["visitor"] = ("sim.editors_only", {})
        elif not values["visitor"]:
            errors["visitor"] = ("sim.need_visitor", {})
        else:
            record = tp.reader.visitor(values["visitor"])  # a primary-key read
            if record is None:
                errors["visitor"] = ("sim.no_visitor", {})
            else:
                profile, history = consent.usable(record, tp.settings.consent_revision)
                visitor_id = values["visitor"] if history is not None else None
    elif who == "profile":
        data = _json(values["profile"] or "null", "profile", errors)
        if data is None and "profile" not in errors:
            errors["profile"] = ("sim.need_profile", {})
        elif "profile" not in errors:
            try:
                profile, history = simulation.what_if(data)
                visitor_id = "what-if"
            except ConfigError as exc:
                errors["profile"] = ("sim.bad_value", {"detail": _detail(exc, "--profile")})
    if errors:
        return None, errors
    try:
        result = simulation.simulate(
            ruleset,
            url,
            now=now,
            referrer=values["referrer"],
            context=context,
            slots=tuple(values["slots"].replace(",", " ").split()),
            user_agent=values["user_agent"],
            language=values["language"],
            source=source,
            profile=profile,
            history=history,
            visitor_id=visitor_id,
            trigger=values["trigger"] if values["trigger"] in TRIGGERS else None,
            empty_pools=_empty_pools(request, ruleset),
        )
    except ConfigError as exc:
        field = "profile" if str(exc).startswith("--profile") else "context"
        detail = str(exc).split(": ", 1)[-1]
        return None, {field: ("sim.bad_value", {"detail": detail})}
    result["who"] = who
    result["visitor_id"] = values["visitor"] if who == "visitor" else None
    for row in result["campaigns"]:
        row["file"] = os.path.basename(row["source"].rsplit(":", 1)[0])
    return result, {}


def _empty_pools(request: Request, ruleset: rules_module.Ruleset) -> frozenset[str]:
    reader = Console.tp(request).reader
    if not ruleset.finite_pools or reader is None:
        return frozenset(ruleset.finite_pools)
    return Stock(ttl=0).empty(ruleset.finite_pools, reader)


def preview_links(request: Request, url: str, campaigns: list[str]) -> dict[str, str]:
    """A preview link per campaign of the rules served (its first variant that shows), on
    ``url``, valid for a day: what ``touchpoint preview CAMPAIGN --url URL`` prints."""
    tp = Console.tp(request)
    expires = tp.now() + PREVIEW_TTL
    served = tp.rules.by_id
    links = {}
    for cid in campaigns:
        campaign = served.get(cid)
        if campaign is None or not any(not v.control for v in campaign.variants):
            continue
        links[cid] = preview_link(url, tp.previews.token(cid, None, expires=expires))
    return links


def context(
    request: Request, result: dict[str, Any] | None, values: Mapping[str, str], errors: Errors
) -> dict[str, Any]:
    """The template context of a simulation form and its result (simulator.html's macros)."""
    links = {}
    if result is not None:
        links = preview_links(request, values["url"], [r["campaign"] for r in result["campaigns"]])
    return {
        "sim": result,
        "values": values,
        "errors": errors,
        "triggers": TRIGGERS,
        "links": links,
    }


@require("viewer")
async def simulator(request: Request, session: Session) -> Response:
    """``/simulator``: the form (GET), and its trace (POST: a visitor id stays out of URLs)."""
    console = Console.of(request)
    fields: Mapping[str, str] = request.query_params
    if request.method == "POST":
        form = await posted_form(request, session)
        if isinstance(form, Response):
            return form
        fields = form
    values = values_of(fields)
    result: dict[str, Any] | None = None
    errors: Errors = {}
    if request.method == "POST":
        refused = await audited(request, session, values)
        if refused is not None:
            return refused
        may = allows(session.role, "editor")
        result, errors = run(request, Console.tp(request).rules, values, may_read_visitors=may)
    return console.layout.render(
        request,
        "simulator.html",
        {
            **context(request, result, values, errors),
            "may_read_visitors": allows(session.role, "editor"),
        },
        status=400 if errors else 200,
        session=session,
        section="simulator",
    )


PAGES = [Page("/simulator", simulator, methods=("GET", "POST"), nav="simulator")]


def _detail(exc: ConfigError, option: str) -> str:
    """A CLI message without its option's name: the form shows it beside the field."""
    return str(exc).removeprefix(option + ": ").removeprefix(option + " ")
