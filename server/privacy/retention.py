"""Retention: deleting what is past its time, in the server and with ``touchpoint purge``.

The purge deletes, in this order: events older than ``retention_events_days``; profiles
inactive for ``retention_profiles_days`` with every row stored about them; consent log entries
(and merge and erasure records) older than ``retention_consent_days``; delivered webhooks older
than ``webhook_keep_days``; entries of the console's audit log older than
``admin_audit_days``. Each batch of at most ``purge_batch_rows`` rows is its own short
transaction, followed by a pause at least as long as the batch took, so the purge takes at most
half of the writer's time and a large backlog never holds the decide path up
(docs/privacy.md#retention, docs/operations.md#retention).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import logging
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .. import store
from ..settings import Settings
from ..store import Connection
from ..store.retention import Batch, Cutoffs

log = logging.getLogger("touchpoint")
T = TypeVar("T")
Transact = Callable[[Callable[[Connection], T]], Awaitable[T]]

MIN_PAUSE = 0.01  # seconds between two batches, at least
START_DELAY = 60.0  # seconds after start before a worker first tries to purge
JITTER = 5.0  # seconds, so that workers waking for the same lease do not all try at once


def cutoffs(settings: Settings, now: int) -> Cutoffs:
    return Cutoffs.at(
        now,
        events_days=settings.retention_events_days,
        profiles_days=settings.retention_profiles_days,
        consent_days=settings.retention_consent_days,
        webhook_days=settings.webhook_keep_days,
        audit_days=settings.admin_audit_days,
    )


async def purge(
    transact: Transact[Batch],
    tables: dict[str, str],
    limits: Cutoffs,
    *,
    batch_rows: int,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> dict[str, int]:
    """Delete everything past retention, one batch per ``transact`` call; the rows deleted
    per table. ``tables`` are the tables a profile takes rows from (store.purged_tables)."""
    n = batch_rows
    steps: list[Callable[[Batch | None, Connection], Batch]] = []
    if limits.events_before is not None:
        steps.append(lambda last, c: store.purge_events(c, limits, limit=n))
    if limits.profiles_before is not None:
        steps.append(lambda last, c: store.purge_profiles(c, limits, limit=n, tables=tables))
    if limits.consent_before is not None:
        steps.append(
            lambda last, c: store.purge_consent_log(
                c, limits, limit=n, after=last.cursor if last else None
            )
        )
        steps.append(lambda last, c: store.purge_merges(c, limits, limit=n))
        steps.append(lambda last, c: store.purge_erasures(c, limits, limit=n))
    steps.append(lambda last, c: store.purge_webhooks(c, limits, limit=n))
    if limits.audit_before is not None:
        steps.append(lambda last, c: store.purge_audit(c, limits, limit=n))
    totals: dict[str, int] = {}
    paused = 0.0
    for step in steps:
        last: Batch | None = None
        while last is None or last.more:
            if paused:
                await sleep(paused)
            started = time.monotonic()
            last = await transact(functools.partial(_overwriting, step, last))
            paused = max(MIN_PAUSE, time.monotonic() - started)
            for table, deleted in last.deleted.items():
                totals[table] = totals.get(table, 0) + deleted
    return dict(sorted(totals.items()))


def _overwriting(
    step: Callable[[Batch | None, Connection], Batch],
    last: Batch | None,
    conn: Connection,
) -> Batch:
    """Run ``step`` with SQLite overwriting what it deletes, as an erasure does, so deleted
    rows do not linger in free pages (about a fifth slower), nor, after the commit, in the
    -wal (store/wal.py)."""
    with store.overwriting(conn):
        batch = step(last, conn)
    if any(batch.deleted.values()):
        store.scrub_after_commit(conn)
    return batch


class Purger:
    """The periodic purge of one server worker. Every worker runs one; a lease in the database
    lets one of them purge per ``purge_interval_minutes``. (Two purges at once would be
    harmless: each batch chooses and deletes its rows in one transaction.)"""

    def __init__(
        self,
        settings: Settings,
        writer: store.Writer,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.writer = writer
        self.clock = clock
        self.owner = uuid.uuid4().hex
        self.interval = settings.purge_interval_minutes * 60
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.interval > 0:
            self._task = asyncio.create_task(self.run(), name="touchpoint-purge")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run(self) -> None:
        await asyncio.sleep(min(self.interval, START_DELAY))
        while True:
            wait = self.interval
            try:
                now = self.clock()
                ours, until = await self.writer.write(
                    functools.partial(
                        store.claim_lease,
                        name="purge",
                        owner=self.owner,
                        now=now,
                        until=now + self.interval,
                    )
                )
                if ours:
                    await self.purge_once(int(now))
                wait = max(1.0, until - self.clock())
            except Exception:  # a database error: logged, tried again at the next interval
                log.exception("purge failed")
            await asyncio.sleep(wait + random.random() * JITTER)

    async def purge_once(self, now: int) -> dict[str, int]:
        started = time.monotonic()
        tables = await self.writer.write(store.purged_tables)
        counts = await purge(
            self.writer.write,
            tables,
            cutoffs(self.settings, now),
            batch_rows=self.settings.purge_batch_rows,
        )
        deleted = {table: n for table, n in counts.items() if n}
        if deleted:
            summary = ", ".join(f"{n} {table}" for table, n in deleted.items())
            log.info("purge deleted %s in %.1f s", summary, time.monotonic() - started)
        return counts


def command(settings: Settings, args: argparse.Namespace) -> int:
    """``touchpoint purge [--dry-run] [--json]``: per table, what is (or would be) deleted."""
    started = time.monotonic()
    transactions = 0
    with store.database(settings.database_url) as conn:

        async def transact(fn: Callable[[Connection], T]) -> T:
            nonlocal transactions
            transactions += 1
            with store.immediate(conn):
                return fn(conn)

        limits = cutoffs(settings, int(time.time()))
        if args.dry_run:
            counts = store.count_due(conn, limits)
        else:
            tables = store.purged_tables(conn)
            counts = asyncio.run(
                purge(transact, tables, limits, batch_rows=settings.purge_batch_rows)
            )
            counts = {table: counts.get(table, 0) for table in _report_order(conn, counts)}
    seconds = round(time.monotonic() - started, 2)
    total = sum(counts.values())
    if args.json:
        report: dict[str, Any] = {"dry_run": args.dry_run, "tables": counts, "total": total}
        if not args.dry_run:
            report |= {"transactions": transactions, "seconds": seconds}
        print(json.dumps(report, indent=2))
        return 0
    for table, n in counts.items():
        print(f"{table:<24} {n:>10}")
    if args.dry_run:
        print(f"{total} row(s) would be deleted; dry run, nothing changed", file=sys.stderr)
    else:
        print(
            f"{total} row(s) deleted in {transactions} transaction(s), {seconds} s", file=sys.stderr
        )
    return 0


def _report_order(conn: Connection, counts: dict[str, int]) -> list[str]:
    """Every table a purge can touch, in the order a dry run lists them."""
    return sorted(
        {*counts, *store.purged_tables(conn), "visitors", "consent_log", "merges", "erasures"}
    )
