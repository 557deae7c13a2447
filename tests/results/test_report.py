"""The report's reading of the rollups: whole months from the monthly table and the days
around them add up to what the daily rows alone say, for any range."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from touchpoint import store
from touchpoint.results import report

START = dt.date(2025, 11, 20)
DAYS = 140  # into the spring, across a year's end and February


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory) -> sqlite3.Connection:
    path = tmp_path_factory.mktemp("report") / "t.db"
    store.migrate(path)
    conn = store.connect(path)
    with store.immediate(conn):  # one transaction: the tally writes days and months at once
        for n in range(DAYS):
            on = (START + dt.timedelta(days=n)).isoformat()
            for variant in ("a", "b"):
                counts = {"exposures": n + 1, "unique_exposed": 2 * n + (variant == "b")}
                store.count_campaign(conn, on, "spring", variant, 1, **counts)
    for n in range(0, DAYS, 9):  # and some outside a transaction
        on = (START + dt.timedelta(days=n)).isoformat()
        store.count_campaign(conn, on, "spring", "a", 1, closes=n)
    return conn


def brute_force(conn: sqlite3.Connection, days: report.Range) -> dict[str, int]:
    rows = conn.execute(
        "SELECT variant, sum(exposures), sum(unique_exposed), sum(closes) FROM rollup_campaigns"
        " WHERE day BETWEEN ? AND ? GROUP BY variant",
        (days.since.isoformat(), days.until.isoformat()),
    ).fetchall()
    return {v: (e, u, c) for v, e, u, c in rows}


@settings(max_examples=200, deadline=None)
@given(first=st.integers(-10, DAYS + 10), length=st.integers(0, DAYS))
def test_months_and_days_add_up_to_the_days(
    conn: sqlite3.Connection, first: int, length: int
) -> None:
    since = START + dt.timedelta(days=first)
    days = report.Range(since, since + dt.timedelta(days=length))
    counts = report._counts(conn, days)
    read = {
        variant: (c["exposures"], c["unique_exposed"], c["closes"])
        for (_, _, variant), c in counts.items()
    }
    assert read == brute_force(conn, days)


@pytest.mark.parametrize(
    ("since", "until", "pieces"),
    [
        ("2026-01-01", "2026-01-31", [("month", "2026-01", "2026-01")]),
        ("2026-01-02", "2026-01-31", [("day", "2026-01-02", "2026-01-31")]),
        (
            "2025-12-15",
            "2026-03-03",
            [
                ("month", "2026-01", "2026-02"),
                ("day", "2025-12-15", "2025-12-31"),
                ("day", "2026-03-01", "2026-03-03"),
            ],
        ),
        ("2024-02-01", "2024-02-29", [("month", "2024-02", "2024-02")]),
    ],
)
def test_a_range_in_pieces(since: str, until: str, pieces: list[tuple[str, str, str]]) -> None:
    days = report.Range(dt.date.fromisoformat(since), dt.date.fromisoformat(until))
    assert [p[1:] for p in report._pieces(days)] == pieces
