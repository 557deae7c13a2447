"""The event log (store/eventlog.py): ids in time order, the visitor by number, and the upgrade
of an event log stored the earlier way (migration m016)."""

from __future__ import annotations

import importlib
import sqlite3
from pathlib import Path

import sqlite_utils
from hypothesis import given, settings
from hypothesis import strategies as st
from touchpoint import store
from touchpoint.store import engine, eventlog

migrations = importlib.import_module("touchpoint.store.migrations")

VISITORS = ("ada", "bo", "cy")
T = 1_780_000_000


def consented(conn: sqlite3.Connection, *visitors: str) -> None:
    for visitor in visitors:
        store.record_consent(
            conn, visitor, at=T, revision=1, granted={"measurement"}, denied=set(), method="api"
        )


def row(at: int, name: str) -> tuple[object, ...]:
    return (at, "custom", None, None, "/p", name, 1.5, None, "api")


calls = st.lists(
    st.tuples(
        st.sampled_from(VISITORS),
        st.lists(st.integers(T - 5, T + 5), min_size=1, max_size=5),  # back-dated, same second
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(calls)
def test_each_visitor_reads_back_their_events_in_time_order(calls: list) -> None:  # type: ignore[type-arg]
    conn = sqlite3.connect(":memory:", isolation_level=None)
    for migration in migrations.migrations.pending(sqlite_utils.Database(conn)):
        migration.fn(sqlite_utils.Database(conn))
    consented(conn, *VISITORS)
    written: dict[str, list[tuple[int, str]]] = {v: [] for v in VISITORS}
    for n, (visitor, seconds) in enumerate(calls):
        events = [(at, f"{n}.{k}") for k, at in enumerate(seconds)]
        # Every other call names the visitor by the number a caller read in its transaction.
        (number,) = conn.execute("SELECT num FROM visitors WHERE id = ?", (visitor,)).fetchone()
        rows = [row(at, name) for at, name in events]
        stored = eventlog.insert(conn, visitor, rows, number=number if n % 2 else None)
        assert stored == len(events)
        written[visitor] += events
    for visitor, events in written.items():
        stored = conn.execute(
            f"SELECT at, name, type, path, value, source FROM events"
            f" WHERE {eventlog.of_visitor()} ORDER BY id",
            (visitor,),
        ).fetchall()
        # In time order; within a second, in the order they were written.
        assert [(at, name) for at, name, *_ in stored] == sorted(events, key=lambda e: e[0])
        assert {tuple(rest) for _, _, *rest in stored} <= {("custom", "/p", 1.5, "api")}
    ids = [i for (i,) in conn.execute("SELECT id FROM events")]
    assert len(ids) == len(set(ids)) == sum(len(s) for _, s in calls)
    (late,) = conn.execute("SELECT count(*) FROM events WHERE id < ?", (eventlog.first_id(T),))
    assert late[0] == sum(at < T for _, s in calls for at in s)


def test_a_visitor_without_a_row_gets_no_events(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    store.migrate(path)
    conn = store.connect(path)
    consented(conn, "ada")
    assert eventlog.insert(conn, "erased", [row(T, "a"), row(T, "b")]) == 0
    assert eventlog.insert(conn, "ada", [row(T, "a")]) == 1
    assert conn.execute("SELECT count(*) FROM events").fetchone() == (1,)


def test_the_upgrade_keeps_every_event_of_a_visitor_and_numbers_new_visitors(
    tmp_path: Path,
) -> None:
    path = tmp_path / "t.db"
    conn = store.connect(path)
    db = sqlite_utils.Database(conn)
    pending = migrations.migrations.pending(db)
    upgrade = next(m for m in pending if m.name == "m016_compact_events")
    for migration in pending[: pending.index(upgrade)]:
        migration.fn(db)
    for visitor, created in (("bo", 20), ("ada", 10)):
        conn.execute(
            "INSERT INTO visitors (id, created_at, consent_granted) VALUES (?, ?, '[]')",
            (visitor, created),
        )
    old = [
        ("ada", T, "page_view", None, "/a"),
        ("bo", T, "impression", "spring", "/b"),
        ("ada", T - 86400, "click", None, "/c"),  # back-dated, written later
        ("ada", T, "scroll", None, "/a"),
        ("gone", T, "page_view", None, "/x"),  # of no visitor row: nobody can reach it
    ]
    conn.executemany(
        "INSERT INTO events (visitor_id, at, type, campaign, path) VALUES (?, ?, ?, ?, ?)", old
    )

    upgrade.fn(db)

    nums = dict(conn.execute("SELECT id, num FROM visitors").fetchall())
    assert nums == {"ada": 1, "bo": 2}  # in the order they came
    reader = store.Reader(path)
    assert [(e["at"], e["type"], e["path"]) for e in reader.events("ada")] == [
        (T - 86400, "click", "/c"),
        (T, "page_view", "/a"),
        (T, "scroll", "/a"),
    ]
    assert [(e["type"], e["campaign"]) for e in reader.events("bo")] == [("impression", "spring")]
    assert conn.execute("SELECT count(*) FROM events").fetchone() == (4,)
    assert [i for (i,) in conn.execute("SELECT name FROM pragma_index_list('events')")] == [
        "events_visitor"
    ]
    # Visitors who come after the upgrade get the next numbers, and their events.
    consented(conn, "cy")
    assert conn.execute("SELECT num FROM visitors WHERE id = 'cy'").fetchone() == (3,)
    assert eventlog.insert(conn, "cy", [row(T, "a")]) == 1
    assert [e["name"] for e in reader.events("cy")] == ["a"]


def test_two_nodes_storing_events_of_one_second_on_postgresql_both_store_them(
    pg_url: str,
) -> None:
    # Two connections in open transactions, as two nodes' writers: neither waits for the other
    # and neither takes an id the other took.
    a, b = engine.pg_connect(pg_url), engine.pg_connect(pg_url)
    a.execute("INSERT INTO visitors (id, created_at) VALUES ('va', 1), ('vb', 1)")
    row = (1_700_000_000, "page_view", None, None, "/", None, None, None, "site")
    a.execute("BEGIN")
    b.execute("BEGIN")
    assert eventlog.insert(a, "va", [row, row]) == 2
    assert eventlog.insert(b, "vb", [row, row, row]) == 3
    a.execute("COMMIT")
    b.execute("COMMIT")
    ats = a.execute("SELECT at, count(*) FROM events GROUP BY at").fetchall()
    assert ats == [(1_700_000_000, 5)]
    a.close()
    b.close()


def test_an_event_whose_id_is_taken_on_postgresql_takes_the_next(pg_url: str) -> None:
    conn = engine.pg_connect(pg_url)
    conn.execute("INSERT INTO visitors (id, created_at) VALUES ('v', 1)")
    taken = eventlog.first_id(1_700_000_000) | 1  # the next number the sequence gives
    conn.execute("INSERT INTO events (id, visitor, type) VALUES (?, 1, 'x')", (taken,))
    row = (1_700_000_000, "page_view", None, None, "/", None, None, None, "site")
    assert eventlog.insert(conn, "v", [row]) == 1
    assert conn.execute("SELECT count(*) FROM events WHERE at = 1700000000").fetchone() == (2,)
    conn.close()
