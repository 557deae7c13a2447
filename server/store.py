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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson
import sqlite_utils

from .activity import Activity
from .errors import RequestError
from .identity import Identity
from .profiles import PageViewUpdate, Profile, advance
from .profiles import merge as merge_profiles
from .recognition import new_visitor_id

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
def m005_identity(db: sqlite_utils.Database) -> None:
    # Identifiers as keyed hashes (server/identity.py); `value` holds the clear e-mail address
    # only with data_depth = full.
    db.execute(
        """
        CREATE TABLE identities (
            kind TEXT NOT NULL,
            hash TEXT NOT NULL,
            visitor_id TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            value TEXT,
            PRIMARY KEY (kind, hash)
        ) WITHOUT ROWID
        """
    )
    db.execute("CREATE INDEX identities_visitor ON identities (visitor_id)")
    # Which anonymous visitor was merged into which known one: an export or erasure of a person
    # follows these to the consent log rows kept under the merged id.
    db.execute(
        """
        CREATE TABLE merges (
            id INTEGER PRIMARY KEY,
            from_id TEXT NOT NULL,
            into_id TEXT NOT NULL,
            at INTEGER NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX merges_into ON merges (into_id)")
    # Purchases pushed through the server API, once per order id (a retried push is a no-op).
    db.execute(
        """
        CREATE TABLE orders (
            order_id TEXT PRIMARY KEY,
            visitor_id TEXT NOT NULL,
            at INTEGER NOT NULL,
            value REAL,
            currency TEXT,
            items TEXT NOT NULL DEFAULT '[]'
        )
        """
    )
    db.execute("CREATE INDEX orders_visitor ON orders (visitor_id)")
    # Activities (server/activity.py) in the event log; added only where the activity
    # migration has not added them already.
    existing = {column.name for column in db["events"].columns}
    for column, declaration in (
        ("name", "TEXT"), ("value", "REAL"), ("props", "TEXT"), ("source", "TEXT"),
    ):  # fmt: skip
        if column not in existing:
            db.execute(f"ALTER TABLE events ADD COLUMN {column} {declaration}")


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

    def rows(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]

    def history(self, visitor_id: str) -> dict[str, list[dict[str, Any]]]:
        """Everything the server API shows of a visitor besides the profile."""
        by_visitor = (visitor_id,)
        return {
            "identifiers": self.rows(
                "SELECT kind, created_at, value FROM identities WHERE visitor_id = ?"
                " ORDER BY created_at, kind", by_visitor),
            "events": self.rows(
                "SELECT at, type, campaign, variant, path, name, value, props, source"
                " FROM events WHERE visitor_id = ? ORDER BY id", by_visitor),
            "orders": self.rows(
                "SELECT order_id, at, value, currency, items FROM orders WHERE visitor_id = ?"
                " ORDER BY at, order_id", by_visitor),
            "consent_log": self.consent_log(visitor_id),
        }  # fmt: skip

    def profile_visitor(self, ref: tuple[str, str], *, revision: int) -> str | None:
        return profile_visitor(self.conn, ref, revision=revision)

    def count(self, table: str) -> int:
        if table not in {"visitors", "campaign_state", "events", "consent_log", "identities",
                         "orders", "merges"}:  # fmt: skip
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
        # Without a profile there is nobody to recognise by e-mail or customer id either.
        conn.execute("DELETE FROM identities WHERE visitor_id = ?", (visitor_id,))
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


# --- identification ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Identified:
    """What an identify call did."""

    visitor_id: str  # the surviving visitor: the browser's cookie must name it
    newly_identified: bool  # the surviving profile had no identifier before
    merged_from: str | None = None  # the anonymous visitor merged into it
    switched: bool = False  # the browser now belongs to another visitor than before


def identify(
    conn: sqlite3.Connection, visitor_id: str, identifiers: Identity, *, now: int, keep: str
) -> str:
    """Tie ``visitor_id`` to a person; returns the surviving visitor id (see
    :func:`identify_visitor`)."""
    return identify_visitor(conn, visitor_id, identifiers, now=now, keep=keep).visitor_id


def identify_visitor(
    conn: sqlite3.Connection, visitor_id: str, identity: Identity, *, now: int, keep: str
) -> Identified:
    """Tie the browser's visitor to the person ``identity`` names. ``keep`` is the data_depth.

    - None of the identifiers is known: they are added to this visitor, unless it is already
      known under another identifier of the same kind (another person on a shared computer,
      Mautic #5495): then the browser becomes a fresh visitor, nothing carried over.
    - They belong to another visitor and this one is anonymous: its history is merged into
      the known profile (Mautic #11527), which survives.
    - They belong to another visitor and this one is known as somebody else: the browser
      switches to the known profile; neither history moves.
    - Identifiers belonging to two different visitors are refused (409).

    The surviving visitor takes this browser's consent, logged under its id with the method
    ``identify``: consent is given per browser, and this browser's answer is the person's latest.
    """
    if not conn.execute("SELECT 1 FROM visitors WHERE id = ?", (visitor_id,)).fetchone():
        raise RequestError("this visitor no longer exists; reload the page", status=409)
    owners = set()
    for ident in identity.identifiers:
        row = conn.execute(
            "SELECT i.visitor_id FROM identities i JOIN visitors v ON v.id = i.visitor_id"
            " WHERE i.kind = ? AND i.hash = ?",
            (ident.kind, ident.hash),
        ).fetchone()
        if row:
            owners.add(row[0])
    if len(owners) > 1:
        raise RequestError("the e-mail and the customer id belong to different people", status=409)
    own = set(conn.execute(
        "SELECT kind, hash FROM identities WHERE visitor_id = ?", (visitor_id,)
    ).fetchall())  # fmt: skip
    target = owners.pop() if owners else None
    merged_from = None
    if target is None or target == visitor_id:
        own_kinds = {kind for kind, _ in own}
        other_person = target is None and any(
            i.kind in own_kinds and (i.kind, i.hash) not in own for i in identity.identifiers
        )
        survivor = new_visitor_id() if other_person else visitor_id
    else:
        survivor = target
    if survivor != visitor_id:
        copy_consent(conn, visitor_id, survivor, at=now, method="identify")
        if not own:  # anonymous until now: its history is the person's
            _merge_visitor(conn, visitor_id, survivor, now=now)
            merged_from = visitor_id
    newly = not conn.execute(
        "SELECT 1 FROM identities WHERE visitor_id = ? LIMIT 1", (survivor,)
    ).fetchone()
    for ident in identity.identifiers:
        conn.execute(
            "INSERT INTO identities (kind, hash, visitor_id, created_at, value)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (kind, hash) DO UPDATE SET"
            " visitor_id = excluded.visitor_id, value = excluded.value",
            (ident.kind, ident.hash, survivor, now, ident.clear if keep == "full" else None),
        )
    _set_identified(conn, survivor, identity.first_name, keep=keep)
    return Identified(survivor, newly, merged_from, switched=survivor != visitor_id)


def _set_identified(
    conn: sqlite3.Connection, visitor_id: str, first_name: str | None, *, keep: str
) -> None:
    data = orjson.loads(
        conn.execute("SELECT data FROM visitors WHERE id = ?", (visitor_id,)).fetchone()[0]
    )
    if keep == "minimal":
        data.pop("first_name", None)
    elif first_name:
        data["first_name"] = first_name
    conn.execute(
        "UPDATE visitors SET identified = 1, data = ? WHERE id = ?",
        (orjson.dumps(data).decode(), visitor_id),
    )


def copy_consent(
    conn: sqlite3.Connection, from_id: str, to_id: str, *, at: int, method: str
) -> None:
    """Give ``to_id`` the consent ``from_id`` holds, logged under ``to_id`` with ``method``
    (``identify`` when a browser joins a profile, ``reset`` for a fresh visitor)."""
    row = conn.execute(
        "SELECT consent_revision, consent_granted FROM visitors WHERE id = ?", (from_id,)
    ).fetchone()
    if row is None:  # merged away or erased by a request that was committed first
        raise RequestError("this visitor no longer exists; reload the page", status=409)
    last = conn.execute(
        "SELECT denied FROM consent_log WHERE visitor_id = ? ORDER BY id DESC LIMIT 1", (from_id,)
    ).fetchone()
    record_consent(
        conn,
        to_id,
        at=at,
        revision=row[0],
        granted=json.loads(row[1]),
        denied=json.loads(last[0]) if last else [],
        method=method,
    )


def _merge_visitor(conn: sqlite3.Connection, source: str, target: str, *, now: int) -> None:
    """Move everything of the anonymous ``source`` into ``target`` and delete ``source``."""
    columns = f"{_PROFILE_COLUMNS}"
    anonymous = conn.execute(f"SELECT {columns} FROM visitors WHERE id = ?", (source,)).fetchone()
    known = conn.execute(f"SELECT {columns} FROM visitors WHERE id = ?", (target,)).fetchone()
    profile = merge_profiles(_profile(known), _profile(anonymous))
    # Keys of the JSON part this module does not know about survive, the known profile's winning.
    data = {**orjson.loads(anonymous[9]), **orjson.loads(known[9]), **profile.data_json()}
    conn.execute(
        "UPDATE visitors SET first_seen_at = ?, last_seen_at = ?, visits = ?, page_views = ?,"
        " session_started_at = ?, session_page_views = ?, data = ?, stage = ?, score = ?,"
        " identified = 1 WHERE id = ?",
        (*_profile_values(profile)[:-1], orjson.dumps(data).decode(), profile.stage,
         profile.score, target),
    )  # fmt: skip
    # max() of SQLite is NULL when either side is; coalesce both ways keeps the known time.
    conn.execute(
        "INSERT INTO campaign_state (visitor_id, campaign, impressions, last_seen_at,"
        " last_closed_at, last_converted_at, session_impressions, variant, version)"
        " SELECT ?, campaign, impressions, last_seen_at, last_closed_at, last_converted_at,"
        " session_impressions, variant, version FROM campaign_state WHERE visitor_id = ?"
        " ON CONFLICT (visitor_id, campaign) DO UPDATE SET"
        " impressions = impressions + excluded.impressions,"
        " session_impressions = session_impressions + excluded.session_impressions,"
        " last_seen_at = max(coalesce(last_seen_at, excluded.last_seen_at),"
        "   coalesce(excluded.last_seen_at, last_seen_at)),"
        " last_closed_at = max(coalesce(last_closed_at, excluded.last_closed_at),"
        "   coalesce(excluded.last_closed_at, last_closed_at)),"
        " last_converted_at = max(coalesce(last_converted_at, excluded.last_converted_at),"
        "   coalesce(excluded.last_converted_at, last_converted_at)),"
        " version = CASE WHEN variant IS NULL THEN excluded.version ELSE version END,"
        " variant = coalesce(variant, excluded.variant)",
        (target, source),
    )
    for table in ("campaign_state",):
        conn.execute(f"DELETE FROM {table} WHERE visitor_id = ?", (source,))
    for table in ("events", "orders", "identities"):
        conn.execute(f"UPDATE {table} SET visitor_id = ? WHERE visitor_id = ?", (target, source))
    # The source's consent log rows stay under its id: the log is append-only proof.
    conn.execute(
        "INSERT INTO merges (from_id, into_id, at) VALUES (?, ?, ?)", (source, target, now)
    )
    conn.execute("DELETE FROM visitors WHERE id = ?", (source,))


def reset_visitor(conn: sqlite3.Connection, visitor_id: str, *, now: int) -> str:
    """A fresh anonymous visitor with the consent of ``visitor_id`` (logout on a shared
    computer); ``visitor_id`` and its profile stay as they are."""
    fresh = new_visitor_id()
    copy_consent(conn, visitor_id, fresh, at=now, method="reset")
    return fresh


def find_visitor(conn: sqlite3.Connection, kind: str, value: str) -> str | None:
    """The visitor an API reference names: ``("id", visitor id)`` or ``(kind, hash)``."""
    if kind == "id":
        row = conn.execute("SELECT id FROM visitors WHERE id = ?", (value,)).fetchone()
    else:
        row = conn.execute(
            "SELECT i.visitor_id FROM identities i JOIN visitors v ON v.id = i.visitor_id"
            " WHERE i.kind = ? AND i.hash = ?",
            (kind, value),
        ).fetchone()
    return str(row[0]) if row else None


# --- server API -------------------------------------------------------------------------------


class UnknownVisitors(RequestError):
    """Events for visitors without a profile; ``indexes`` names them in the batch."""

    status = 404

    def __init__(self, indexes: list[int]) -> None:
        super().__init__("no visitor with a profile for these references")
        self.indexes = indexes


@dataclass
class PushResult:
    stored: int = 0
    duplicates: list[int] = field(default_factory=list)  # purchases whose order_id was known
    # What was stored per visitor id (for the caller's lead scoring and webhooks).
    activities: dict[str, list[Activity]] = field(default_factory=dict)


def profile_visitor(conn: sqlite3.Connection, ref: tuple[str, str], *, revision: int) -> str | None:
    """The visitor a server API reference names, if it has a profile: the ``personalisation``
    consent for the current consent ``revision``. ``ref`` is ``("id", visitor id)`` or
    ``(kind, hash)``."""
    kind, value = ref
    if kind == "id":
        sql = "SELECT id, consent_revision, consent_granted FROM visitors WHERE id = ?"
        row = conn.execute(sql, (value,)).fetchone()
    else:
        row = conn.execute(
            "SELECT v.id, v.consent_revision, v.consent_granted FROM identities i"
            " JOIN visitors v ON v.id = i.visitor_id WHERE i.kind = ? AND i.hash = ?",
            (kind, value),
        ).fetchone()
    if row is None or row[1] != revision or "personalisation" not in orjson.loads(row[2]):
        return None
    return str(row[0])


def push_activities(
    conn: sqlite3.Connection,
    batch: Sequence[tuple[tuple[str, str], Activity, dict[str, Any] | None]],
    *,
    revision: int,
) -> PushResult:
    """Store pushed events all or nothing: raises :class:`UnknownVisitors` (and stores none)
    when a reference names no visitor with a profile. A purchase whose ``order_id`` is already
    recorded is skipped and reported in ``duplicates``."""
    found: dict[tuple[str, str], str | None] = {}
    for ref, _, _ in batch:
        if ref not in found:
            found[ref] = profile_visitor(conn, ref, revision=revision)
    missing = [i for i, (ref, _, _) in enumerate(batch) if found[ref] is None]
    if missing:
        raise UnknownVisitors(missing)
    result = PushResult()
    for index, (ref, activity, order) in enumerate(batch):
        visitor_id = found[ref]
        assert visitor_id is not None
        if order is not None and not conn.execute(
            "INSERT INTO orders (order_id, visitor_id, at, value, currency, items)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (order_id) DO NOTHING",
            (order["order_id"], visitor_id, activity.at, order["value"], order["currency"],
             orjson.dumps(order["items"]).decode()),
        ).rowcount:  # fmt: skip
            result.duplicates.append(index)
            continue
        result.activities.setdefault(visitor_id, []).append(activity)
        result.stored += 1
    for visitor_id, activities in result.activities.items():
        _insert_activities(conn, visitor_id, activities)
    return result


def _insert_activities(
    conn: sqlite3.Connection, visitor_id: str, activities: Iterable[Activity]
) -> None:
    """Event log rows for activities, nothing else (no points, no stage): the activity
    branch's record_activities replaces this where it exists."""
    conn.executemany(
        "INSERT INTO events (visitor_id, at, type, path, name, value, props, source)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (visitor_id, a.at, a.type, a.path, a.name, a.value,
             orjson.dumps(dict(a.props)).decode() if a.props else None, a.source)
            for a in activities
        ],
    )  # fmt: skip


def set_attributes(
    conn: sqlite3.Connection, ref: tuple[str, str], values: dict[str, Any], *, revision: int
) -> dict[str, Any] | None:
    """Set (or, with None, clear) attributes of the profile ``ref`` names; returns all its
    attributes, or None without such a profile."""
    visitor_id = profile_visitor(conn, ref, revision=revision)
    if visitor_id is None:
        return None
    row = conn.execute("SELECT data FROM visitors WHERE id = ?", (visitor_id,)).fetchone()
    data = orjson.loads(row[0])
    attributes = dict(data.get("attributes") or {})
    for name, value in values.items():
        if value is None:
            attributes.pop(name, None)
        else:
            attributes[name] = value
    if attributes:
        data["attributes"] = attributes
    else:
        data.pop("attributes", None)
    conn.execute(
        "UPDATE visitors SET data = ? WHERE id = ?", (orjson.dumps(data).decode(), visitor_id)
    )
    return attributes


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
