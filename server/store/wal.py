"""Deleted values out of the write-ahead log (docs/privacy.md#erasure).

In WAL mode a change is appended to the ``-wal`` file and copied into the database file at the
next checkpoint; the old versions of the pages, deleted values included, stay in the ``-wal``
until it is reset. An erasure and each purge batch therefore ask for a scrub after their commit:
a checkpoint of every frame into the database file, where ``secure_delete`` has zeroed the
deleted values, and the ``-wal`` truncated to nothing. A checkpoint has to wait for readers of
an older snapshot; instead of stalling the writer behind them, a busy scrub is tried again.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator

from .engine import Connection

# Connections (by id) whose committed changes still leave deleted values in the -wal.
_REQUESTED: set[int] = set()


@contextlib.contextmanager
def overwriting(conn: Connection) -> Iterator[None]:
    """SQLite overwrites what is deleted in the block with zeros rather than leave it in the
    file's free pages (``secure_delete``; the connection's setting is kept). PostgreSQL has no
    such switch: its dead rows stay until VACUUM reuses their space (docs/privacy.md)."""
    if not isinstance(conn, sqlite3.Connection):
        yield
        return
    before = conn.execute("PRAGMA secure_delete").fetchone()[0]
    conn.execute("PRAGMA secure_delete = ON")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA secure_delete = {int(before)}")


def scrub_after_commit(conn: Connection) -> None:
    """Ask for a scrub of ``conn``'s database once its transaction has committed (SQLite's:
    PostgreSQL has no file of its own to scrub)."""
    if isinstance(conn, sqlite3.Connection):
        _REQUESTED.add(id(conn))


def scrub_requested(conn: Connection) -> bool:
    return id(conn) in _REQUESTED


def hand_over_scrub(conn: Connection) -> bool:
    """Whether ``conn`` asked for a scrub, which another connection of the database now does."""
    if id(conn) not in _REQUESTED:
        return False
    _REQUESTED.discard(id(conn))
    return True


@contextlib.contextmanager
def waiting(conn: Connection, seconds: float) -> Iterator[None]:
    """SQLite waits at most ``seconds`` for another connection's lock in the block (the
    connection's busy_timeout is kept)."""
    (before,) = conn.execute("PRAGMA busy_timeout").fetchone()
    conn.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(before)}")


def scrub(conn: Connection) -> bool:
    """Checkpoint the whole ``-wal`` into the database file and truncate it. False, at once,
    when another connection still reads an older snapshot or writes: try again later."""
    try:
        with waiting(conn, 0):
            busy, _frames, _copied = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.Error:  # locked by another process's writer, or the disk failing: later
        return False
    if busy:
        return False
    _REQUESTED.discard(id(conn))
    return True


def scrub_waiting(conn: Connection, *, seconds: float = 10.0) -> bool:
    """:func:`scrub`, tried again for up to ``seconds``: for commands run beside the server."""
    deadline = time.monotonic() + seconds
    while not scrub(conn):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True
