"""Cheap indexed reads for the hot path, and how a visitors row becomes a Profile."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from . import eventlog
from .engine import Connection, PgConnection, dialect_of, open_pool, translate
from .migrations import connect
from .records import Profile


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


PROFILE_COLUMNS = (
    "first_seen_at, last_seen_at, visits, page_views, session_started_at, session_page_views,"
    " stage, score, identified, data"
)
_VISITOR_SQL = f"""
SELECT v.consent_revision, v.consent_granted,
       {", ".join("v." + c.strip() for c in PROFILE_COLUMNS.split(","))},
       c.campaign, c.impressions, c.last_seen_at, c.last_closed_at, c.last_converted_at,
       c.session_impressions, c.variant, c.version
FROM visitors v LEFT JOIN campaign_state c ON c.visitor_id = v.id
WHERE v.id = ?
"""


_VISITOR_PG = translate(_VISITOR_SQL)[0]


def profile_from_row(row: tuple[Any, ...] | sqlite3.Row) -> Profile:
    """A Profile from the PROFILE_COLUMNS of a row, in that order."""
    data = orjson.loads(row[9])
    return Profile(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        row[7],
        bool(row[8]),
        **Profile.data_fields(data),
    )


def profile_of(conn: Connection, visitor_id: str, *, lock: bool = False) -> Profile | None:
    """The stored profile of ``visitor_id`` (as written, no decay applied), or None. ``lock``:
    in a write, the row stays locked to its end on PostgreSQL (engine.Dialect.for_update)."""
    locked = dialect_of(conn).for_update if lock else ""
    row = conn.execute(
        f"SELECT {PROFILE_COLUMNS} FROM visitors WHERE id = ?{locked}", (visitor_id,)
    ).fetchone()
    return profile_from_row(row) if row else None


def profile_visitor(conn: Connection, ref: tuple[str, str], *, revision: int) -> str | None:
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


def identifiers_of(conn: Connection, visitor_id: str) -> list[dict[str, str]]:
    """The kinds of identifier a visitor is known by, each with its value where it is stored
    in clear (data_depth ``full``)."""
    rows = conn.execute(
        "SELECT kind, value FROM identities WHERE visitor_id = ? ORDER BY kind", (visitor_id,)
    )
    return [{"kind": kind, **({"value": value} if value else {})} for kind, value in rows]


def _record(visitor_id: str, rows: list[Any]) -> VisitorRecord | None:
    """A VisitorRecord from the rows of _VISITOR_SQL (one per campaign the visitor has a
    history of), or None without any."""
    if not rows:
        return None
    first = rows[0]
    campaigns = {row[12]: CampaignHistory(*row[13:]) for row in rows if row[12]}
    return VisitorRecord(
        visitor_id,
        first[0],
        frozenset(orjson.loads(first[1])),
        campaigns,
        profile_from_row(first[2:12]),
    )


class Reader:
    """Cheap indexed reads for the hot path, run on the caller's thread (the event loop)."""

    def __init__(self, path: Path | str) -> None:
        self._path = path
        self._conn = self._open()
        self.pool: Any = None  # psycopg_pool.AsyncConnectionPool, once open_pool ran

    def _open(self) -> Connection:
        conn = connect(self._path, large_cache=True)
        if isinstance(conn, PgConnection):
            conn.execute("SET default_transaction_read_only = on")
        else:
            conn.execute("PRAGMA query_only = ON")
        return conn

    @property
    def conn(self) -> Connection:
        """The reading connection. A PostgreSQL connection that broke (a restarted server, a
        failover) fails the read that found out; the next read connects again."""
        if isinstance(self._conn, PgConnection) and self._conn.raw.broken:
            self._conn.close()
            self._conn = self._open()
        return self._conn

    def visitor(self, visitor_id: str, *, conn: Connection | None = None) -> VisitorRecord | None:
        """The visitor's consent, campaign history and profile; read on ``conn`` when given
        (the writer's loop lane: Writer.loop_reads)."""
        try:
            rows = (conn or self.conn).execute(_VISITOR_SQL, (visitor_id,)).fetchall()
        except sqlite3.OperationalError:
            if conn is None:
                raise
            # A lock the lane's connection does not wait for (its busy timeout is 0): this
            # connection waits as every other does.
            rows = self.conn.execute(_VISITOR_SQL, (visitor_id,)).fetchall()
        return _record(visitor_id, rows)

    async def open_pool(self, *, size: int = 4) -> None:
        """On PostgreSQL, the event loop's own connections for :meth:`visitor_soon`: a read
        there waits for its round trip without holding up the loop (issue 20)."""
        if isinstance(self._conn, PgConnection):
            self.pool = await open_pool(str(self._path), size=size)

    async def visitor_soon(self, visitor_id: str) -> VisitorRecord | None:
        """:meth:`visitor`, awaited on the pool where there is one (PostgreSQL)."""
        if self.pool is None:
            return self.visitor(visitor_id)
        async with self.pool.connection() as conn:
            cursor = await conn.execute(_VISITOR_PG, (visitor_id,))
            return _record(visitor_id, await cursor.fetchall())

    async def close_pool(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

    def ping(self) -> None:
        """Raise sqlite3.Error unless the database answers a query."""
        self.conn.execute("SELECT 1 FROM visitors LIMIT 1").fetchall()

    def events(self, visitor_id: str) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT at, type, campaign, variant, path, name, value, props FROM events"
            f" WHERE {eventlog.of_visitor()} ORDER BY id",
            (visitor_id,),
        )

    def stage_history(self, visitor_id: str) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT at, before, after, reason FROM stage_history WHERE visitor_id = ? ORDER BY id",
            (visitor_id,),
        )

    def consent_log(self, visitor_id: str) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT at, revision, granted, denied, method FROM consent_log"
            " WHERE visitor_id = ? ORDER BY id",
            (visitor_id,),
        )

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
                " ORDER BY created_at, kind",
                by_visitor,
            ),
            "events": self.rows(
                "SELECT at, type, campaign, variant, path, name, value, props, source"
                f" FROM events WHERE {eventlog.of_visitor()} ORDER BY id",
                by_visitor,
            ),
            "orders": self.rows(
                "SELECT order_id, at, value, currency, items FROM orders WHERE visitor_id = ?"
                " ORDER BY at, order_id",
                by_visitor,
            ),
            "consent_log": self.consent_log(visitor_id),
        }

    def profile_visitor(self, ref: tuple[str, str], *, revision: int) -> str | None:
        return profile_visitor(self.conn, ref, revision=revision)

    def count(self, table: str) -> int:
        if table not in {
            "visitors",
            "campaign_state",
            "events",
            "consent_log",
            "identities",
            "orders",
            "merges",
            "stage_history",
        }:
            raise ValueError(table)
        return int(self.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    def close(self) -> None:
        self._conn.close()
