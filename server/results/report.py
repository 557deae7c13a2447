"""Reports: what campaigns, variants and lifecycle stages achieved over a range of days, read
from the rollups alone (store/rollups.py), with the statistics to read an experiment by.

The same figures reach marketers through ``touchpoint report``, the server API
(``/tp/v1/api/reports/...``) and the console; docs/reports.md explains each one.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from ..rules.campaigns import Campaign
from ..rules.ruleset import Ruleset
from ..store import Connection
from ..store.records import STAGES
from ..store.rollups import CAMPAIGN_COUNTS
from .stats import Comparison, Mean, Proportion, compare, srm_p_value, wilson

DEFAULT_DAYS = 30  # a report without --since covers the last 30 days
MAX_DAYS = 731  # two years of days in one report
SRM_ALPHA = 0.001  # below this p-value the traffic split is flagged
MIN_EXPOSED = 100  # visitors per variant before a comparison is called
MIN_CONVERSIONS = 25  # conversions in a variant and its control together
CALL = 0.95  # chance to beat the control (and 1 - p) needed to call a winner or a loser


# How engaged each stage is: a move to a less engaged one is "backwards" (a customer lapsing
# to inactive, a win-back that stays away again); new-customer to customer is neither.
ENGAGEMENT = {
    "visitor": 0,
    "inactive": 0,
    "lead": 1,
    "win-back": 1,
    "new-customer": 2,
    "customer": 2,
}


class ReportError(ValueError):
    """A report asked for wrongly: an unknown campaign, a bad or too long range."""


@dataclass(frozen=True)
class Range:
    since: dt.date
    until: dt.date  # inclusive

    @property
    def days(self) -> list[str]:
        count = (self.until - self.since).days + 1
        return [(self.since + dt.timedelta(days=i)).isoformat() for i in range(count)]

    def as_json(self) -> dict[str, str]:
        return {"since": self.since.isoformat(), "until": self.until.isoformat()}


def day_range(since: str | None, until: str | None, *, today: dt.date) -> Range:
    """The days from ``since`` to ``until`` (YYYY-MM-DD, both included; default: the last
    DEFAULT_DAYS days up to ``today``)."""
    end = _date("until", until) if until else today
    start = _date("since", since) if since else end - dt.timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise ReportError(f"since ({start}) is after until ({end})")
    if (end - start).days + 1 > MAX_DAYS:
        raise ReportError(
            f"{(end - start).days + 1} days from {start} to {end}: at most {MAX_DAYS} in one report"
        )
    return Range(start, end)


def _date(name: str, value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ReportError(f"{name} must be a date as YYYY-MM-DD, got {value!r}") from None


# --- campaigns --------------------------------------------------------------------------------


def campaigns(conn: Connection, rules: Ruleset, days: Range) -> dict[str, Any]:
    """Every campaign with rollups in ``days`` or in the current rules: its counts summed over
    its variants and versions (the unique visitors: of its current version), and for an
    experiment its verdict."""
    by_variant = _counts(conn, days)
    revenue = _campaign_revenue(conn, days)
    totals: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(CAMPAIGN_COUNTS, 0))
    current: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
    for (campaign_id, version, variant), counts in by_variant.items():
        campaign = rules.by_id.get(campaign_id)
        latest = campaign.version if campaign else None
        for name, value in counts.items():
            if not name.startswith("unique_") or latest in (None, version):
                totals[campaign_id][name] += value
        if version == latest:
            current[campaign_id][variant] = counts
    out = []
    for campaign_id in sorted(set(totals) | set(rules.by_id)):
        counts = totals[campaign_id]
        campaign = rules.by_id.get(campaign_id)
        item: dict[str, Any] = {
            "campaign": campaign_id,
            "kind": campaign.kind if campaign else None,
            "in_rules": campaign is not None,
            **counts,
            "conversion_rate": _rate(counts["unique_converted"], counts["unique_exposed"]),
            "revenue": revenue.get(campaign_id, {}),
        }
        if campaign is not None and len(campaign.variants) > 1:
            experiment = _experiment(campaign, campaign.version, current[campaign_id], {})
            item["verdict"] = experiment["verdict"]
        out.append(item)
    return {"range": days.as_json(), "campaigns": out}


def campaign_report(
    conn: Connection,
    rules: Ruleset,
    campaign_id: str,
    days: Range,
    *,
    version: int | None = None,
) -> dict[str, Any]:
    """One campaign version's variants over ``days``: counts, rates with intervals, each
    variant against the control, the sample-ratio check, revenue, the daily series, a verdict."""
    campaign = rules.by_id.get(campaign_id)
    known = conn.execute(
        "SELECT 1 FROM rollup_campaign_months WHERE campaign = ? LIMIT 1", (campaign_id,)
    ).fetchone()
    if campaign is None and known is None:
        raise ReportError(f"no campaign {campaign_id!r} in the rules or the results")
    if version is None:
        version = campaign.version if campaign else _latest_version(conn, campaign_id)
    counts = {
        variant: c
        for (_, _, variant), c in _counts(conn, days, campaign=campaign_id, version=version).items()
    }
    revenue = _revenue(conn, days, campaign=campaign_id, version=version)
    bounds = (campaign_id, version, days.since.isoformat(), days.until.isoformat())
    return {
        "campaign": campaign_id,
        "version": version,
        "kind": campaign.kind if campaign else None,
        "range": days.as_json(),
        **_experiment(campaign, version, counts, revenue),
        "daily": _daily(conn, bounds, days),
    }


def _experiment(
    campaign: Campaign | None,
    version: int,
    counts: dict[str, dict[str, int]],
    revenue: dict[tuple[str, str], dict[str, Any]],
) -> dict[str, Any]:
    """The variants of one campaign version with their rates, each against the control, the
    sample-ratio check and the verdict."""
    configured = _variants(campaign) if campaign and campaign.version == version else []
    order = [v for v, _, _ in configured] + sorted(set(counts) - {v for v, _, _ in configured})
    control = _control(configured, order)
    if control is not None:  # the baseline first, as experiments are read
        order = [control, *(v for v in order if v != control)]
    variants = []
    for variant_id in order:
        c = counts.get(variant_id, dict.fromkeys(CAMPAIGN_COUNTS, 0))
        exposed, converted = c["unique_exposed"], c["unique_converted"]
        entry: dict[str, Any] = {
            "variant": variant_id,
            "control": variant_id == control,
            "weight": next((w for v, w, _ in configured if v == variant_id), None),
            **c,
            "conversion_rate": _rate(converted, exposed),
            "conversion_interval": wilson(converted, exposed),
            "revenue": {},
        }
        for (variant, currency), money in revenue.items():
            if variant == variant_id:
                per = money["revenue"] / exposed if exposed else None
                entry["revenue"][currency] = {**money, "per_exposed_visitor": per}
        variants.append(entry)
    if control is not None:
        base = next(v for v in variants if v["variant"] == control)
        for entry in variants:
            if entry["variant"] != control:
                entry["versus_control"] = _versus(base, entry, revenue)
    srm = _srm(variants, configured)
    return {
        "control": control,
        "variants": variants,
        "sample_ratio": srm,
        "verdict": _verdict(variants, control, srm),
    }


def variant_counts(conn: Connection, days: Range) -> dict[tuple[str, int, str], Any]:
    """The counts (CAMPAIGN_COUNTS) per (campaign, version, variant) over ``days``."""
    return _counts(conn, days)


def _counts(
    conn: Connection,
    days: Range,
    *,
    campaign: str | None = None,
    version: int | None = None,
) -> dict[tuple[str, int, str], dict[str, int]]:
    """The counts per (campaign, version, variant) over ``days``: the months ``days`` covers
    whole from rollup_campaign_months, the days before and after them from rollup_campaigns."""
    where, params = "", []
    if campaign is not None:
        where, params = "campaign = ? AND version = ? AND ", [campaign, version]
    parts, bounds = [], []
    for table, period, first, last in _pieces(days):
        parts.append(
            f"SELECT campaign, version, variant, {', '.join(CAMPAIGN_COUNTS)} FROM {table}"
            f" WHERE {where}{period} BETWEEN ? AND ?"
        )
        bounds += [*params, first, last]
    rows = conn.execute(
        f"SELECT campaign, version, variant, {_sums(CAMPAIGN_COUNTS)}"
        f" FROM ({' UNION ALL '.join(parts)}) AS u GROUP BY campaign, version, variant",
        bounds,
    ).fetchall()
    return {
        (c, v, variant): dict(zip(CAMPAIGN_COUNTS, map(int, values), strict=True))
        for c, v, variant, *values in rows
    }


def _pieces(days: Range) -> list[tuple[str, str, str, str]]:
    """``days`` as (table, period column, first, last): whole months, and the days around."""
    first_month = days.since if days.since.day == 1 else _next_month(days.since)
    end = days.until + dt.timedelta(days=1)
    last_month = end if end.day == 1 else end.replace(day=1)  # exclusive
    if first_month >= last_month:
        return [("rollup_campaigns", "day", days.since.isoformat(), days.until.isoformat())]
    pieces = [
        (
            "rollup_campaign_months",
            "month",
            first_month.isoformat()[:7],
            (last_month - dt.timedelta(days=1)).isoformat()[:7],
        )
    ]
    if days.since < first_month:
        before = first_month - dt.timedelta(days=1)
        pieces.append(("rollup_campaigns", "day", days.since.isoformat(), before.isoformat()))
    if last_month <= days.until:
        pieces.append(("rollup_campaigns", "day", last_month.isoformat(), days.until.isoformat()))
    return pieces


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _variants(campaign: Campaign) -> list[tuple[str, float, bool]]:
    return [(v.id, v.weight, v.control) for v in campaign.variants]


def _control(configured: list[tuple[str, float, bool]], order: list[str]) -> str | None:
    """The control variant, else the first variant; None with fewer than two variants."""
    if len(order) < 2:
        return None
    return next((v for v, _, is_control in configured if is_control), order[0])


def _versus(
    base: dict[str, Any], entry: dict[str, Any], revenue: dict[tuple[str, str], dict[str, Any]]
) -> dict[str, Any]:
    conversion = compare(
        Proportion(base["unique_exposed"], min(base["unique_converted"], base["unique_exposed"])),
        Proportion(
            entry["unique_exposed"], min(entry["unique_converted"], entry["unique_exposed"])
        ),
    )
    out: dict[str, Any] = {"conversion": _comparison(conversion), "revenue": {}}
    for currency in entry["revenue"]:
        theirs = revenue.get((base["variant"], currency))
        ours = revenue[(entry["variant"], currency)]
        result = compare(
            Mean(base["unique_exposed"], *_money(theirs)),
            Mean(entry["unique_exposed"], ours["revenue"], ours["revenue_squares"]),
        )
        out["revenue"][currency] = _comparison(result)
    return out


def _money(money: dict[str, Any] | None) -> tuple[float, float]:
    return (money["revenue"], money["revenue_squares"]) if money else (0.0, 0.0)


def _comparison(result: Comparison) -> dict[str, Any]:
    return {
        "uplift": result.uplift,
        "uplift_interval": result.interval,
        "p_value": result.p_value,
        "chance_to_beat_control": result.chance_to_beat,
    }


def _srm(
    variants: list[dict[str, Any]], configured: list[tuple[str, float, bool]]
) -> dict[str, Any] | None:
    """The chi-square check of exposed visitors per variant against the configured weights;
    None without weights (a variant no longer in the rules)."""
    weights = {v: w for v, w, _ in configured}
    if len(weights) < 2 or any(v["variant"] not in weights for v in variants):
        return None
    units = [v["unique_exposed"] for v in variants]
    p_value = srm_p_value(units, [weights[v["variant"]] for v in variants])
    return {"p_value": p_value, "flagged": p_value < SRM_ALPHA}


def _verdict(
    variants: list[dict[str, Any]], control: str | None, srm: dict[str, Any] | None
) -> dict[str, Any]:
    """What a careful analyst would say: never a winner from a flagged split or a small sample."""
    if control is None:
        return {"call": "no_experiment", "text": "One variant: nothing to compare."}
    if srm is not None and srm["flagged"]:
        return {
            "call": "sample_ratio_mismatch",
            "control": control,
            "p_value": srm["p_value"],
            "text": (
                "The visitors per variant do not match the weights"
                f" (p = {srm['p_value']:.2g}): something in the setup is off, so no variant is"
                " called. Check the weights, caching and what changed during the test."
            ),
        }
    base = next(v for v in variants if v["variant"] == control)
    winners, losers, small = [], [], []
    for entry in variants:
        if entry["variant"] == control:
            continue
        conversions = entry["unique_converted"] + base["unique_converted"]
        if min(entry["unique_exposed"], base["unique_exposed"]) < MIN_EXPOSED or (
            conversions < MIN_CONVERSIONS
        ):
            small.append(entry["variant"])
            continue
        figures = entry["versus_control"]["conversion"]
        chance, p_value = figures["chance_to_beat_control"], figures["p_value"]
        if chance is None or p_value is None:
            small.append(entry["variant"])
        elif chance >= CALL and p_value < 1 - CALL:
            winners.append(entry["variant"])
        elif chance <= 1 - CALL and p_value < 1 - CALL:
            losers.append(entry["variant"])
    parts = []
    if winners:
        parts.append(f"{', '.join(winners)} beat{'s' if len(winners) == 1 else ''} {control}.")
    if losers:
        parts.append(
            f"{', '.join(losers)} convert{'s' if len(losers) == 1 else ''} worse than {control}."
        )
    if small:
        parts.append(
            f"Too few visitors or conversions to call {', '.join(small)} yet (each variant needs"
            f" {MIN_EXPOSED} exposed visitors and {MIN_CONVERSIONS} conversions with its control)."
        )
    undecided = [
        v["variant"] for v in variants if v["variant"] not in (control, *winners, *losers, *small)
    ]
    if undecided:
        parts.append(f"No clear difference between {', '.join(undecided)} and {control} yet.")
    call = (
        "winner"
        if winners
        else "loser"
        if losers
        else "too_small"
        if small and not undecided
        else "no_difference"
    )
    return {
        "call": call,
        "control": control,
        "winners": winners,
        "losers": losers,
        "small": small,
        "undecided": undecided,
        "text": " ".join(parts),
    }


def _daily(conn: Connection, bounds: tuple[Any, ...], days: Range) -> list[dict[str, Any]]:
    rows = conn.execute(
        f"SELECT day, variant, {_sums(CAMPAIGN_COUNTS)} FROM rollup_campaigns"
        " WHERE campaign = ? AND version = ? AND day BETWEEN ? AND ? GROUP BY day, variant",
        bounds,
    ).fetchall()
    by_day: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
    for day, variant, *values in rows:
        by_day[day][variant] = dict(zip(CAMPAIGN_COUNTS, map(int, values), strict=True))
    return [{"day": day, "variants": by_day.get(day, {})} for day in days.days if day in by_day]


def _revenue(
    conn: Connection, days: Range, *, campaign: str, version: int
) -> dict[tuple[str, str], dict[str, Any]]:
    """Redemptions, revenue and its sum of squares per (variant, currency)."""
    rows = conn.execute(
        "SELECT variant, currency, sum(redemptions), coalesce(sum(revenue), 0.0),"
        " coalesce(sum(revenue_squares), 0.0)"
        " FROM rollup_revenue WHERE campaign = ? AND version = ? AND day BETWEEN ? AND ?"
        " GROUP BY variant, currency",
        (campaign, version, days.since.isoformat(), days.until.isoformat()),
    ).fetchall()
    return {
        (variant, currency): {"redemptions": count, "revenue": total, "revenue_squares": squares}
        for variant, currency, count, total, squares in rows
    }


def _campaign_revenue(conn: Connection, days: Range) -> dict[str, dict[str, Any]]:
    """Redemptions and revenue per campaign and currency."""
    rows = conn.execute(
        "SELECT campaign, currency, sum(redemptions), coalesce(sum(revenue), 0.0)"
        " FROM rollup_revenue"
        " WHERE day BETWEEN ? AND ? GROUP BY campaign, currency",
        (days.since.isoformat(), days.until.isoformat()),
    ).fetchall()
    out: dict[str, dict[str, Any]] = defaultdict(dict)
    for campaign_id, currency, count, total in rows:
        out[campaign_id][currency] = {"redemptions": count, "revenue": total}
    return out


def _latest_version(conn: Connection, campaign_id: str) -> int:
    row = conn.execute(
        "SELECT max(version) FROM rollup_campaign_months WHERE campaign = ?", (campaign_id,)
    ).fetchone()
    return int(row[0]) if row and row[0] is not None else 1


def _sums(names: tuple[str, ...]) -> str:
    return ", ".join(f"sum({name})" for name in names)


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# --- lifecycle --------------------------------------------------------------------------------


def lifecycle(conn: Connection, rules: Ruleset, days: Range) -> dict[str, Any]:
    """Visitors entering each stage (in the order lifecycle.yaml lists them), the flows between
    stages, the score thresholds crossed, and the daily series of both."""
    bounds = (days.since.isoformat(), days.until.isoformat())
    moves = conn.execute(
        "SELECT day, before, after, moves FROM rollup_stages WHERE day BETWEEN ? AND ?"
        " ORDER BY day",
        bounds,
    ).fetchall()
    crossings = conn.execute(
        "SELECT day, threshold, crossings FROM rollup_thresholds WHERE day BETWEEN ? AND ?"
        " ORDER BY day",
        bounds,
    ).fetchall()
    stages = list(STAGES)
    entered: dict[str, int] = defaultdict(int)
    flows: dict[tuple[str, str], int] = defaultdict(int)
    daily: dict[str, dict[str, Any]] = {}
    for day, before, after, count in moves:
        entered[after] += count
        flows[(before, after)] += count
        daily.setdefault(day, {"entered": defaultdict(int), "thresholds": {}})
        daily[day]["entered"][after] += count
    thresholds: dict[str, int] = defaultdict(int)
    for day, threshold, count in crossings:
        thresholds[threshold] += count
        daily.setdefault(day, {"entered": defaultdict(int), "thresholds": {}})
        daily[day]["thresholds"][threshold] = count
    order = stages + sorted(set(entered) - set(stages))
    rank = {stage: i for i, stage in enumerate(order)}

    def backwards(before: str, after: str) -> bool:
        return bool(before) and ENGAGEMENT.get(after, 0) < ENGAGEMENT.get(before, 0)

    return {
        "range": days.as_json(),
        "stages": [{"stage": s, "entered": entered.get(s, 0)} for s in order],
        "flows": [
            {
                "from": before or None,
                "to": after,
                "visitors": count,
                "backwards": backwards(before, after),
            }
            for (before, after), count in sorted(
                flows.items(), key=lambda kv: (rank.get(kv[0][0], -1), rank.get(kv[0][1], 0))
            )
        ],
        "thresholds": [{"threshold": t, "crossings": c} for t, c in sorted(thresholds.items())],
        "daily": [
            {"day": day, "entered": dict(v["entered"]), "thresholds": v["thresholds"]}
            for day, v in sorted(daily.items())
        ],
    }
