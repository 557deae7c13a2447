"""All SQL lives here: schema migrations, hot-path reads and the single writer.

Concurrency model (see ARCHITECTURE.md): SQLite in WAL mode lets readers run beside one writer.
Primary-key reads on the decide path run directly on the event loop: they cost tens of
microseconds, far less than a hop to a thread pool. Every write goes through :class:`Writer`, one
thread with one connection that commits queued work in groups (``BEGIN IMMEDIATE``), so writes
never contend with each other and a burst of events costs one fsync, not one per event.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson
import sqlite_utils

from .profiles import PageViewUpdate, Profile, advance

T = TypeVar("T")

log = logging.getLogger("touchpoint.store")
migrations = sqlite_utils.Migrations("touchpoint")
CACHE_KIB = 64 * 1024


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE visitors (
            id TEXT PRIMARY KEY,
            created_at INTEGER NOT NULL,
            consent_revision INTEGER,
            consent_granted TEXT NOT NULL DEFAULT '[]',
            consent_at INTEGER
        ) WITHOUT ROWID
        """
    )
    # One row per visitor and campaign, kept in step with `events` in the same transaction,
    # so frequency rules read one small index range instead of scanning the event history.
    db.execute(
        """
        CREATE TABLE campaign_state (
            visitor_id TEXT NOT NULL,
            campaign TEXT NOT NULL,
            impressions INTEGER NOT NULL DEFAULT 0,
            last_seen_at INTEGER,
            last_closed_at INTEGER,
            last_converted_at INTEGER,
            PRIMARY KEY (visitor_id, campaign)
        ) WITHOUT ROWID
        """
    )
    db.execute(
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            visitor_id TEXT NOT NULL,
            at INTEGER NOT NULL,
            type TEXT NOT NULL,
            campaign TEXT,
            variant TEXT,
            path TEXT
        )
        """
    )
    db.execute("CREATE INDEX events_visitor ON events (visitor_id, at)")
    db.execute("CREATE INDEX events_at ON events (at)")
    # Append-only proof of consent (GDPR Art. 7(1)): rows are never updated.
    db.execute(
        """
        CREATE TABLE consent_log (
            id INTEGER PRIMARY KEY,
            visitor_id TEXT NOT NULL,
            at INTEGER NOT NULL,
            revision INTEGER NOT NULL,
            granted TEXT NOT NULL,
            denied TEXT NOT NULL,
            method TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX consent_log_visitor ON consent_log (visitor_id, at)")
    db.execute(
        """
        CREATE TRIGGER consent_log_append_only BEFORE UPDATE ON consent_log
        BEGIN SELECT RAISE(ABORT, 'consent_log is append-only'); END
        """
    )


@migrations()
def m002_profiles(db: sqlite_utils.Database) -> None:
    # The profile lives in the visitors row: one primary-key read on the decide path. Counters
    # the decision reads are columns; the rest (touches, attributes, interests) one JSON value.
    for column in (
        "first_seen_at INTEGER",
        "last_seen_at INTEGER",
        "visits INTEGER NOT NULL DEFAULT 0",
        "page_views INTEGER NOT NULL DEFAULT 0",
        "session_started_at INTEGER",
        "session_page_views INTEGER NOT NULL DEFAULT 0",
        "stage TEXT NOT NULL DEFAULT 'visitor'",
        "score REAL NOT NULL DEFAULT 0",
        "identified INTEGER NOT NULL DEFAULT 0",
        "data TEXT NOT NULL DEFAULT '{}'",
    ):
        db.execute(f"ALTER TABLE visitors ADD COLUMN {column}")
    # Per-session caps, and the variant a visitor was shown (so that a change of weights does
    # not move visitors who have already seen one variant to another).
    for column in (
        "session_impressions INTEGER NOT NULL DEFAULT 0",
        "variant TEXT",
        "version INTEGER",
    ):
        db.execute(f"ALTER TABLE campaign_state ADD COLUMN {column}")


@migrations()
def m004_webhooks(db: sqlite_utils.Database) -> None:
    # The outbox: a webhook is queued in the same transaction as the change it reports, and
    # delivered from here at least once (docs/webhooks.md). A worker claims a row by setting
    # lease_until; a row whose lease has run out (its worker died) can be claimed again.
    db.execute(
        """
        CREATE TABLE webhook_outbox (
            id INTEGER PRIMARY KEY,
            endpoint TEXT NOT NULL,
            event TEXT NOT NULL,
            key TEXT NOT NULL,
            visitor_id TEXT,
            body TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'delivered', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            lease_owner TEXT,
            lease_until REAL,
            last_status INTEGER,
            last_error TEXT,
            delivered_at INTEGER,
            UNIQUE (endpoint, key)
        )
        """
    )
    db.execute("CREATE INDEX webhook_outbox_due ON webhook_outbox (state, next_attempt_at)")
    # The body holds profile data: erasing a visitor deletes their rows (erase_webhooks).
    db.execute("CREATE INDEX webhook_outbox_visitor ON webhook_outbox (visitor_id)")


def connect(path: Path | str) -> sqlite3.Connection:
    """A connection with the pragmas every Touchpoint connection uses."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA journal_mode = WAL")
    # NORMAL in WAL mode survives a crash of the process; only a power loss can drop the
    # last commits. Documented in docs/operations.md.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def migrate(path: Path | str) -> list[str]:
    """Apply pending migrations; returns the names applied. Safe to call at every start."""
    # The database holds personal data: readable by the service's user only. SQLite gives the
    # -wal and -shm files the database file's permissions.
    Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    conn = connect(path)
    try:
        db = sqlite_utils.Database(conn)
        pending = [m.name for m in migrations.pending(db)]
        if pending:
            migrations.apply(db)
        return pending
    finally:
        conn.close()


# --- reads ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignHistory:
    impressions: int = 0  # impressions and exposures (a holdout's "would have been shown")
    last_seen_at: int | None = None
    last_closed_at: int | None = None
    last_converted_at: int | None = None
    session_impressions: int = 0  # in the session of last_seen_at
    variant: str | None = None  # the variant last shown, and the campaign version it was of
    version: int | None = None


@dataclass(frozen=True)
class VisitorRecord:
    id: str
    consent_revision: int | None
    consent_granted: frozenset[str]
    campaigns: dict[str, CampaignHistory] = field(default_factory=dict)
    profile: Profile = field(default_factory=Profile)


_PROFILE_COLUMNS = (
    "first_seen_at, last_seen_at, visits, page_views, session_started_at, session_page_views,"
    " stage, score, identified, data"
)
_VISITOR_SQL = f"""
SELECT v.consent_revision, v.consent_granted,
       {", ".join("v." + c.strip() for c in _PROFILE_COLUMNS.split(","))},
       c.campaign, c.impressions, c.last_seen_at, c.last_closed_at, c.last_converted_at,
       c.session_impressions, c.variant, c.version
FROM visitors v LEFT JOIN campaign_state c ON c.visitor_id = v.id
WHERE v.id = ?
"""


def _profile(row: tuple[Any, ...] | sqlite3.Row) -> Profile:
    """A Profile from the _PROFILE_COLUMNS of a row, in that order."""
    data = orjson.loads(row[9])
    return Profile(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], bool(row[8]),
        **Profile.data_fields(data),
    )  # fmt: skip


class Reader:
    """Cheap indexed reads for the hot path, run on the caller's thread (the event loop)."""

    def __init__(self, path: Path | str) -> None:
        self.conn = connect(path)
        self.conn.execute("PRAGMA query_only = ON")
        # A page cache large enough for the upper B-tree levels of millions of profiles.
        self.conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")

    def visitor(self, visitor_id: str) -> VisitorRecord | None:
        rows = self.conn.execute(_VISITOR_SQL, (visitor_id,)).fetchall()
        if not rows:
            return None
        first = rows[0]
        campaigns = {row[12]: CampaignHistory(*row[13:]) for row in rows if row[12]}
        return VisitorRecord(
            visitor_id,
            first[0],
            frozenset(orjson.loads(first[1])),
            campaigns,
            _profile(first[2:12]),
        )

    def ping(self) -> None:
        """Raise sqlite3.Error unless the database answers a query."""
        self.conn.execute("SELECT 1 FROM visitors LIMIT 1").fetchall()

    def events(self, visitor_id: str) -> list[dict[str, Any]]:
        cursor = self.conn.execute(
            "SELECT at, type, campaign, variant, path FROM events WHERE visitor_id = ? ORDER BY id",
            (visitor_id,),
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]

    def consent_log(self, visitor_id: str) -> list[dict[str, Any]]:
        cursor = self.conn.execute(
            "SELECT at, revision, granted, denied, method FROM consent_log"
            " WHERE visitor_id = ? ORDER BY id",
            (visitor_id,),
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]

    def count(self, table: str) -> int:
        if table not in {"visitors", "campaign_state", "events", "consent_log"}:
            raise ValueError(table)
        return int(self.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    def close(self) -> None:
        self.conn.close()


# --- writes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    type: str
    campaign: str
    variant: str | None
    path: str | None
    version: int = 1  # the campaign's version when the event happened


# Which campaign_state column each campaign event type stamps. An exposure is the impression a
# holdout visitor would have had: it counts towards caps like one, so both groups see the
# same number of chances.
_STATE_COLUMN = {
    "impression": "last_seen_at",
    "exposure": "last_seen_at",
    "close": "last_closed_at",
    "convert": "last_converted_at",
}


def record_consent(
    conn: sqlite3.Connection,
    visitor_id: str,
    *,
    at: int,
    revision: int,
    granted: Iterable[str],
    denied: Iterable[str],
    method: str,
) -> None:
    """Log an answer and keep the visitor's current consent; a refusal creates no profile."""
    granted_list = sorted(granted)
    granted_json = json.dumps(granted_list)
    if granted_list:
        conn.execute(
            "INSERT INTO visitors (id, created_at, consent_revision, consent_granted, consent_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
            " consent_revision = excluded.consent_revision,"
            " consent_granted = excluded.consent_granted, consent_at = excluded.consent_at",
            (visitor_id, at, revision, granted_json, at),
        )
    else:
        conn.execute(
            "UPDATE visitors SET consent_revision = ?, consent_granted = '[]', consent_at = ?"
            " WHERE id = ?",
            (revision, at, visitor_id),
        )
    _forget_withheld(conn, visitor_id, set(granted_list))
    conn.execute(
        "INSERT INTO consent_log (visitor_id, at, revision, granted, denied, method)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (visitor_id, at, revision, granted_json, json.dumps(sorted(denied)), method),
    )


def _forget_withheld(conn: sqlite3.Connection, visitor_id: str, granted: set[str]) -> None:
    """Drop what a category no longer granted allowed: the profile without personalisation,
    the campaign history without marketing. (The event log and its retention: docs/privacy.md.)"""
    if "personalisation" not in granted:
        conn.execute(
            "UPDATE visitors SET first_seen_at = NULL, last_seen_at = NULL, visits = 0,"
            " page_views = 0, session_started_at = NULL, session_page_views = 0,"
            " stage = 'visitor', score = 0, identified = 0, data = '{}' WHERE id = ?",
            (visitor_id,),
        )
    if "marketing" not in granted:
        conn.execute("DELETE FROM campaign_state WHERE visitor_id = ?", (visitor_id,))


def record_events(
    conn: sqlite3.Connection,
    visitor_id: str,
    events: Iterable[Event],
    *,
    at: int,
    visit_start: int,
) -> int:
    """Store campaign events and keep ``campaign_state`` in step with them. ``visit_start``
    (profiles.visit_start) decides whether an impression is in the same visit as the last."""
    count = 0
    for event in events:
        conn.execute(
            "INSERT INTO events (visitor_id, at, type, campaign, variant, path)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (visitor_id, at, event.type, event.campaign, event.variant, event.path),
        )
        column = _STATE_COLUMN[event.type]
        if column == "last_seen_at":
            conn.execute(
                "INSERT INTO campaign_state (visitor_id, campaign, impressions, last_seen_at,"
                " session_impressions, variant, version) VALUES (?, ?, 1, ?, 1, ?, ?)"
                " ON CONFLICT (visitor_id, campaign) DO UPDATE SET"
                " impressions = impressions + 1,"
                " session_impressions = CASE WHEN last_seen_at >= ?"
                "   THEN session_impressions + 1 ELSE 1 END,"
                " last_seen_at = excluded.last_seen_at,"
                " variant = excluded.variant, version = excluded.version",
                (visitor_id, event.campaign, at, event.variant, event.version, visit_start),
            )
        else:
            conn.execute(
                f"INSERT INTO campaign_state (visitor_id, campaign, {column}) VALUES (?, ?, ?)"
                f" ON CONFLICT (visitor_id, campaign) DO UPDATE SET {column} = excluded.{column}",
                (visitor_id, event.campaign, at),
            )
        count += 1
    return count


_UPDATE_PROFILE = (
    "UPDATE visitors SET first_seen_at = ?, last_seen_at = ?, visits = ?, page_views = ?,"
    " session_started_at = ?, session_page_views = ?, data = ? WHERE id = ?"
)


def _profile_values(profile: Profile) -> tuple[Any, ...]:
    return (
        profile.first_seen_at,
        profile.last_seen_at,
        profile.visits,
        profile.page_views,
        profile.session_started_at,
        profile.session_page_views,
        orjson.dumps(profile.data_json()).decode(),
    )


def record_page_view(
    conn: sqlite3.Connection,
    visitor_id: str,
    view: PageViewUpdate,
    *,
    session_idle: int,
    read: Profile | None = None,
    result: Profile | None = None,
) -> bool:
    """Count a page view in the visitor's profile; False when the visitor has no row.

    ``result`` is the profile the caller already computed from the profile it ``read``: it is
    written in one statement if the row still holds what was read (its page view count, last
    page view and JSON part), which spares the writer a lookup. Otherwise, say after a page view
    in another tab or an attribute set meanwhile, the row is read again and the view applied.
    """
    if read is not None and result is not None:
        guarded = _UPDATE_PROFILE + " AND page_views = ? AND last_seen_at IS ? AND data = ?"
        read_data = orjson.dumps(read.data_json()).decode()
        values = (*_profile_values(result), visitor_id, read.page_views, read.last_seen_at,
                  read_data)  # fmt: skip
        if conn.execute(guarded, values).rowcount:
            return True
    row = conn.execute(
        f"SELECT {_PROFILE_COLUMNS} FROM visitors WHERE id = ?", (visitor_id,)
    ).fetchone()
    if row is None:
        return False
    profile = advance(_profile(row), view, session_idle=session_idle)
    conn.execute(_UPDATE_PROFILE, (*_profile_values(profile), visitor_id))
    return True


class Writer:
    """The one writer: a thread that commits queued work in groups, in arrival order.

    Each unit of work runs inside its own SAVEPOINT, so one failing unit is rolled back and
    reported to its caller without undoing the others in the same group commit.
    """

    _STOP = object()

    def __init__(self, path: Path | str, *, max_batch: int = 256) -> None:
        self.max_batch = max_batch
        # Opened here, so an unusable database fails the start-up, not the first write.
        self._conn = connect(path)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
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
        return await future

    def submit(self, fn: Callable[[sqlite3.Connection], Any]) -> None:
        """Queue ``fn(conn)`` without waiting for it: for writes a lost one would not hurt
        (a page view count). A failure is logged."""
        self._queue.put((fn, None, None))

    def close(self) -> None:
        """Commit everything queued so far, then stop the thread."""
        self._queue.put(self._STOP)
        self._thread.join()

    def _run(self) -> None:
        conn = self._conn
        try:
            while True:
                item = self._queue.get()
                if item is self._STOP:
                    return
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

    def _commit(self, conn: sqlite3.Connection, batch: list[Any]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, _loop, _future in batch:
                conn.execute("SAVEPOINT unit")
                try:
                    outcomes.append((True, fn(conn)))
                    conn.execute("RELEASE unit")
                except Exception as exc:  # reported to the caller that queued this unit
                    conn.execute("ROLLBACK TO unit")
                    conn.execute("RELEASE unit")
                    outcomes.append((False, exc))
            conn.execute("COMMIT")
        except Exception as exc:  # the transaction failed: every unit in it failed
            outcomes = [(False, exc)] * len(batch)
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            except sqlite3.Error:
                log.exception("rollback failed; the connection stays usable for the next batch")
        for (fn, loop, future), (ok, value) in zip(batch, outcomes, strict=True):
            if future is None:
                if not ok:
                    log.error("queued write %s failed", getattr(fn, "__name__", fn), exc_info=value)
                continue
            try:
                loop.call_soon_threadsafe(_settle, future, ok, value)
            except RuntimeError:  # the caller's loop has closed; the write is committed anyway
                pass


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.cancelled():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


# --- webhooks ---------------------------------------------------------------------------------
# The outbox of server/webhooks.py. Rows are queued inside the caller's unit of work; delivery
# claims them with a lease, so that workers sharing the database never send one row at once.


@dataclass(frozen=True)
class OutboxRow:
    id: int
    endpoint: str
    event: str
    key: str  # the idempotency key, sent as Touchpoint-Delivery on every attempt
    body: str
    attempts: int  # including the one this claim is for


def queue_webhook(
    conn: sqlite3.Connection,
    *,
    endpoint: str,
    event: str,
    key: str,
    body: str,
    now: int,
    visitor_id: str | None = None,
) -> bool:
    """Queue one delivery; False when ``endpoint`` already has one with this ``key``."""
    cursor = conn.execute(
        "INSERT INTO webhook_outbox"
        " (endpoint, event, key, visitor_id, body, created_at, next_attempt_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (endpoint, key) DO NOTHING",
        (endpoint, event, key, visitor_id, body, now, now),
    )
    return cursor.rowcount == 1


def erase_webhooks(conn: sqlite3.Connection, visitor_id: str) -> int:
    """Delete every outbox row about ``visitor_id``, sent or not (erasure of their data)."""
    return conn.execute("DELETE FROM webhook_outbox WHERE visitor_id = ?", (visitor_id,)).rowcount


def _placeholders(values: Iterable[Any]) -> str:
    return ", ".join("?" for _ in values)


def claim_webhooks(
    conn: sqlite3.Connection,
    endpoints: Iterable[str],
    *,
    now: float,
    owner: str,
    lease_until: float,
    limit: int,
) -> list[OutboxRow]:
    """Lease up to ``limit`` due rows of ``endpoints`` to ``owner``, counting an attempt each.

    One statement, inside the writer's ``BEGIN IMMEDIATE``: another process's claim runs
    before or after it, never between the choice of rows and their lease.
    """
    names = sorted(endpoints)
    if not names:
        return []
    # The lease moves the next attempt to its end: if the worker dies, the row is due again
    # then, and "due" stays one indexed column for the claim and for webhook_due.
    rows = conn.execute(
        "UPDATE webhook_outbox SET lease_owner = ?, lease_until = ?, next_attempt_at = ?,"
        " attempts = attempts + 1"
        " WHERE id IN (SELECT id FROM webhook_outbox WHERE state = 'pending'"
        f"   AND next_attempt_at <= ? AND endpoint IN ({_placeholders(names)})"
        "   ORDER BY next_attempt_at LIMIT ?)"
        " RETURNING id, endpoint, event, key, body, attempts",
        (owner, lease_until, lease_until, now, *names, limit),
    ).fetchall()
    return sorted((OutboxRow(*row) for row in rows), key=lambda row: row.id)


def webhook_delivered(conn: sqlite3.Connection, row_id: int, *, now: int, status: int) -> None:
    # Whoever holds the lease now: a 2xx answer is the truth even if the lease ran out meanwhile.
    conn.execute(
        "UPDATE webhook_outbox SET state = 'delivered', delivered_at = ?, last_status = ?,"
        " last_error = NULL, lease_owner = NULL, lease_until = NULL"
        " WHERE id = ? AND state = 'pending'",
        (now, status, row_id),
    )


def webhook_attempt_failed(
    conn: sqlite3.Connection,
    row_id: int,
    *,
    owner: str,
    status: int | None,
    error: str,
    retry_at: float | None,
) -> None:
    """Record a failed attempt: retry at ``retry_at``, or give up (state ``failed``) if None.
    Ignored when the lease has passed to another worker, whose attempt then counts instead."""
    conn.execute(
        "UPDATE webhook_outbox SET last_status = ?, last_error = ?, lease_owner = NULL,"
        " lease_until = NULL, state = CASE WHEN ? IS NULL THEN 'failed' ELSE state END,"
        " next_attempt_at = coalesce(?, next_attempt_at)"
        " WHERE id = ? AND lease_owner = ? AND state = 'pending'",
        (status, error, retry_at, retry_at, row_id, owner),
    )


def release_webhooks(conn: sqlite3.Connection, owner: str, *, now: float) -> int:
    """Hand back the leases of ``owner``, whose attempts were interrupted: the rows are due
    again at once and the interrupted attempts do not count."""
    cursor = conn.execute(
        "UPDATE webhook_outbox SET lease_owner = NULL, lease_until = NULL, next_attempt_at = ?,"
        " attempts = max(attempts - 1, 0) WHERE lease_owner = ? AND state = 'pending'",
        (now, owner),
    )
    return cursor.rowcount


def prune_webhooks(conn: sqlite3.Connection, *, delivered_before: int) -> int:
    """Delete rows delivered before ``delivered_before``; failed rows stay until retried."""
    cursor = conn.execute(
        "DELETE FROM webhook_outbox WHERE state = 'delivered' AND delivered_at < ?",
        (delivered_before,),
    )
    return cursor.rowcount


def retry_webhooks(
    conn: sqlite3.Connection, *, now: float, ids: Iterable[int] = (), all_failed: bool = False
) -> int:
    """Queue failed (or pending) rows again with a fresh count of attempts."""
    ids = list(ids)
    args: tuple[int, ...] = ()
    if all_failed:
        where = "state = 'failed'"
    else:
        where, args = f"state != 'delivered' AND id IN ({_placeholders(ids)})", tuple(ids)
    cursor = conn.execute(
        "UPDATE webhook_outbox SET state = 'pending', attempts = 0, next_attempt_at = ?,"
        f" lease_owner = NULL, lease_until = NULL WHERE {where}",
        (now, *args),
    )
    return cursor.rowcount


def webhook_due(conn: sqlite3.Connection, endpoints: Iterable[str]) -> float | None:
    """When the next pending row of ``endpoints`` can be claimed (None: nothing pending)."""
    names = sorted(endpoints)
    if not names:
        return None
    row = conn.execute(
        "SELECT next_attempt_at FROM webhook_outbox WHERE state = 'pending'"
        f" AND endpoint IN ({_placeholders(names)}) ORDER BY next_attempt_at LIMIT 1",
        names,
    ).fetchone()
    return None if row is None else float(row[0])


def webhook_outbox(
    conn: sqlite3.Connection, *, states: Iterable[str] = ("pending", "failed"), limit: int = 100
) -> tuple[dict[str, dict[str, int]], list[dict[str, Any]]]:
    """Counts per endpoint and state, and the newest ``limit`` rows in ``states``."""
    counts: dict[str, dict[str, int]] = {}
    for endpoint, state, n in conn.execute(
        "SELECT endpoint, state, count(*) FROM webhook_outbox GROUP BY endpoint, state"
    ):
        counts.setdefault(endpoint, {"pending": 0, "delivered": 0, "failed": 0})[state] = n
    states = list(states)
    cursor = conn.execute(
        "SELECT id, endpoint, event, key, visitor_id, state, attempts, created_at, next_attempt_at,"
        " lease_until, last_status, last_error, delivered_at FROM webhook_outbox"
        f" WHERE state IN ({_placeholders(states)}) ORDER BY id DESC LIMIT ?",
        (*states, limit),
    )
    names = [d[0] for d in cursor.description]
    return counts, [dict(zip(names, row, strict=True)) for row in cursor]
