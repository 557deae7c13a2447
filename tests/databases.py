"""A test's look into the database its server uses, on either engine (conftest.ENGINE)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from touchpoint import store
from touchpoint.settings import Settings
from touchpoint.store import catalog

# A constraint or trigger refused a write, as either engine says so.
INTEGRITY_ERRORS = (sqlite3.IntegrityError, psycopg.IntegrityError)


def database_flags(settings: Settings) -> list[str]:
    """The flags that point a command at the database of ``settings``."""
    return [
        "--data-dir",
        settings.data_dir,
        *(["--database", settings.database] * bool(settings.database)),
    ]


@contextlib.contextmanager
def opened(database: str | Path) -> Iterator[store.Connection]:
    """A connection to ``database`` (each statement committed on its own), closed after."""
    conn = store.connect(database)
    try:
        yield conn
    finally:
        conn.close()


def table_info(conn: store.Connection, table: str) -> list[tuple[str, str, bool, Any, bool]]:
    """(name, type, not null, default, part of the primary key) of each column a row is
    written with, as SQLite's ``PRAGMA table_info`` lists them: computed columns left out, an
    identity column's numbering counted as a default."""
    if isinstance(conn, sqlite3.Connection):
        rows = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
        return [
            (name, kind, bool(nn), default, bool(pk)) for _, name, kind, nn, default, pk in rows
        ]
    key = set(catalog.primary_key(conn, table))
    rows = conn.execute(
        "SELECT column_name, upper(data_type), is_nullable = 'NO',"
        " CASE WHEN is_identity = 'YES' THEN 'identity' ELSE column_default END"
        " FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = ? AND is_generated = 'NEVER' ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return [(name, kind, nn, default, name in key) for name, kind, nn, default in rows]
