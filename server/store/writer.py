"""The one writer of a worker: commits queued work in groups, on two lanes.

The hot path's small writes (page view counts, :meth:`Writer.submit`, and the events route's
batches, ``write(small=True)``) are committed on the event loop's own thread; everything else
on the writer's thread. A thread of its own for the hot path cost more than the writes
themselves: it shares Python's interpreter lock with the event loop, and every statement hands
the lock to and fro (issue 19 measured the event loop's CPU per decide at 270 µs beside the
writer thread, whose own 80 µs came on top, and 180 µs with the same writes done on the loop).
A group on the loop is a few small statements a request; the checkpoints that copy the ``-wal``
into the database file, the one slow part of committing, stay on the thread.
"""

from __future__ import annotations

import asyncio
import ctypes
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
from .engine import Connection, pg_storage_failure
from .migrations import WAL_LIMIT_BYTES, connect
from .wal import hand_over_scrub, scrub, scrub_requested, waiting

log = logging.getLogger("touchpoint.store")
T = TypeVar("T")
Item = tuple[Callable[[Connection], Any], Any, Any]  # a unit, its loop and future
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
    return pg_storage_failure(exc)


class Writer:
    """The one writer: commits queued work in groups, in arrival order on each lane.

    Each unit of work runs inside its own SAVEPOINT, so one failing unit is rolled back and
    reported to its caller without undoing the others in the same group commit.
    """

    # From this many frames on (the -wal's size limit in 4 KiB pages, SQLite's default page
    # size, which Touchpoint's databases keep) a checkpoint takes its turn among the writers.
    WAL_RESTART_FRAMES = WAL_LIMIT_BYTES // 4096
    RESTART_WAIT = 0.02  # seconds that checkpoint waits for readers of an older snapshot
    RESTART_REST = 256  # frames left by a passive checkpoint below which no other one runs first

    _STOP = object()
    _CHECKPOINT = object()
    _BEGIN = "BEGIN IMMEDIATE"  # the write lock from the start: reads and writes in one turn
    SCRUB_RETRY = 0.02  # seconds between tries of a scrub a reader kept busy
    BACKLOG = 256  # units queued on the thread past which submit_paced waits (a few groups)

    def __init__(self, path: Path | str, *, max_batch: int = 256, linger: float = 0.005) -> None:
        self.max_batch = max_batch
        self.linger = linger  # seconds a write nobody waits for waits for company
        self._waited_for = threading.Event()  # a write somebody waits for, or close, is queued
        self._path = str(path)
        # Opened here, so an unusable database fails the start-up, not the first write.
        self._conn: Any = self._open()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._scrub_pending = False  # deleted values may still be in the -wal (store/wal.py)
        self.failing: str | None = None  # why the last commit could not store, until one can
        self._lane: _LoopLane | None = None  # the event loop's lane, opened by its first unit
        self._closed = False
        self._checkpoint_asked = False  # the loop lane asked the thread for a checkpoint
        self._restart_at = self.WAL_RESTART_FRAMES  # -wal frames from which it is restarted
        self._thread = threading.Thread(target=self._run, name="touchpoint-writer", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    async def write(self, fn: Callable[[Connection], T], *, small: bool = False) -> T:
        """Run ``fn(conn)`` in the writer and return its result once it is committed.

        ``small``: a few statements of one visitor's request (a batch of tracked behaviour),
        committed with the page views on the event loop's thread in its next group; anything
        that may take long (an erasure, an import, a purge batch) goes to the thread."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        lane = self._loop_lane()
        if lane is not None:
            if small:
                lane.add(fn, future)
                return await future
            lane.hand_over()  # the units queued on the loop are committed before this one
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

    def submit(self, fn: Callable[[Connection], Any]) -> None:
        """Queue ``fn(conn)`` without waiting for it: for small writes a lost one would not
        hurt (a page view count). A failure is logged. On an event loop the unit is committed
        on the loop's thread (the module's doc says why), elsewhere on the writer's."""
        lane = self._loop_lane()
        if lane is None:
            self._queue.put((fn, None, None))
        else:
            lane.add(fn)

    async def submit_paced(self, fn: Callable[[Connection], Any]) -> None:
        """:meth:`submit`, unless the thread is more than BACKLOG units behind: then wait for
        this one's commit, so that the queue cannot grow without bound when the database takes
        longer per write than requests arrive (a PostgreSQL node under a decide load: page
        views queued faster than they were stored, a visitor's next page no longer saw this
        one's, and a write somebody waited for came seconds later). A failure is logged."""
        if self._queue.qsize() <= self.BACKLOG:
            self.submit(fn)
            return
        try:
            await self.write(fn)
        except Exception:
            log.exception("queued write %s failed", getattr(fn, "__name__", fn))

    def _loop_lane(self) -> _LoopLane | None:
        """The lane of the running event loop; None off the loop, and on a loop other than the
        first one (a test's second client), whose units the thread commits."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        if self._lane is None and not self._closed:
            self._lane = _LoopLane(self, loop)
        return self._lane if self._lane is not None and self._lane.loop is loop else None

    def loop_reads(self) -> Connection | None:
        """The loop lane's connection, for a read on the event loop between its groups (which
        never span an await: a read sees what is committed). Its page cache outlives its own
        commits, where SQLite empties another connection's whenever someone else commits, a
        few hundred times a second under load (issue 19: 5 % more decides a second). None off
        the loop, and in the middle of a transaction a failed rollback left open."""
        lane = self._loop_lane()
        if lane is None or lane.conn.in_transaction:
            return None
        return lane.conn

    def close(self) -> None:
        """Commit everything queued so far, then stop the thread."""
        self._closed = True
        if self._lane is not None:
            self._lane.close()
            self._lane = None
        self._queue.put(self._STOP)
        self._waited_for.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            while True:
                conn = self._conn
                try:
                    item = self._queue.get(
                        timeout=self.SCRUB_RETRY if self._scrub_pending else None
                    )
                except queue.Empty:
                    self._scrub_pending = not scrub(conn)
                    continue
                if item is self._STOP:
                    return
                if item is self._CHECKPOINT:
                    self._checkpoint(conn)
                    continue
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
                    if nxt is self._CHECKPOINT:
                        self._commit(conn, batch)
                        self._checkpoint(conn)
                        batch = []
                        break
                    batch.append(nxt)
                if not batch:
                    continue
                self._commit(conn, batch)
        finally:
            self._release()

    def _open(self) -> Any:
        # The writers of every worker take turns by this lock before SQLite's: one waiting for
        # it wakes as soon as it is released, where SQLite's busy handler sleeps 1, 2, 5, 10 ...
        # ms between tries (issue 19: two workers stored fewer events than one, p99 0.5 s).
        conn = connect(self._path)
        self._turns = os.open(f"{self._path}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
        return conn

    def _release(self) -> None:
        self._conn.close()
        os.close(self._turns)

    def _commit(self, conn: Connection, batch: list[Item]) -> None:
        self._report(batch, self._run_batch(conn, batch))

    def _report(
        self, batch: list[Item], outcomes: list[tuple[bool, Any]], *, same_thread: bool = False
    ) -> None:
        """Settle the futures of a committed or failed group (``same_thread``: on their loop's
        thread) and log what nobody waits for."""
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
            if same_thread:
                _settle(future, ok, value)
                continue
            try:
                loop.call_soon_threadsafe(_settle, future, ok, value)
            except RuntimeError:  # the caller's loop has closed; the write is committed anyway
                pass

    def _checkpoint(self, conn: Connection) -> None:
        """Copy the loop lane's commits from the ``-wal`` into the database file (its
        connection leaves checkpoints to this thread); a busy one waits for the next. A scrub
        the lane asked for is one that empties the ``-wal``; past WAL_RESTART_FRAMES the
        checkpoint has the ``-wal`` written from its start again (:meth:`_restart_wal`)."""
        self._checkpoint_asked = False
        if self._scrub_pending:
            self._scrub_pending = not scrub(conn)
            return
        try:
            _busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if frames < self.WAL_RESTART_FRAMES:
                self._restart_at = self.WAL_RESTART_FRAMES  # it was written from its start
            elif frames >= self._restart_at:
                for _ in range(3):  # what was committed meanwhile, without holding anyone up
                    if frames - copied < self.RESTART_REST:
                        break
                    _busy, frames, copied = conn.execute(
                        "PRAGMA wal_checkpoint(PASSIVE)"
                    ).fetchone()
                self._restart_wal(conn, frames)
        except (sqlite3.Error, OSError) as exc:
            log.warning("checkpoint failed: %s", exc)

    def _restart_wal(self, conn: Connection, frames: int) -> None:
        """Copy the rest of the ``-wal`` in the writers' turn, so that the next commit writes it
        from its start again. SQLite does that only after a checkpoint that copied every frame,
        which checkpoints beside commits that never pause never are: under a steady load the
        ``-wal`` grew by every commit (issue 19: 1 GB in minutes of the bench).

        The turn is held while the last frames are copied and the database file synced (what
        the passive checkpoints copied is synced before: 60-150 ms in the turn became 10-30). The
        loop lane keeps its groups meanwhile without blocking. A reader of an older snapshot
        held past RESTART_WAIT (a long export, a backup) leaves it to a checkpoint once the
        ``-wal`` has grown by as much again: a long reader lets the ``-wal`` grow, as in SQLite."""
        _sync_file_system(self._turns)
        fcntl.flock(self._turns, fcntl.LOCK_EX)
        try:
            deadline = time.monotonic() + self.RESTART_WAIT
            with waiting(conn, 0):  # tried every millisecond, not after SQLite's 1, 2, 5, 10 ...
                while busy := conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()[0]:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.001)
        finally:
            fcntl.flock(self._turns, fcntl.LOCK_UN)
        if busy:  # a reader held an older snapshot: not again before the -wal has grown more
            self._restart_at = frames + self.WAL_RESTART_FRAMES

    def _ask_checkpoint(self, *, scrub: bool = False) -> None:
        if scrub:
            self._scrub_pending = True
        if not self._checkpoint_asked:
            self._checkpoint_asked = True
            self._queue.put(self._CHECKPOINT)

    def _set_failing(self, reason: str | None) -> None:
        """Log the start and the end of a storage failure once each, not once per write."""
        if reason and not self.failing:
            log.error("the database cannot be written (%s): writes are refused with 503", reason)
        elif self.failing and not reason:
            log.warning("the database can be written again")
        self.failing = reason

    def _run_batch(self, conn: Connection, batch: list[Item]) -> list[tuple[bool, Any]]:
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
        self, conn: Connection, batch: list[Item], *, begun: bool = False
    ) -> tuple[list[tuple[bool, Any]], bool]:
        """One group in one transaction (``begun``: already begun): each unit's outcome, and
        whether it was committed."""
        outcomes: list[tuple[bool, Any]] = []
        try:
            if not begun:
                conn.execute(self._BEGIN)
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
            except Exception:  # sqlite3's or psycopg's: a lost connection cannot roll back
                log.exception("rollback failed; the connection stays usable for the next batch")
            return outcomes, False
        return outcomes, True


class _LoopLane:
    """The units queued on an event loop (:meth:`Writer.submit`, ``write(small=True)``),
    committed in groups on the loop's thread: a unit somebody waits for with what is queued at
    the loop's next turn, the others after ``linger`` seconds or once ``max_batch`` are queued.

    It never waits on the loop. Its connection does not wait for SQLite's lock (busy_timeout
    0) and leaves checkpoints to the writer's thread; a lock another writer holds (this worker's
    thread, another worker, a command) sends the group back to wait a millisecond, for up to
    :data:`BUSY_SECONDS`, the busy timeout of every other connection, before it fails as theirs
    would. A write somebody waits for hands the queued units over to the thread first, so that
    they are committed in the order they came.
    """

    BUSY_RETRY = 0.001  # seconds before a group turned away by a held lock tries again
    BUSY_SECONDS = 5.0
    CHECKPOINT_SECONDS = 0.25  # how often, at most, it asks the thread for a checkpoint

    def __init__(self, writer: Writer, loop: asyncio.AbstractEventLoop) -> None:
        self.writer = writer
        self.loop = loop
        # The hot path's visitor reads run on this connection too (Writer.loop_reads): a page
        # cache as large as the Reader's keeps the B-trees' upper levels (issue 19: ~5 % more
        # decides a second than with SQLite's default 2 MiB).
        self.conn = connect(writer._path, large_cache=True)
        self.conn.execute("PRAGMA busy_timeout = 0")
        self.conn.execute("PRAGMA wal_autocheckpoint = 0")
        # An open file of its own: flock() excludes it from the thread's, as from other workers'.
        self.turns = os.open(f"{writer._path}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
        self.pending: list[Item] = []
        self.timer: asyncio.TimerHandle | None = None
        self.soon = False  # the timer is the next turn of the loop
        self.busy_since: float | None = None  # when a held lock first turned the group away
        self.asked_at = 0.0  # when it last asked for a checkpoint

    def add(self, fn: Callable[[Connection], Any], future: Any = None) -> None:
        """Queue ``fn``; a unit somebody waits for (``future``) is committed with everything
        queued once the loop has run what is ready, the others after ``linger``."""
        self.pending.append((fn, self.loop, future))
        if future is not None or len(self.pending) >= self.writer.max_batch:
            if not self.soon:
                self._schedule(0)
        elif self.timer is None:
            self._schedule(self.writer.linger)

    def hand_over(self) -> None:
        """Queue what is pending on the thread, ahead of the write about to be queued there."""
        for item in self.pending:
            self.writer._queue.put(item)
        self.pending.clear()

    def _schedule(self, delay: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.loop.call_later(delay, self.flush)
        self.soon = delay == 0

    def flush(self, *, wait: bool = False) -> None:
        """Commit one group; ``wait``: for the locks, as at close."""
        self.timer, self.soon = None, False
        if not self.pending:
            return
        try:
            begun = self._begin(wait)
        except sqlite3.Error as exc:  # failing storage, or a lock held past BUSY_SECONDS
            batch = self._take()
            self.writer._report(batch, [(False, exc)] * len(batch), same_thread=True)
            return
        if not begun:
            self._schedule(self.BUSY_RETRY)
            return
        try:
            batch = self._take()
            outcomes, committed = self.writer._transaction(self.conn, batch, begun=True)
        finally:
            fcntl.flock(self.turns, fcntl.LOCK_UN)
        self.writer._report(batch, outcomes, same_thread=True)
        if self.pending:
            self._schedule(0)
        now = time.monotonic()
        if committed and hand_over_scrub(self.conn):  # a unit erased something
            self.writer._ask_checkpoint(scrub=True)
        elif committed and now - self.asked_at >= self.CHECKPOINT_SECONDS:
            self.asked_at = now
            self.writer._ask_checkpoint()

    def _take(self) -> list[Item]:
        batch = self.pending[: self.writer.max_batch]
        del self.pending[: len(batch)]
        return batch

    def _begin(self, wait: bool) -> bool:
        """Take the writers' lock and begin the transaction: False while another writer holds
        either and the group may still wait; past :data:`BUSY_SECONDS` the lock's error."""
        try:
            fcntl.flock(self.turns, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            return self._patient(sqlite3.OperationalError("database is locked (writers' lock)"))
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            fcntl.flock(self.turns, fcntl.LOCK_UN)
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                raise
            return self._patient(exc)
        except BaseException:
            fcntl.flock(self.turns, fcntl.LOCK_UN)
            raise
        self.busy_since = None
        return True

    def _patient(self, exc: sqlite3.Error) -> bool:
        now = time.monotonic()
        if self.busy_since is None:
            self.busy_since = now
        if now - self.busy_since < self.BUSY_SECONDS:
            return False
        self.busy_since = None
        raise exc

    def close(self) -> None:
        """Commit everything pending, waiting for the locks; then close."""
        if self.timer is not None:
            self.timer.cancel()
        self.conn.execute(f"PRAGMA busy_timeout = {int(self.BUSY_SECONDS * 1000)}")
        while self.pending:
            self.flush(wait=True)
        if self.timer is not None:
            self.timer.cancel()
        self.conn.close()
        os.close(self.turns)


_SYNCFS = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)  # Linux's


def _sync_file_system(fd: int) -> None:
    """Write what the file system of ``fd`` holds in memory to disk (``syncfs``; every file
    system where there is none): the database file and its ``-wal`` without a descriptor of
    their own, since closing any descriptor of the database file drops every SQLite lock the
    process holds on it (POSIX locks belong to the process), and another process would take
    itself for the last user and delete the ``-wal``."""
    if _SYNCFS is None:
        os.sync()
    elif _SYNCFS(fd) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def _touch_health(conn: Connection) -> None:
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
