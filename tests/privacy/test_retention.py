"""Retention: what the purge deletes and keeps, its batches, the dry run, the command and the
server's periodic purge."""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from starlette.testclient import TestClient
from touchpoint import cli, store
from touchpoint.app import create_app
from touchpoint.privacy.retention import cutoffs, purge
from touchpoint.settings import Settings
from touchpoint.store import catalog, eventlog

from ..conftest import PRODUCT, LiveServer
from ..databases import database_flags, opened, table_info
from ..processes import httpx

T = TypeVar("T")
NOW = 1_900_000_000
DAY = 86400
ALL = '["marketing", "measurement", "personalisation"]'


@pytest.fixture
def conn(fresh_db: sqlite3.Connection) -> sqlite3.Connection:
    return fresh_db


def run_purge(
    conn: sqlite3.Connection, *, batch_rows: int = 1000, **settings: Any
) -> tuple[dict[str, int], list[dict[str, int]]]:
    """The purge as the command runs it: per table what went, and what each transaction did."""
    limits = cutoffs(Settings.load(settings, environ={}), NOW)
    transactions: list[dict[str, int]] = []

    async def transact(fn: Callable[[sqlite3.Connection], T]) -> T:
        conn.execute(store.dialect_of(conn).begin_write)
        batch = fn(conn)
        conn.execute("COMMIT")
        transactions.append(batch.deleted)  # type: ignore[attr-defined]
        return batch

    async def no_pause(seconds: float) -> None:
        assert seconds > 0

    counts = asyncio.run(
        purge(transact, store.purged_tables(conn), limits, batch_rows=batch_rows, sleep=no_pause)
    )
    return counts, transactions


def dry_run(conn: sqlite3.Connection, **settings: Any) -> dict[str, int]:
    return store.count_due(conn, cutoffs(Settings.load(settings, environ={}), NOW))


def everything(conn: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    return {
        name: sorted(map(tuple, conn.execute(f'SELECT * FROM "{name}"')))
        for name in catalog.tables(conn)
    }


# The number the event log names each visitor of the test by (visitors.num), kept after the
# visitors row is gone so that the event log can still be searched for it.
NUMBERS: dict[str, int] = {}


def visitor(conn: sqlite3.Connection, vid: str, *, seen: int | None, consent: int) -> None:
    conn.execute(
        "INSERT INTO visitors (id, created_at, consent_revision, consent_granted, consent_at,"
        " first_seen_at, last_seen_at) VALUES (?, ?, 1, ?, ?, ?, ?)",
        (vid, consent, ALL, consent, seen, seen),
    )
    (NUMBERS[vid],) = conn.execute("SELECT num FROM visitors WHERE id = ?", (vid,)).fetchone()
    assert NUMBERS[vid] is not None


def event(conn: sqlite3.Connection, vid: str, at: int, n: int = 1) -> None:
    row = (at, "page_view", None, None, "/", None, None, None, None)
    assert eventlog.insert(conn, vid, [row] * n) == n


def consent(conn: sqlite3.Connection, vid: str, at: int) -> None:
    conn.execute(
        "INSERT INTO consent_log (visitor_id, at, revision, granted, denied, method)"
        " VALUES (?, ?, 1, '[]', '[]', 'api')",
        (vid, at),
    )


def webhook(conn: sqlite3.Connection, key: str, vid: str, state: str, at: int) -> None:
    conn.execute(
        "INSERT INTO webhook_outbox (endpoint, event, key, visitor_id, body, created_at, state,"
        " next_attempt_at, delivered_at) VALUES ('crm', 'x', ?, ?, '{}', ?, ?, ?, ?)",
        (key, vid, at, state, at, at if state == "delivered" else None),
    )


def visitor_rows(conn: sqlite3.Connection, vid: str) -> dict[str, int]:
    counts = {"visitors": conn.execute("SELECT count(*) FROM visitors WHERE id = ?", (vid,))}
    for table in tables_with_visitor_id(conn):
        by_number = "visitor" in catalog.columns(conn, table)
        sql = f'SELECT count(*) FROM "{table}" WHERE ' + ("visitor" if by_number else "visitor_id")
        counts[table] = conn.execute(sql + " = ?", (NUMBERS[vid] if by_number else vid,))
    return {table: cursor.fetchone()[0] for table, cursor in counts.items()}


def tables_with_visitor_id(conn: sqlite3.Connection) -> list[str]:
    """Read from the schema here, not through the code under test: the tables with a
    visitor_id column, or a visitor column (the visitor's number)."""
    return [
        name
        for name in catalog.tables(conn)
        if {"visitor_id", "visitor"} & set(catalog.columns(conn, name))
    ]


def fill_row(conn: sqlite3.Connection, table: str, vid: str, n: int) -> None:
    """A row of any table for visitor ``vid``: every required column gets a value of its type."""
    columns = catalog.columns(conn, table)
    if "visitor" in columns:
        (num,) = conn.execute("SELECT num FROM visitors WHERE id = ?", (vid,)).fetchone()
        values: dict[str, Any] = {"visitor": num}
    else:
        values = {"visitor_id": vid}
    for name, kind, notnull, default, pk in table_info(conn, table):
        if name in values or (not notnull and not pk) or default is not None:
            continue
        kind = kind.upper()
        number = "INT" in kind
        values[name] = (
            n if number else float(n) if "REAL" in kind or "DOUBLE" in kind else f"{name}-{n}"
        )
    if table == "webhook_outbox":
        values["state"] = "pending"  # waiting to be sent: goes with the profile all the same
    columns = ", ".join(f'"{c}"' for c in values)
    marks = ", ".join("?" for _ in values)
    conn.execute(f'INSERT INTO "{table}" ({columns}) VALUES ({marks})', tuple(values.values()))


def test_purge_deletes_what_is_past_retention_and_keeps_the_rest(
    conn: sqlite3.Connection,
) -> None:
    old, recent = NOW - 400 * DAY, NOW - 10 * DAY
    visitor(conn, "gone", seen=old, consent=old)  # nothing for 400 days
    visitor(conn, "back", seen=recent, consent=old)  # a page view 10 days ago
    visitor(conn, "popups", seen=None, consent=old)  # marketing only: seen through its events
    visitor(conn, "lapsed", seen=None, consent=old)  # its last event is past its retention
    for n, table in enumerate(tables_with_visitor_id(conn)):
        if table != "consent_log":
            fill_row(conn, table, "gone", n)
            fill_row(conn, table, "back", n + 100)
    event(conn, "back", NOW - 200 * DAY, 3)  # old events of a kept profile
    event(conn, "back", recent, 2)
    event(conn, "popups", NOW - 100 * DAY)
    event(conn, "lapsed", NOW - 300 * DAY)
    consent(conn, "gone", old)  # proof outlives the profile
    consent(conn, "refused", NOW - 1200 * DAY)  # a refusal without a profile, past retention
    consent(conn, "back", NOW - 1300 * DAY)  # superseded by the next answer
    consent(conn, "back", NOW - 1200 * DAY)  # the kept profile's latest answer stays
    conn.execute(
        "INSERT INTO merges (from_id, into_id, at) VALUES ('a', 'back', ?)", (NOW - 1200 * DAY,)
    )
    conn.execute("INSERT INTO merges (from_id, into_id, at) VALUES ('b', 'back', ?)", (recent,))
    for at, subject in ((NOW - 1200 * DAY, "erased:old"), (recent, "erased:new")):
        conn.execute(
            "INSERT INTO erasures (at, via, subject, rows) VALUES (?, 'cli', ?, '{}')",
            (at, subject),
        )
    webhook(conn, "w1", "back", "delivered", NOW - 8 * DAY)
    webhook(conn, "w2", "back", "delivered", NOW - DAY)
    webhook(conn, "w3", "back", "failed", NOW - 30 * DAY)  # failed rows wait for a retry
    before = everything(conn)

    due = dry_run(conn)
    assert everything(conn) == before  # a dry run changes nothing
    counts, _ = run_purge(conn)
    assert counts == due
    tables = tables_with_visitor_id(conn)
    assert counts["visitors"] == 2
    # gone's row; back's three old ones and its filled row (its `at` is tiny); lapsed's one
    assert counts["events"] == 1 + 3 + 1 + 1
    assert (counts["consent_log"], counts["merges"], counts["erasures"]) == (2, 1, 1)
    assert conn.execute("SELECT subject FROM erasures").fetchall() == [("erased:new",)]
    assert visitor_rows(conn, "gone") == {t: int(t == "consent_log") for t in ["visitors", *tables]}
    assert visitor_rows(conn, "lapsed")["visitors"] == 0
    kept = visitor_rows(conn, "back")
    assert kept == {**{t: 1 for t in ["visitors", *tables]}, "events": 2, "webhook_outbox": 3}
    assert visitor_rows(conn, "popups")["visitors"] == 1
    keys = [key for (key,) in conn.execute("SELECT key FROM webhook_outbox WHERE key LIKE 'w%'")]
    assert sorted(keys) == ["w2", "w3"]
    assert conn.execute("SELECT from_id FROM merges").fetchall() == [("b",)]
    # Nothing is due any more: a second purge deletes nothing.
    assert sum(dry_run(conn).values()) == 0
    assert sum(run_purge(conn)[0].values()) == 0


def test_a_purged_profile_takes_its_rows_from_every_table_with_a_visitor_id(
    conn: sqlite3.Connection,
) -> None:
    """Tables found from the schema: one added later (by any migration) is covered without a
    change to the purge. The consent log stays (its own retention); coupon codes and
    redemptions stay without the visitor, as after an erasure."""
    conn.execute("CREATE TABLE later (visitor_id TEXT NOT NULL, note TEXT NOT NULL)")
    conn.execute(
        "CREATE TABLE later_keyed (pool TEXT, visitor_id TEXT, code TEXT NOT NULL,"
        f" PRIMARY KEY (pool, visitor_id)){store.dialect_of(conn).without_rowid}"
    )
    old = NOW - 400 * DAY
    visitor(conn, "gone", seen=old, consent=old)
    visitor(conn, "kept", seen=NOW, consent=NOW)
    tables = tables_with_visitor_id(conn)
    for n, table in enumerate(tables):
        fill_row(conn, table, "gone", n)
        fill_row(conn, table, "kept", n + 100)
    rows_before = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    counts, _ = run_purge(conn, retention_events_days=0, retention_consent_days=0)
    assert set(store.purged_tables(conn)) == set(tables) - {"consent_log"}
    left = {t: n for t, n in visitor_rows(conn, "gone").items() if n}
    assert left == {"consent_log": 1}
    assert visitor_rows(conn, "kept") == {t: 1 for t in ["visitors", *tables]}
    assert {t for t, n in counts.items() if n} == {"visitors", *tables} - left.keys()
    # A coupon code handed out stays taken and redeemable, a redemption keeps the code from
    # being redeemed twice: both stay, naming nobody.
    for table in ("coupon_codes", "coupon_redemptions"):
        rows = conn.execute(f"SELECT visitor_id FROM {table} ORDER BY visitor_id NULLS FIRST")
        rows = rows.fetchall()
        assert rows == [(None,), ("kept",)]
    gone = {t for t in tables if t not in ("consent_log", "coupon_codes", "coupon_redemptions")}
    for table in gone:
        assert conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] == 1
        assert rows_before[table] == 2


def test_a_page_view_leaves_the_purge_index_alone_within_the_hour(
    conn: sqlite3.Connection,
) -> None:
    # The index read last_seen_at: every page view rewrote an index entry besides the row.
    (index,) = conn.execute(
        "SELECT sql FROM sqlite_master WHERE name = 'visitors_active_at'"
        if isinstance(conn, sqlite3.Connection)
        else "SELECT indexdef FROM pg_indexes WHERE indexname = 'visitors_active_at'"
    ).fetchone()
    assert "last_seen_at" not in index
    hour = NOW // 3600 * 3600
    visitor(conn, "v", seen=hour + 5, consent=NOW - 400 * DAY)
    hours = lambda: conn.execute("SELECT seen_hour FROM visitors").fetchone()[0]  # noqa: E731
    assert hours() == hour // 3600
    conn.execute("UPDATE visitors SET last_seen_at = ?", (hour + 3599,))
    assert hours() == hour // 3600
    conn.execute("UPDATE visitors SET last_seen_at = ?", (hour + 3600,))
    assert hours() == hour // 3600 + 1
    conn.execute("UPDATE visitors SET last_seen_at = NULL")
    assert hours() is None


def test_the_purge_goes_by_the_last_page_view_to_the_second(conn: sqlite3.Connection) -> None:
    # Its index knows the hour of the last page view; the row's exact time decides.
    cutoff = NOW - 30 * DAY
    for vid, seen in (("before", cutoff - 1), ("at", cutoff), ("after", cutoff + 1)):
        visitor(conn, vid, seen=seen, consent=NOW - 400 * DAY)
    assert dry_run(conn, retention_profiles_days=30)["visitors"] == 1
    run_purge(conn, retention_profiles_days=30)
    assert [r[0] for r in conn.execute("SELECT id FROM visitors ORDER BY id")] == ["after", "at"]


def test_every_table_with_a_visitor_id_is_indexed_by_it(conn: sqlite3.Connection) -> None:
    """The purge and an erasure find a visitor's rows in each such table by an index."""
    for table in tables_with_visitor_id(conn):
        firsts = catalog.index_leaders(conn, table)
        assert {"visitor_id", "visitor"} & firsts, f"{table} has no index by its visitor"


@pytest.mark.parametrize(("rows", "batch"), [(2500, 1000), (2000, 1000), (7, 1), (0, 10)])
def test_a_purge_of_n_rows_runs_ceil_n_over_b_transactions(
    conn: sqlite3.Connection, rows: int, batch: int
) -> None:
    visitor(conn, "v", seen=NOW, consent=NOW)
    event(conn, "v", NOW - 200 * DAY, rows)
    event(conn, "v", NOW - DAY, 5)
    counts, transactions = run_purge(conn, batch_rows=batch)
    assert counts["events"] == rows
    deleting = [t for t in transactions if t.get("events")]
    assert len(deleting) == math.ceil(rows / batch)
    assert all(sum(t.values()) <= batch for t in transactions)
    # Each other kind of row costs one empty transaction to find there is nothing to do:
    # profiles, consent log, merges, erasures, webhooks, the console's audit log.
    assert len(transactions) == max(1, len(deleting)) + 6


def test_a_profile_with_many_rows_is_deleted_in_batches_too(conn: sqlite3.Connection) -> None:
    old = NOW - 400 * DAY
    for n in range(30):
        visitor(conn, f"v{n}", seen=old, consent=old)
        event(conn, f"v{n}", old, 40)
        conn.execute(
            "INSERT INTO campaign_state (visitor_id, campaign) VALUES (?, 'c')", (f"v{n}",)
        )
    visitor(conn, "kept", seen=NOW, consent=NOW)
    event(conn, "kept", old, 3)
    due = dry_run(conn, retention_events_days=0)
    counts, transactions = run_purge(conn, batch_rows=100, retention_events_days=0)
    assert counts == due
    assert (counts["visitors"], counts["events"], counts["campaign_state"]) == (30, 1200, 30)
    assert max(sum(t.values()) for t in transactions) == 100
    assert len([t for t in transactions if sum(t.values())]) == math.ceil(1260 / 100)
    assert visitor_rows(conn, "kept")["events"] == 3  # events kept forever with this setting


def test_the_consent_log_walk_passes_kept_answers_once(conn: sqlite3.Connection) -> None:
    """Latest answers of kept profiles are skipped; entries with the same time are neither
    skipped nor taken twice across batches."""
    old = NOW - 1200 * DAY
    for n in range(5):
        visitor(conn, f"kept{n}", seen=NOW, consent=NOW)
        consent(conn, f"kept{n}", old)
        consent(conn, f"refused{n}", old)
    counts, transactions = run_purge(conn, batch_rows=2)
    assert counts["consent_log"] == 5
    assert [t["consent_log"] for t in transactions if "consent_log" in t] == [2, 2, 1]
    left = [vid for (vid,) in conn.execute("SELECT visitor_id FROM consent_log ORDER BY id")]
    assert left == [f"kept{n}" for n in range(5)]


def test_zero_keeps_forever(conn: sqlite3.Connection) -> None:
    ancient = 1000
    visitor(conn, "v", seen=ancient, consent=ancient)
    event(conn, "v", ancient)
    consent(conn, "v", ancient)
    forever = {"retention_events_days": 0, "retention_profiles_days": 0}
    counts, _ = run_purge(conn, **forever, retention_consent_days=0)
    assert sum(counts.values()) == 0
    counts, _ = run_purge(conn, **forever)
    assert counts["consent_log"] == 0  # the answer of a kept profile stays


def test_one_worker_holds_the_purge_lease_at_a_time(conn: sqlite3.Connection) -> None:
    assert store.claim_lease(conn, "purge", "a", now=0, until=100) == (True, 100)
    assert store.claim_lease(conn, "purge", "b", now=50, until=150) == (False, 100)
    assert store.claim_lease(conn, "purge", "b", now=100, until=200) == (True, 200)
    assert store.claim_lease(conn, "purge", "a", now=150, until=250) == (False, 200)


def test_the_server_purges_periodically(settings: Settings) -> None:
    store.migrate(settings.database_url)
    with opened(settings.database_url) as db:
        visitor(db, "v", seen=int(time.time()), consent=int(time.time()))
        event(db, "v", 1000, 3)
        event(db, "v", int(time.time()))
    quick = Settings.load(
        {
            "data_dir": settings.data_dir,
            "database": settings.database,
            "rules_dir": settings.rules_dir,
            "purge_interval_minutes": 0.005,
        },
        environ={},
    )
    with TestClient(create_app(quick)) as client:
        reader = client.app.state.tp.reader  # type: ignore[attr-defined]
        deadline = time.monotonic() + 10
        while reader.count("events") > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert reader.count("events") == 1


@pytest.mark.sqlite_only("PostgreSQL keeps deleted rows until VACUUM (docs/privacy.md)")
def test_a_purged_event_leaves_no_copy_in_any_database_file(settings: Settings) -> None:
    """The server's periodic purge checkpoints the -wal after its batches (store/wal.py): the
    purged values are in no file of the database while the server still runs."""
    store.migrate(settings.database_url)
    quick = Settings.load(
        {
            "data_dir": settings.data_dir,
            "database": settings.database,
            "rules_dir": settings.rules_dir,
            "purge_interval_minutes": 0.005,
        },
        environ={},
    )
    with TestClient(create_app(quick)) as client:
        tp = client.app.state.tp  # type: ignore[attr-defined]

        def old_event(conn: sqlite3.Connection) -> None:
            visitor(conn, "purged-visitor-id", seen=1000, consent=1000)
            row = (1000, "custom", None, None, "/x", "purged-unique-name", None, None, None)
            eventlog.insert(conn, "purged-visitor-id", [row])

        asyncio.run(tp.writer.write(old_event))
        deadline = time.monotonic() + 10
        while tp.reader.count("visitors") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert tp.reader.count("events") == tp.reader.count("visitors") == 0
        path = settings.database_path
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            files = b"".join(
                f.read_bytes()
                for f in (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
                if f.exists()
            )
            if b"purged-unique-name" not in files:
                break
            time.sleep(0.05)
        assert b"purged-unique-name" not in files and b"purged-visitor-id" not in files


def test_purge_command(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    store.migrate(settings.database_url)
    with opened(settings.database_url) as db:
        visitor(db, "v", seen=int(time.time()), consent=int(time.time()))
        event(db, "v", 1000, 3)
    where = database_flags(settings)
    assert cli.main(["purge", "--dry-run", *where]) == 0
    out, err = capsys.readouterr()
    assert "events                            3" in out.splitlines()
    assert "3 row(s) would be deleted; dry run, nothing changed" in err
    assert cli.main(["purge", "--json", *where]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["dry_run"], report["tables"]["events"], report["total"]) == (False, 3, 3)
    assert cli.main(["purge", "--dry-run", "--json", *where]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 0


def test_purge_command_without_a_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["purge", "--data-dir", str(tmp_path / "none")]) == 1
    assert "no database at" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.sqlite_only("fills a SQLite file of that size directly and reads it on the side")
def test_a_large_purge_never_holds_up_decide(tmp_path: Path) -> None:
    """200,000 old events purged by a real server while it answers decide requests: every
    answer is a 200 within a second, and the purge finishes in bounded time."""
    path = tmp_path / "live-data" / "touchpoint.db"
    store.migrate(path)
    old = int(time.time()) - 200 * DAY
    with sqlite3.connect(path) as db:
        for n in range(5000):
            visitor(db, f"v{n}", seen=old, consent=old)
            event(db, f"v{n}", old + n, 40)
    server = LiveServer(
        tmp_path,
        "--purge-interval-minutes",
        "0.02",
        "--purge-batch-rows",
        "2000",
        "--rate-limit-per-minute",
        "0",
    )
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            granted = client.post("/tp/v1/consent", json={"granted": json.loads(ALL)})
            assert granted.status_code == 200
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            left = lambda: db.execute("SELECT count(*) FROM events WHERE at < ?", (old + DAY,))  # noqa: E731
            answers: list[tuple[int, float]] = []
            remaining = [left().fetchone()[0]]
            started = time.monotonic()
            while remaining[-1] and time.monotonic() - started < 60:
                for _ in range(20):
                    sent = time.monotonic()
                    status = client.post("/tp/v1/decide", json={"page": {"path": PRODUCT}})
                    answers.append((status.status_code, time.monotonic() - sent))
                    time.sleep(0.01)  # a busy shop's pace, leaving the machine to the purge
                remaining.append(left().fetchone()[0])
            took = time.monotonic() - started
            db.close()
    finally:
        server.stop()
    assert remaining[-1] == 0, f"the purge did not finish in {took:.1f} s"
    assert took < 40
    midway = {n for n in remaining if 0 < n < 200_000}  # polls between batches of 20 decides
    assert len(midway) >= 3, "the decide requests should overlap the purge"
    assert {status for status, _ in answers} == {200}
    slowest = max(seconds for _, seconds in answers)
    assert slowest < 1.0, f"a decide took {slowest:.2f} s during the purge"
    log = server.log_path.read_text()
    assert "purge deleted 200000 events" in log, log
