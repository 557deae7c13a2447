"""The writer on PostgreSQL (issue 20): the same queue, groups and answers as SQLite's writer,
on one thread with one connection of this node.

What differs: PostgreSQL takes row locks as a transaction goes, so several nodes write at once
and the store's read-then-write units lock what they read (``FOR UPDATE``); a group whose unit
lost a deadlock or a serialization conflict to another node runs that unit again in the next
transaction. Everything is committed on the thread: a round trip to the server on the event
loop would stall every request. A lost connection fails the group with 503 (nothing of it is
acknowledged) and the next group connects again.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ..errors import ConfigError, StorageUnavailable
from . import rollups
from .engine import PgConnection, pg_connect
from .writer import Item, Writer, storage_failure

log = logging.getLogger("touchpoint.store")

# SQLSTATEs of a transaction another one won against: worth running again.
RETRYABLE = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected
ATTEMPTS = 5


def _retryable(outcome: tuple[bool, Any]) -> bool:
    ok, value = outcome
    return not ok and getattr(value, "sqlstate", None) in RETRYABLE


class PgWriter(Writer):
    """:class:`Writer` on a PostgreSQL database: ``PgWriter(url)``."""

    _BEGIN = "BEGIN"

    def _open(self) -> PgConnection:
        return pg_connect(self._path)  # _path: the URL

    def _loop_lane(self) -> None:
        return None

    def loop_reads(self) -> None:
        return None

    def _checkpoint(self, conn: Any) -> None:
        self._checkpoint_asked = False

    def _release(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def _run_batch(self, conn: Any, batch: list[Item]) -> list[tuple[bool, Any]]:
        outcomes: list[tuple[bool, Any]] = [(False, None)] * len(batch)
        todo = list(range(len(batch)))
        for attempt in range(ATTEMPTS):
            connected = self._connected()
            if isinstance(connected, StorageUnavailable):
                for i in todo:
                    outcomes[i] = (False, connected)
                return outcomes
            results, _committed = self._transaction(connected, [batch[i] for i in todo])
            for i, outcome in zip(todo, results, strict=True):
                outcomes[i] = outcome
            if connected.raw.closed or connected.raw.broken:
                self._conn = None  # the next group connects again
                connected.close()
            todo = [i for i in todo if _retryable(outcomes[i])]
            if not todo:
                break
            time.sleep(0.001 * 2**attempt)  # let the other node's transaction finish
        return outcomes

    def _transaction(
        self, conn: Any, batch: list[Item], *, begun: bool = False
    ) -> tuple[list[tuple[bool, Any]], bool]:
        """One group in one transaction, without a savepoint per unit: two round trips a unit
        fewer (the bench: about two of every five statements). A unit that fails rolls back
        the group, which then runs again without it, so that it fails alone as on SQLite."""
        failed: dict[int, Exception] = {}
        while True:
            outcomes: list[tuple[bool, Any]] = []
            unit = -1
            try:
                conn.execute(self._BEGIN)
                with rollups.tallied(conn) as tally:
                    for unit, (fn, _loop, _future) in enumerate(batch):
                        if unit in failed:
                            outcomes.append((False, failed[unit]))
                            continue
                        outcomes.append((True, fn(conn)))
                        tally.keep_unit()
                    unit = -1
                    tally.flush(conn)
                conn.execute("COMMIT")
                return outcomes, True
            except Exception as exc:
                try:
                    if not conn.raw.broken:
                        conn.execute("ROLLBACK")
                except Exception:
                    log.exception("rollback failed")
                if unit < 0 or storage_failure(exc) or conn.raw.broken:
                    return [(False, exc)] * len(batch), False  # the group itself failed
                failed[unit] = exc  # again without this unit

    def _connected(self) -> Any:
        """The connection, or the StorageUnavailable of a server that cannot be reached."""
        if self._conn is not None:
            return self._conn
        try:
            self._conn = pg_connect(self._path)
        except ConfigError as exc:
            return StorageUnavailable(str(exc))
        log.warning("connected to the database again")
        return self._conn
