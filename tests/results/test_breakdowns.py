"""The console's sums beside the reports: daily totals over all campaigns (both ways of reading
them agree) and coupon pools per campaign."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from touchpoint import store
from touchpoint.results import breakdowns, report
from touchpoint.rules import ruleset

from ..conftest import ROOT


def test_daily_totals_read_by_key_or_by_scan_agree(tmp_path: Path) -> None:
    store.migrate(tmp_path / "t.db")
    conn = store.connect(tmp_path / "t.db")
    with store.immediate(conn):
        conn.executemany(
            "INSERT INTO rollup_campaigns (day, campaign, variant, version, exposures,"
            " unique_exposed, unique_converted) VALUES (?, ?, ?, 1, ?, ?, ?)",
            [
                (f"2026-0{m}-{d:02d}", c, v, m * d, d, 1)
                for m in (1, 2, 3, 4)
                for d in (1, 15, 28)
                for c in ("a", "b")
                for v in ("x", "y")
            ],
        )
        conn.execute(
            "INSERT INTO rollup_campaign_months SELECT campaign, version, variant,"
            " substr(day, 1, 7), "
            + ", ".join(f"sum({n})" for n in store.CAMPAIGN_COUNTS)
            + " FROM rollup_campaigns GROUP BY 1, 2, 3, 4"
        )
    short = report.Range(date(2026, 1, 10), date(2026, 2, 20))
    assert len(short.days) <= breakdowns.SCAN_DAYS
    totals = breakdowns.daily_totals(conn, short)
    assert totals["days"] == short.days
    by_day = dict(zip(totals["days"], totals["exposures"], strict=True))
    assert by_day["2026-01-15"] == 4 * 15 and by_day["2026-02-15"] == 4 * 30
    assert by_day["2026-01-16"] == 0
    assert sum(totals["converted"]) == 4 * 4  # four days in range, four rows each
    long = report.Range(date(2026, 1, 1), date(2026, 4, 30))
    assert len(long.days) > breakdowns.SCAN_DAYS
    whole = breakdowns.daily_totals(conn, long)
    part = dict(zip(whole["days"], whole["exposures"], strict=True))
    assert all(part[day] == n for day, n in by_day.items())


def test_pools_per_campaign_through_the_variants_that_name_them(tmp_path: Path) -> None:
    rules = ruleset.load(ROOT / "rules")
    store.migrate(tmp_path / "t.db")
    conn = store.connect(tmp_path / "t.db")
    with store.immediate(conn):
        for table, period in (
            ("rollup_campaigns", "2026-03-01"),
            ("rollup_campaign_months", "2026-03"),
        ):
            column = "day" if table == "rollup_campaigns" else "month"
            conn.execute(
                f"INSERT INTO {table} ({column}, campaign, variant, version, reveals, redemptions)"
                " VALUES (?, 'first-order-coupon', 'ten-percent', 1, 5, 2)",
                (period,),
            )
        conn.execute(
            "INSERT INTO rollup_revenue (day, campaign, variant, version, currency, redemptions,"
            " revenue, revenue_squares) VALUES"
            " ('2026-03-01', 'first-order-coupon', 'ten-percent', 1, 'EUR', 2, 80.0, 3200.0)"
        )
    days = report.Range(date(2026, 3, 1), date(2026, 3, 31))
    rows = {(r["pool"], r["campaign"]): r for r in breakdowns.pool_campaigns(conn, rules, days)}
    welcome = rows[("welcome", "first-order-coupon")]
    assert (welcome["reveals"], welcome["redemptions"]) == (5, 2)
    assert welcome["revenue"] == {"EUR": {"redemptions": 2, "revenue": 80.0}}
    assert rows[("cart5", "cart-coupon")]["reveals"] == 0  # a pool's campaign with nothing yet
