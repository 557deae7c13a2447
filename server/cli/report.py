"""``touchpoint report``: the results of campaigns, of one campaign's experiment and of the
lifecycle (results/report.py), as tables for a terminal, JSON or CSV (docs/reports.md)."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import store
from ..errors import ConfigError
from ..results import report
from ..rules import ruleset
from ..settings import Settings


def add_parser(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    """``report`` and its three views. --since, --until and --csv are taken before or after the
    view (like the shared --json): the views' copies leave a flag that is not given out."""
    command = commands.add_parser(
        "report",
        help="results: campaigns, one campaign's experiment, the lifecycle (docs/reports.md)",
        description="What campaigns, variants and lifecycle stages achieved; read from the"
        " rollups, which outlive the event log. Without a view: the campaigns overview.",
        parents=parents,
    )
    _range_options(command, top=True)
    views = command.add_subparsers(dest="view", metavar="VIEW")
    campaigns = views.add_parser(
        "campaigns", help="every campaign's counts, conversion rate and verdict"
    )
    one = views.add_parser(
        "campaign", help="one campaign's variants against the control, with statistics"
    )
    one.add_argument("campaign", help="the campaign id")
    one.add_argument("--version", type=int, help="the campaign version (default: the current)")
    one.add_argument(
        "--daily", action="store_true", help="with --csv: the daily series, not the variants"
    )
    lifecycle = views.add_parser(
        "lifecycle", help="visitors entering each stage, flows between stages, thresholds"
    )
    for view in (campaigns, one, lifecycle):
        _range_options(view, top=False)


def _range_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    unset = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--since",
        default=unset,
        help="the first day, YYYY-MM-DD in the site's time zone (default: 29 days before --until)",
    )
    parser.add_argument("--until", default=unset, help="the last day, included (default: today)")
    parser.add_argument(
        "--csv",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="print the report's table as CSV (for a spreadsheet)",
    )


def command(settings: Settings, args: argparse.Namespace) -> int:
    rules = ruleset.load(settings.rules_dir)
    today = dt.datetime.fromtimestamp(time.time(), rules.site.timezone).date()
    try:
        days = report.day_range(args.since, args.until, today=today)
        with store.database(settings.database_url) as conn:
            view = args.view or "campaigns"
            if view == "campaign":
                body = report.campaign_report(
                    conn, rules, args.campaign, days, version=args.version
                )
            elif view == "lifecycle":
                body = report.lifecycle(conn, rules, days)
            else:
                body = report.campaigns(conn, rules, days)
    except report.ReportError as exc:
        raise ConfigError(str(exc)) from None
    if args.json:
        import orjson

        sys.stdout.write(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    header, rows = TABLES[view](body, daily=getattr(args, "daily", False))
    if args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([[_plain(v) for v in row] for row in rows])
        return 0
    print(TITLES[view](body))
    print()
    print(_table(header, [[_text(v) for v in row] for row in rows]))
    for line in NOTES[view](body):
        print(line)
    return 0


# --- what each view shows -------------------------------------------------------------------


def _campaigns_table(body: dict[str, Any], *, daily: bool) -> tuple[list[str], list[list[Any]]]:
    header = [
        "campaign",
        "armed",
        "exposures",
        "visitors",
        "converted",
        "rate",
        "reveals",
        "redemptions",
        "revenue",
        "verdict",
    ]
    rows = [
        [
            c["campaign"] + ("" if c["in_rules"] else " (removed)"),
            c["armed"],
            c["exposures"],
            c["unique_exposed"],
            c["unique_converted"],
            _percent(c["conversion_rate"]),
            c["reveals"],
            c["redemptions"],
            _money(c["revenue"]),
            c.get("verdict", {}).get("call", "").replace("_", " "),
        ]
        for c in body["campaigns"]
    ]
    return header, rows


def _campaign_table(body: dict[str, Any], *, daily: bool) -> tuple[list[str], list[list[Any]]]:
    if daily:
        header = ["day", "variant", *store.CAMPAIGN_COUNTS]
        rows = [
            [day["day"], variant, *(counts[n] for n in store.CAMPAIGN_COUNTS)]
            for day in body["daily"]
            for variant, counts in day["variants"].items()
        ]
        return header, rows
    header = [
        "variant",
        "weight",
        "exposures",
        "visitors",
        "converted",
        "rate",
        "95% interval",
        "uplift",
        "uplift 95% interval",
        "chance to beat",
        "p-value",
        "revenue/visitor",
    ]
    rows = []
    for v in body["variants"]:
        versus = v.get("versus_control", {}).get("conversion", {})
        low_high = v["conversion_interval"]
        uplift = versus.get("uplift_interval")
        rows.append(
            [
                v["variant"] + (" (control)" if v["control"] else ""),
                v["weight"],
                v["exposures"],
                v["unique_exposed"],
                v["unique_converted"],
                _percent(v["conversion_rate"]),
                _interval(low_high),
                _percent(versus.get("uplift"), signed=True),
                _interval(uplift, signed=True),
                _chance(versus.get("chance_to_beat_control")),
                _p(versus.get("p_value")),
                "; ".join(
                    f"{m['per_exposed_visitor']:.2f} {currency}"
                    for currency, m in v["revenue"].items()
                    if m.get("per_exposed_visitor") is not None
                ),
            ]
        )
    return header, rows


def _lifecycle_table(body: dict[str, Any], *, daily: bool) -> tuple[list[str], list[list[Any]]]:
    header = ["from", "to", "visitors"]
    rows = [
        [f["from"] or "(new)", f["to"] + (" (backwards)" if f["backwards"] else ""), f["visitors"]]
        for f in body["flows"]
    ]
    return header, rows


def _range_title(body: dict[str, Any]) -> str:
    return f"{body['range']['since']} to {body['range']['until']}"


TITLES = {
    "campaigns": lambda b: f"Campaigns, {_range_title(b)}",
    "campaign": lambda b: f"{b['campaign']}, version {b['version']}, {_range_title(b)}",
    "lifecycle": lambda b: f"Lifecycle moves, {_range_title(b)}",
}


def _campaign_notes(body: dict[str, Any]) -> list[str]:
    lines = [""]
    srm = body["sample_ratio"]
    if srm is not None:
        state = "FLAGGED" if srm["flagged"] else "as the weights say"
        lines.append(f"Sample ratio: p = {srm['p_value']:.3g} ({state})")
    lines.append(f"Verdict: {body['verdict']['text']}")
    return lines


def _lifecycle_notes(body: dict[str, Any]) -> list[str]:
    lines = ["", "Entered: " + ", ".join(f"{s['stage']} {s['entered']}" for s in body["stages"])]
    if body["thresholds"]:
        crossed = ", ".join(f"{t['threshold']} {t['crossings']}" for t in body["thresholds"])
        lines.append(f"Thresholds crossed: {crossed}")
    return lines


Table = Callable[..., tuple[list[str], list[list[Any]]]]
TABLES: dict[str, Table] = {
    "campaigns": _campaigns_table,
    "campaign": _campaign_table,
    "lifecycle": _lifecycle_table,
}
NOTES = {"campaigns": lambda b: [], "campaign": _campaign_notes, "lifecycle": _lifecycle_notes}


# --- formatting -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Cell:
    """A figure as the terminal shows it and the plain value CSV gets."""

    text: str
    value: Any


def _percent(value: float | None, *, signed: bool = False) -> _Cell | None:
    if value is None:
        return None
    return _Cell(f"{value * 100:+.1f}%" if signed else f"{value * 100:.1f}%", value)


def _chance(value: float | None) -> _Cell | None:
    """A probability: never rounded up to a certainty it is not."""
    if value is None:
        return None
    if value > 0.999 or value < 0.001:
        return _Cell(">99.9%" if value > 0.999 else "<0.1%", value)
    return _percent(value)


def _interval(bounds: Any, *, signed: bool = False) -> _Cell | None:
    if not bounds:
        return None
    low, high = (_percent(b, signed=signed) for b in bounds)
    assert low is not None and high is not None
    return _Cell(f"{low.text} to {high.text}", f"{bounds[0]:.6g} to {bounds[1]:.6g}")


def _p(value: float | None) -> _Cell | None:
    if value is None:
        return None
    return _Cell("<0.001" if value < 0.001 else f"{value:.3f}", value)


def _money(revenue: dict[str, Any]) -> str:
    return "; ".join(f"{m['revenue']:,.2f} {currency}" for currency, m in revenue.items())


def _plain(value: Any) -> Any:
    """A cell for CSV: numbers as numbers."""
    if isinstance(value, _Cell):
        return value.value
    return "" if value is None else value


def _text(value: Any) -> str:
    if isinstance(value, _Cell):
        return value.text
    return "—" if value is None or value == "" else str(value)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    numeric = [
        all(r[i] == "—" or r[i][:1].isdigit() or r[i][:1] in "+-<>" for r in rows) and bool(rows)
        for i in range(len(header))
    ]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if right else c.ljust(w)
            for c, w, right in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(header), *(line(r) for r in rows)] if rows else [line(header)])
