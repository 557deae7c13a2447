"""The PostgreSQL schema (store/pgschema.py) holds the same tables, columns, keys and guarantees
as the SQLite migrations reach, and the two migration lists stay in step."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest
from touchpoint import store
from touchpoint.store import engine, pgschema

# SQLite's declared types and the PostgreSQL types that hold the same values.
TYPES = {"INTEGER": "bigint", "REAL": "double precision", "TEXT": "text"}


def sqlite_schema(path: Path) -> dict[str, dict[str, tuple[str, bool]]]:
    conn = sqlite3.connect(path)
    tables = [
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
            " AND name NOT LIKE 'sqlite_%' AND name != '_sqlite_migrations'"
        )
    ]
    return {
        table: {
            name: (TYPES[declared], bool(notnull or pk))
            for _, name, declared, notnull, _, pk, *_ in conn.execute(
                f"PRAGMA table_xinfo('{table}')"
            )
        }
        for table in tables
    }


def pg_schema(url: str) -> dict[str, dict[str, tuple[str, bool]]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable = 'NO'"
            " FROM information_schema.columns WHERE table_schema = 'public'"
            " AND table_name != 'touchpoint_migrations'"
        ).fetchall()
    schema: dict[str, dict[str, tuple[str, bool]]] = {}
    for table, column, data_type, not_null in rows:
        schema.setdefault(table, {})[column] = (data_type, not_null)
    return schema


def test_both_engines_have_the_same_tables_and_columns(tmp_path: Path, pg_url: str) -> None:
    store.migrate(tmp_path / "t.db")
    lite, pg = sqlite_schema(tmp_path / "t.db"), pg_schema(pg_url)
    assert sorted(pg) == sorted(lite)
    for table, columns in lite.items():
        # SQLite does not say NOT NULL of computed columns or of `num`, which its trigger fills
        # in after the insert; PostgreSQL's generated and identity columns are never null.
        loose = {"at", "seen_hour", "num"}
        got = {c: (t, n if c not in loose else False) for c, (t, n) in pg[table].items()}
        want = {c: (t, n if c not in loose else False) for c, (t, n) in columns.items()}
        assert got == want, table


def test_every_sqlite_migration_has_its_postgresql_twin() -> None:
    names = [m.name for m in store.migrations._migrations]
    assert names == [*pgschema.BASELINE_NAMES, *pgschema.MIGRATIONS]


def test_migrating_again_applies_nothing(pg_url: str) -> None:
    conn = engine.pg_connect(pg_url)
    assert pgschema.migrate(conn) == []
    conn.close()


def test_a_new_database_is_migrated_in_one_step(pg_cluster) -> None:  # type: ignore[no-untyped-def]
    conn = engine.pg_connect(pg_cluster.create_database())
    assert pgschema.migrate(conn) == list(pgschema.BASELINE_NAMES)
    conn.close()


def test_consent_log_stays_append_only(pg_url: str) -> None:
    conn = engine.pg_connect(pg_url)
    conn.execute(
        "INSERT INTO consent_log (visitor_id, at, revision, granted, denied, method)"
        " VALUES ('v1', 1, 1, '[]', '[]', 'api')"
    )
    with pytest.raises(psycopg.IntegrityError, match="append-only"):
        conn.execute("UPDATE consent_log SET granted = '[\"marketing\"]'")
    # An erasure may pseudonymise the visitor and nothing else.
    conn.execute("UPDATE consent_log SET visitor_id = 'erased:x'")
    conn.close()


def test_visitors_get_numbers_and_their_hour_of_activity(pg_url: str) -> None:
    conn = engine.pg_connect(pg_url)
    conn.execute("INSERT INTO visitors (id, created_at, last_seen_at) VALUES ('a', 1, 7300)")
    conn.execute("INSERT INTO visitors (id, created_at) VALUES ('b', 1)")
    conn.execute("UPDATE visitors SET last_seen_at = 11000 WHERE id = 'b'")
    rows = conn.execute("SELECT id, num, seen_hour FROM visitors ORDER BY id").fetchall()
    assert rows == [("a", 1, 2), ("b", 2, 3)]
    conn.close()
