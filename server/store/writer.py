"""The one writer: a thread that commits queued work in groups."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ..errors import StorageUnavailable
from . import rollups
from .migrations import connect
from .wal import scrub, scrub_requested

log = logging.getLogger("touchpoint.store")
T = TypeVar("T")
# SQLite's answers meaning the database cannot be written at all, whatever was written: the
# disk is full, an I/O error, a read-only or vanished file. They become StorageUnavailable
# (503) for the callers, and the writer reports itself failing until a commit succeeds again.
STORAGE_ERRORS = frozenset(
    {sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN}
)


def storage_failure(exc: BaseException) -> str | None:
    """What ``exc`` says is wrong with the storage, or None when it is about the data."""
    if isinstance(exc, StorageUnavailable):
        return exc.reason
    if isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) is not None:
        if exc.sqlite_errorcode & 0xFF in STORAGE_ERRORS:
            return str(exc)
    return None


class Writer:
    """The one writer: a thread that commits queued work in groups, in arrival order.

    Each unit of work runs inside its own SAVEPOINT, so one failing unit is rolled back and
    reported to its caller without undoing the others in the same group commit.
    """

    _STOP = object()
    SCRUB_RETRY = 0.02  # seconds between tries of a scrub a reader kept busy

    def __init__(self, path: Path | str, *, max_batch: int = 256, linger: float = 0.005) -> None:
        self.max_batch = max_batch
        self.linger = linger  # seconds a write nobody waits for waits for company
        self._waited_for = threading.Event()  # a write somebody waits for, or close, is queued
        # Opened here, so an unusable database fails the start-up, not the first write.
        self._conn = connect(path)
        # The writers of every worker take turns by this lock before SQLite's: one waiting for
        # it wakes as soon as it is released, where SQLite's busy handler sleeps 1, 2, 5, 10 ...
        # ms between tries (issue 19: two workers stored fewer events than one, p99 0.5 s).
        self._turns = os.open(f"{path}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._scrub_pending = False  # deleted values may still be in the -wal (store/wal.py)
        self.failing: str | None = None  # why the last commit could not store, until one can
        self._thread = threading.Thread(target=self._run, name="touchpoint-writer", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in the writer and return its result once it is committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((fn, loop, future))
        self._waited_for.set()
        return await future

    async def probe(self, *, timeout: float = 2.0) -> str | None:
        """Write one row (the ``health`` table) and wait for its commit: None when the database
        can be written, else why not (the health check's answer)."""
        if not self.alive:
            return "the writer has stopped"
        try:
            await asyncio.wait_for(self.write(_touch_health), timeout)
        except StorageUnavailable as exc:
            return exc.reason
        except TimeoutError:
            return f"a write took longer than {timeout:g} s"
        return None

    def submit(self, fn: Callable[[sqlite3.Connection], Any]) -> None:
        """Queue ``fn(conn)`` without waiting for it: for writes a lost one would not hurt
        (a page view count). A failure is logged."""
        self._queue.put((fn, None, None))

    def close(self) -> None:
        """Commit everything queued so far, then stop the thread."""
        self._queue.put(self._STOP)
        self._waited_for.set()
        self._thread.join()

    def _run(self) -> None:
        conn = self._conn
        try:
            while True:
                try:
                    item = self._queue.get(
                        timeout=self.SCRUB_RETRY if self._scrub_pending else None
                    )
                except queue.Empty:
                    self._scrub_pending = not scrub(conn)
                    continue
                if item is self._STOP:
                    return
                if item[2] is None and self.linger:
                    # Nobody waits for this write (a page view count) and nothing else is
                    # queued: let more arrive, so that a trickle of page views shares commits.
                    # A write somebody waits for, or close(), ends the wait (cleared first,
                    # so that one queued after the check still ends it).
                    self._waited_for.clear()
                    if self._queue.empty():
                        self._waited_for.wait(self.linger)
                batch = [item]
                while len(batch) < self.max_batch:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is self._STOP:
                        self._commit(conn, batch)
                        return
                    batch.append(nxt)
                self._commit(conn, batch)
        finally:
            conn.close()
            os.close(self._turns)

    def _commit(self, conn: sqlite3.Connection, batch: list[Any]) -> None:
        outcomes = self._run_batch(conn, batch)
        failures = [
            reason for ok, value in outcomes if not ok if (reason := storage_failure(value))
        ]
        self._set_failing(failures[0] if failures else None)
        for (fn, loop, future), (ok, value) in zip(batch, outcomes, strict=True):
            if not ok and (reason := storage_failure(value)):
                value = StorageUnavailable(reason)  # nothing of it was kept: say so, 503
            if future is None:
                if not ok and not failures:  # a storage failure is logged once, when it starts
                    log.error("queued write %s failed", getattr(fn, "__name__", fn), exc_info=value)
                continue
            try:
                loop.call_soon_threadsafe(_settle, future, ok, value)
            except RuntimeError:  # the caller's loop has closed; the write is committed anyway
                pass

    def _set_failing(self, reason: str | None) -> None:
        """Log the start and the end of a storage failure once each, not once per write."""
        if reason and not self.failing:
            log.error("the database cannot be written (%s): writes are refused with 503", reason)
        elif self.failing and not reason:
            log.warning("the database can be written again")
        self.failing = reason

    def _run_batch(self, conn: sqlite3.Connection, batch: list[Any]) -> list[tuple[bool, Any]]:
        """Run and commit one group: each unit's (ok, result or exception)."""
        fcntl.flock(self._turns, fcntl.LOCK_EX)
        try:
            outcomes, committed = self._transaction(conn, batch)
        finally:
            fcntl.flock(self._turns, fcntl.LOCK_UN)
        if committed and (self._scrub_pending or scrub_requested(conn)):
            self._scrub_pending = not scrub(conn)
        return outcomes

    def _transaction(
        self, conn: sqlite3.Connection, batch: list[Any]
    ) -> tuple[list[tuple[bool, Any]], bool]:
        """One group in one transaction: each unit's outcome, and whether it was committed."""
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            with rollups.tallied(conn) as tally:
                for fn, _loop, _future in batch:
                    conn.execute("SAVEPOINT unit")
                    try:
                        outcomes.append((True, fn(conn)))
                        conn.execute("RELEASE unit")
                        tally.keep_unit()
                    except Exception as exc:  # reported to the caller that queued this unit
                        conn.execute("ROLLBACK TO unit")
                        conn.execute("RELEASE unit")
                        tally.drop_unit()
                        outcomes.append((False, exc))
                tally.flush(conn)  # the group's counts, in its transaction
            conn.execute("COMMIT")
        except Exception as exc:  # the transaction failed: every unit in it failed
            outcomes = [(False, exc)] * len(batch)
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            except sqlite3.Error:
                log.exception("rollback failed; the connection stays usable for the next batch")
            return outcomes, False
        return outcomes, True


def _touch_health(conn: sqlite3.Connection) -> None:
    conn.execute(
        "INSERT INTO health (id, checked_at) VALUES (1, ?)"
        " ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
        (time.time(),),
    )


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.cancelled():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
