"""Sums the console shows beside the reports (results/report.py), read from the same rollups:
every campaign's exposures and conversions per day, and what the coupon pools' campaigns handed
out and brought in. Counts only: the statistics stay in report.py."""

from __future__ import annotations

from typing import Any

from ..rules.ruleset import Ruleset
from ..store import Connection
from .report import Range, variant_counts

# Up to this many days, the daily totals look up each campaign's days (measured with 200
# campaigns x 3 variants: 13 ms for 30 days); beyond, one pass over the table is cheaper.
SCAN_DAYS = 92


def daily_totals(conn: Connection, days: Range) -> dict[str, Any]:
    """Over all campaigns, per day of ``days`` (every day, zeros included): exposures, newly
    exposed visitors and newly converted visitors."""
    since, until = days.since.isoformat(), days.until.isoformat()
    sums = "sum(r.exposures), sum(r.unique_exposed), sum(r.unique_converted)"
    params: tuple[str, ...]
    if len(days.days) > SCAN_DAYS:  # most rows are in the range: one pass over the table
        sql, params = (
            f"SELECT r.day, {sums} FROM rollup_campaigns AS r WHERE r.day BETWEEN ? AND ?"
            " GROUP BY r.day",
            (since, until),
        )
    else:  # the rows are keyed by campaign first: look up each key's days in the range
        sql, params = (
            f"SELECT r.day, {sums} FROM (SELECT DISTINCT campaign, version, variant"
            "  FROM rollup_campaign_months WHERE month BETWEEN ? AND ?) AS k"
            " JOIN rollup_campaigns AS r ON r.campaign = k.campaign AND r.version = k.version"
            "  AND r.variant = k.variant AND r.day BETWEEN ? AND ? GROUP BY r.day",
            (since[:7], until[:7], since, until),
        )
    rows = conn.execute(sql, params).fetchall()
    by_day = {day: (int(e), int(u), int(c)) for day, e, u, c in rows}
    out: dict[str, Any] = {"days": days.days, "exposures": [], "exposed": [], "converted": []}
    for day in out["days"]:
        exposures, exposed, converted = by_day.get(day, (0, 0, 0))
        out["exposures"].append(exposures)
        out["exposed"].append(exposed)
        out["converted"].append(converted)
    return out


def pool_campaigns(conn: Connection, rules: Ruleset, days: Range) -> list[dict[str, Any]]:
    """Per coupon pool and campaign (through the variants that name the pool, of the rules
    now): the codes revealed and redeemed in ``days``, and redemptions and revenue per
    currency. Pools are in name order, their campaigns too."""
    pool_of = {
        (campaign.id, variant.id): variant.coupon
        for campaign in rules.campaigns
        for variant in campaign.variants
        if variant.coupon
    }
    sums: dict[tuple[str, str], dict[str, Any]] = {}

    def entry(pool: str, campaign: str) -> dict[str, Any]:
        return sums.setdefault(
            (pool, campaign),
            {"pool": pool, "campaign": campaign, "reveals": 0, "redemptions": 0, "revenue": {}},
        )

    for (campaign, _, variant), counts in variant_counts(conn, days).items():
        pool = pool_of.get((campaign, variant))
        if pool is not None:
            item = entry(pool, campaign)
            item["reveals"] += counts["reveals"]
            item["redemptions"] += counts["redemptions"]
    for (campaign, _), pool in pool_of.items():  # a pool's campaigns, with nothing yet too
        entry(pool, campaign)
    money = conn.execute(
        "SELECT campaign, variant, currency, sum(redemptions), coalesce(sum(revenue), 0.0)"
        " FROM rollup_revenue"
        " WHERE day BETWEEN ? AND ? GROUP BY campaign, variant, currency",
        (days.since.isoformat(), days.until.isoformat()),
    ).fetchall()
    for campaign, variant, currency, count, total in money:
        pool = pool_of.get((campaign, variant))
        if pool is None:
            continue
        by_currency = entry(pool, campaign)["revenue"]
        known = by_currency.setdefault(currency, {"redemptions": 0, "revenue": 0.0})
        known["redemptions"] += int(count)
        known["revenue"] += float(total)
    return [sums[key] for key in sorted(sums)]
