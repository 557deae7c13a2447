"""A test's look into the database its server uses, on either engine (conftest.ENGINE)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
from touchpoint import store
from touchpoint.settings import Settings

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
