"""Results: one campaign's variants against its control, as ``touchpoint report campaign``
shows them (results/report.py's ``campaign_report``), with charts of the daily series, a
range form and CSV. The figures are the report's; this module only formats them."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .. import store
from ..results import report
from ..store import Connection
from . import texts
from .guard import Console, read, require
from .layout import Page
from .results import asked_range, csv_response, percent
from .sessions import Session

texts.add(
    {
        "verdict.no_experiment": (
            "One variant: nothing to compare.",
            "Eine Variante: nichts zu vergleichen.",
        ),
        "verdict.sample_ratio_mismatch": (
            "The visitors per variant do not match the weights (p = {p}): something in the setup"
            " is off, so no variant is called. Check the weights, caching and what changed"
            " during the test.",
            "Die Besucher je Variante passen nicht zu den Gewichten (p = {p}): an der"
            " Einrichtung stimmt etwas nicht, daher wird keine Variante ausgerufen. Prüfen Sie"
            " die Gewichte, das Caching und was sich während des Tests geändert hat.",
        ),
        "verdict.winners.1": ("{names} beats {control}.", "{names} schlägt {control}."),
        "verdict.winners.n": ("{names} beat {control}.", "{names} schlagen {control}."),
        "verdict.losers.1": (
            "{names} converts worse than {control}.",
            "{names} konvertiert schlechter als {control}.",
        ),
        "verdict.losers.n": (
            "{names} convert worse than {control}.",
            "{names} konvertieren schlechter als {control}.",
        ),
        "verdict.small": (
            "Too few visitors or conversions to call {names} yet (each variant needs {exposed}"
            " exposed visitors and {conversions} conversions with its control).",
            "Zu wenige Besucher oder Conversions, um {names} schon zu beurteilen (jede Variante"
            " braucht {exposed} erreichte Besucher und {conversions} Conversions mit ihrer"
            " Kontrolle).",
        ),
        "verdict.undecided": (
            "No clear difference between {names} and {control} yet.",
            "Noch kein klarer Unterschied zwischen {names} und {control}.",
        ),
        "campaign.title": ("Campaign {campaign}", "Kampagne {campaign}"),
        "campaign.back": ("All campaigns", "Alle Kampagnen"),
        "campaign.version": (
            "Version {version}, {since} to {until}",
            "Version {version}, {since} bis {until}",
        ),
        "campaign.unknown": (
            "There is no campaign “{campaign}” in the rules or the results.",
            "Es gibt keine Kampagne „{campaign}“ in den Regeln oder den Ergebnissen.",
        ),
        "campaign.variants": ("Variants", "Varianten"),
        "campaign.control": ("control", "Kontrolle"),
        "campaign.csv_daily": ("Daily series as CSV", "Tagesreihe als CSV"),
        "campaign.chart_converted": (
            "Converted visitors per day and variant",
            "Konvertierte Besucher pro Tag und Variante",
        ),
        "campaign.chart_exposures": (
            "Exposures per day and variant",
            "Einblendungen pro Tag und Variante",
        ),
        "campaign.daily": ("Figures per day", "Zahlen pro Tag"),
        "campaign.srm": ("Sample ratio", "Stichprobenverhältnis"),
        "campaign.srm_ok": (
            "p = {p}: the visitors per variant match the weights.",
            "p = {p}: die Besucher je Variante passen zu den Gewichten.",
        ),
        "campaign.srm_flagged": (
            "p = {p}: FLAGGED, the visitors per variant do not match the weights.",
            "p = {p}: AUFFÄLLIG, die Besucher je Variante passen nicht zu den Gewichten.",
        ),
        "campaign.verdict": ("Verdict", "Ergebnis"),
        "campaign.help": (
            "Each figure, and how to read an experiment: docs/reports.md.",
            "Jede Zahl und wie ein Experiment zu lesen ist: docs/reports.md (englisch).",
        ),
        "call.winner": ("A winner", "Ein Gewinner"),
        "call.loser": ("Worse than the control", "Schlechter als die Kontrolle"),
        "call.too_small": ("Too early to call", "Noch zu früh für ein Urteil"),
        "call.no_difference": ("No clear difference yet", "Noch kein klarer Unterschied"),
        "call.sample_ratio_mismatch": ("Sample ratio mismatch", "Stichprobenverhältnis gestört"),
        "call.no_experiment": ("Not an experiment", "Kein Experiment"),
        "col.variant": ("Variant", "Variante"),
        "col.weight": ("Weight", "Gewicht"),
        "col.interval": ("95% interval", "95-%-Intervall"),
        "col.uplift": ("Uplift", "Uplift"),
        "col.uplift_interval": ("Uplift 95% interval", "Uplift 95-%-Intervall"),
        "col.chance": ("Chance to beat control", "Chance, die Kontrolle zu schlagen"),
        "col.p_value": ("p-value", "p-Wert"),
        "col.per_visitor": ("Revenue per visitor", "Umsatz je Besucher"),
        "col.day": ("Day", "Tag"),
    }
)
COLUMNS = (  # the variants table's, as touchpoint report campaign prints it (its CSV header)
    ("variant", "col.variant"),
    ("weight", "col.weight"),
    ("exposures", "col.exposures"),
    ("visitors", "col.visitors"),
    ("converted", "col.converted"),
    ("rate", "col.rate"),
    ("95% interval", "col.interval"),
    ("uplift", "col.uplift"),
    ("uplift 95% interval", "col.uplift_interval"),
    ("chance to beat", "col.chance"),
    ("p-value", "col.p_value"),
    ("revenue/visitor", "col.per_visitor"),
)


class Figures:
    """The report's numbers as the CLI writes them, with the language's decimal mark."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def number(self, text: str) -> str:
        return text.replace(".", ",") if self.lang == "de" else text

    def percent(self, value: float | None, *, signed: bool = False) -> str:
        if value is None or not signed:
            return percent(value, self.lang)
        return self.number(f"{value * 100:+.1f}") + "\u00a0%"

    def interval(self, bounds: Any, *, signed: bool = False) -> str:
        if not bounds:
            return "—"
        low, high = (self.percent(b, signed=signed) for b in bounds)
        return f"{low} – {high}"

    def chance(self, value: float | None) -> str:
        """A probability, never rounded up to a certainty it is not."""
        if value is not None and value > 0.999:
            return ">" + self.number("99.9") + "\u00a0%"
        if value is not None and value < 0.001:
            return "<" + self.number("0.1") + "\u00a0%"
        return self.percent(value)

    def p(self, value: float | None) -> str:
        if value is None:
            return "—"
        return self.number("<0.001" if value < 0.001 else f"{value:.3f}")

    def money(self, value: float) -> str:
        return self.number(f"{value:.2f}")

    def per_visitor(self, revenue: dict[str, Any]) -> str:
        return "; ".join(
            f"{self.money(m['per_exposed_visitor'])} {currency}"
            for currency, m in revenue.items()
            if m.get("per_exposed_visitor") is not None
        )


def _chart(
    body: dict[str, Any], days: report.Range, count: str, caption: str, y_label: str
) -> dict[str, Any]:
    """A caption, the y axis's label and charts.js's data: one line per variant, every day."""
    by_day = {d["day"]: d["variants"] for d in body["daily"]}
    zero = dict.fromkeys(store.CAMPAIGN_COUNTS, 0)
    series = {
        "x": days.days,
        "y": "conversions",
        "series": [
            {
                "label": v["variant"],
                "values": [by_day.get(day, {}).get(v["variant"], zero)[count] for day in days.days],
            }
            for v in body["variants"]
        ],
    }
    return {"caption": caption, "y_label": y_label, "series": series}


async def _report(request: Request, campaign_id: str, days: report.Range) -> dict[str, Any] | None:
    rules = Console.tp(request).rules

    def run(conn: Connection) -> dict[str, Any] | None:
        try:
            return report.campaign_report(conn, rules, campaign_id, days)
        except report.ReportError:  # the only one for a valid range: an unknown campaign
            return None

    return await read(request, run)


def verdict_text(verdict: dict[str, Any], lang: str, figures: Figures) -> str:
    """The report's verdict in the page's language, from its parts (results/report.py)."""
    call = verdict["call"]
    if call == "no_experiment":
        return texts.text("verdict.no_experiment", lang)
    if call == "sample_ratio_mismatch":
        return texts.text("verdict.sample_ratio_mismatch", lang).format(
            p=figures.p(verdict["p_value"])
        )
    control, sentences = verdict["control"], []
    for part in ("winners", "losers"):
        if verdict[part]:
            key = f"verdict.{part}.{'1' if len(verdict[part]) == 1 else 'n'}"
            names = ", ".join(verdict[part])
            sentences.append(texts.text(key, lang).format(names=names, control=control))
    if verdict["small"]:
        sentences.append(
            texts.text("verdict.small", lang).format(
                names=", ".join(verdict["small"]),
                exposed=report.MIN_EXPOSED,
                conversions=report.MIN_CONVERSIONS,
            )
        )
    if verdict["undecided"]:
        sentences.append(
            texts.text("verdict.undecided", lang).format(
                names=", ".join(verdict["undecided"]), control=control
            )
        )
    return " ".join(sentences)


@require("viewer")
async def campaign_page(request: Request, session: Session) -> Response:
    """``/results/{campaign}``: its variants, the sample-ratio check, the verdict, charts."""
    console = Console.of(request)
    campaign_id = request.path_params["campaign"]
    days, values, errors = asked_range(request)
    body = await _report(request, campaign_id, days) if days else None
    known = campaign_id in Console.tp(request).rules.by_id
    if body is None and (days is not None or not known):
        return console.refuse(
            request, "campaign.unknown", status=404, session=session, campaign=campaign_id
        )
    lang = texts.language(request)
    charts = []
    if body is not None and days is not None and body["variants"]:
        charts = [
            _chart(
                body,
                days,
                "unique_converted",
                texts.text("campaign.chart_converted", lang),
                texts.text("col.converted", lang),
            ),
            _chart(
                body,
                days,
                "exposures",
                texts.text("campaign.chart_exposures", lang),
                texts.text("col.exposures", lang),
            ),
        ]
    return console.layout.render(
        request,
        "campaign.html",
        {
            "campaign": campaign_id,
            "body": body,
            "days": days,
            "values": values,
            "errors": errors,
            "columns": COLUMNS,
            "charts": charts,
            "f": Figures(lang),
            "verdict": verdict_text(body["verdict"], lang, Figures(lang)) if body else "",
            "query": "since={since}&until={until}".format(**values) if days else "",
        },
        session=session,
        section="results",
    )


@require("viewer")
async def campaign_csv(request: Request, session: Session) -> Response:
    """``/results/{campaign}.csv``: the variants table as ``touchpoint report campaign --csv``
    writes it; with ``daily=1`` the daily series, as its ``--daily``."""
    console = Console.of(request)
    campaign_id = request.path_params["campaign"]
    days, _, _ = asked_range(request)
    if days is None:
        return console.refuse(request, "results.bad_date", status=400, session=session)
    body = await _report(request, campaign_id, days)
    if body is None:
        return console.refuse(
            request, "campaign.unknown", status=404, session=session, campaign=campaign_id
        )
    name = f"{campaign_id}-{days.since.isoformat()}-{days.until.isoformat()}"
    if request.query_params.get("daily"):
        header = ["day", "variant", *store.CAMPAIGN_COUNTS]
        rows = [
            [day["day"], variant, *(counts[n] for n in store.CAMPAIGN_COUNTS)]
            for day in body["daily"]
            for variant, counts in day["variants"].items()
        ]
        return csv_response(header, rows, f"{name}-daily.csv")
    return csv_response(
        [c for c, _ in COLUMNS], [_csv_row(v) for v in body["variants"]], name + ".csv"
    )


def _csv_row(v: dict[str, Any]) -> list[Any]:
    """A variant as the CLI's CSV has it: numbers as numbers, intervals as "low to high"."""
    versus = v.get("versus_control", {}).get("conversion", {})

    def interval(bounds: Any) -> str | None:
        return f"{bounds[0]:.6g} to {bounds[1]:.6g}" if bounds else None

    return [
        v["variant"] + (" (control)" if v["control"] else ""),
        v["weight"],
        v["exposures"],
        v["unique_exposed"],
        v["unique_converted"],
        v["conversion_rate"],
        interval(v["conversion_interval"]),
        versus.get("uplift"),
        interval(versus.get("uplift_interval")),
        versus.get("chance_to_beat_control"),
        versus.get("p_value"),
        "; ".join(
            f"{m['per_exposed_visitor']:.2f} {currency}"
            for currency, m in v["revenue"].items()
            if m.get("per_exposed_visitor") is not None
        ),
    ]


PAGES = [
    Page("/results/{campaign}.csv", campaign_csv),  # before the page: its path would match too
    Page("/results/{campaign}", campaign_page),
]
