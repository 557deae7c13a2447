"""What the purge deletes, one bounded batch at a time (docs/privacy.md#retention).

Every ``purge_*`` function deletes at most ``limit`` rows and runs inside the caller's write
transaction (a writer unit, or the ``touchpoint purge`` command's own ``BEGIN IMMEDIATE``), so
one batch holds the write lock for milliseconds and the decide path never waits for it. Each
returns what it deleted per table and whether more is due. ``count_due`` says, per table, what
the batches would delete, for a dry run.

A profile goes with every row of every table that names a visitor (a ``visitor_id`` column, or
the event log's visitor number), found from the schema as an erasure finds them
(``subjects.visitor_tables``, ``subjects.naming``), so a table added later is covered
without a change here, and handled as an erasure handles it: the tables in
``subjects.ANONYMISED`` (coupon codes, redemptions) keep their rows without the visitor id. The
consent log is kept (``KEPT_TABLES``): it has its own, longer retention, as do the erasure
records and the merges that link consent entries. Deleted rows are overwritten in the file
(``secure_delete``), as an erasure's are.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from . import catalog, eventlog
from .engine import Connection, dialect_of
from .subjects import ANONYMISED, naming, visitor_tables

KEPT_TABLES = frozenset({"consent_log", "erasures"})

# A visitor's last activity: the later of the first consent, the latest consent answer and the
# latest page view.
# (GREATEST is spelled as the engine spells it, by _spelled: SQLite's index is on max().)
ACTIVE_AT = "GREATEST(v.created_at, coalesce(v.consent_at, 0), coalesce(v.last_seen_at, 0))"
# The same with the page view's hour (a trigger keeps seen_hour = last_seen_at / 3600): at most
# an hour earlier, never later, so it finds every inactive profile and a few active in that
# hour, which ACTIVE_AT then drops. Indexed (m015_seen_hour's visitors_active_at): a page view
# rewrites the index entry once an hour at most, not every time.
SEEN_BY_HOUR = "GREATEST(v.created_at, coalesce(v.consent_at, 0), coalesce(v.seen_hour, 0) * 3600)"
# Inactive: no page view or consent answer since the cutoff, and no event since then still in
# the event log. Events count as activity only while they are kept (active_since is the later
# of both cutoffs), so the answer is the same before and after the old events are deleted: a
# dry run counts what the purge then does, whatever the order of its steps.
INACTIVE = (
    f"{SEEN_BY_HOUR} < :profiles_before AND {ACTIVE_AT} < :profiles_before AND NOT EXISTS"
    " (SELECT 1 FROM events e WHERE e.visitor = v.num AND e.id >= :active_since_id)"
)
# A consent log entry past its retention, unless it is the latest answer of a profile that the
# purge keeps: that answer is the proof for the data still held.
CONSENT_DUE = (
    "c.at < :consent_before AND (NOT EXISTS (SELECT 1 FROM visitors v"
    f"  WHERE v.id = c.visitor_id AND NOT ({INACTIVE}))"
    " OR EXISTS (SELECT 1 FROM consent_log l WHERE l.visitor_id = c.visitor_id AND l.id > c.id))"
)


@dataclass(frozen=True)
class Cutoffs:
    """Epoch seconds before which rows go; None keeps that kind of row forever."""

    events_before: int | None
    profiles_before: int | None
    consent_before: int | None
    webhooks_before: int  # delivered webhooks (webhook_keep_days)
    audit_before: int | None = None  # the console's audit log (admin_audit_days)

    @classmethod
    def at(
        cls,
        now: int,
        *,
        events_days: int,
        profiles_days: int,
        consent_days: int,
        webhook_days: int,
        audit_days: int = 0,
    ) -> Cutoffs:
        def before(days: int) -> int | None:
            return now - days * 86400 if days > 0 else None

        return cls(
            before(events_days),
            before(profiles_days),
            before(consent_days),
            now - webhook_days * 86400,
            before(audit_days),
        )

    def params(self) -> dict[str, Any]:
        return {
            "events_before": self.events_before,
            "profiles_before": self.profiles_before,
            "consent_before": self.consent_before,
            "webhooks_before": self.webhooks_before,
            "audit_before": self.audit_before,
            "active_since_id": eventlog.first_id(
                max(self.profiles_before or 0, self.events_before or 0)
            ),
            "events_before_id": eventlog.first_id(self.events_before or 0),
        }


@dataclass
class Batch:
    """What one batch deleted, per table, and whether more of its kind is due."""

    deleted: dict[str, int] = field(default_factory=dict)
    more: bool = False
    cursor: tuple[int, int] | None = None  # where the consent log walk goes on


def purged_tables(conn: Connection) -> dict[str, str]:
    """Every table a purged profile takes rows from: name -> the key its rows are deleted by
    (``rowid``, or the primary key columns of a ``WITHOUT ROWID`` table)."""
    return {name: _row_key(conn, name) for name in visitor_tables(conn) if name not in KEPT_TABLES}


def _row_key(conn: Connection, table: str) -> str:
    if isinstance(conn, sqlite3.Connection):
        try:
            conn.execute(f'SELECT rowid FROM "{table}" LIMIT 0')
            return "rowid"
        except sqlite3.OperationalError:  # WITHOUT ROWID: the primary key names a row
            pass
    key = catalog.primary_key(conn, table)
    if not key:  # a PostgreSQL table without one: the row's place, stable in a transaction
        return "ctid"
    return ", ".join(f'"{name}"' for name in key)


def purge_events(conn: Connection, cutoffs: Cutoffs, *, limit: int) -> Batch:
    """Delete up to ``limit`` events older than the events cutoff, oldest first."""
    before = eventlog.first_id(cutoffs.events_before or 0)  # ids run in time order
    deleted = conn.execute(
        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE id < ? ORDER BY id LIMIT ?)",
        (before, limit),
    ).rowcount
    more = deleted == limit and _exists(conn, "SELECT 1 FROM events WHERE id < ?", (before,))
    return Batch({"events": deleted}, more)


def purge_profiles(
    conn: Connection, cutoffs: Cutoffs, *, limit: int, tables: dict[str, str]
) -> Batch:
    """Delete up to ``limit`` rows of inactive profiles: first their rows in ``tables``, then,
    once a batch of profiles has none left, the ``visitors`` rows themselves. Inactivity is
    checked in this transaction, so a visitor who returns between two batches is kept."""
    params = cutoffs.params()
    ids = [
        row[0]
        for row in conn.execute(
            _spelled(
                conn,
                f"SELECT v.id FROM visitors v WHERE {INACTIVE} ORDER BY {SEEN_BY_HOUR}"
                " LIMIT :limit",
            ),
            {**params, "limit": limit},
        )
    ]
    batch = Batch()
    if not ids:
        return batch
    doomed = json.dumps(ids)
    values = dialect_of(conn).json_values
    budget = limit
    for table, key in tables.items():
        change = "UPDATE {} SET visitor_id = NULL" if table in ANONYMISED else "DELETE FROM {}"
        deleted = conn.execute(
            change.format(f'"{table}"') + f' WHERE ({key}) IN (SELECT {key} FROM "{table}"'
            f"  WHERE {naming(table, values)} LIMIT ?)",
            (doomed, budget),
        ).rowcount
        batch.deleted[table] = deleted
        budget -= deleted
        if budget == 0:  # these profiles may have rows left: the next batch goes on
            batch.more = True
            return batch
    deleted = conn.execute(
        f"DELETE FROM visitors WHERE id IN (SELECT value FROM ({values}) AS j LIMIT ?)",
        (doomed, budget),
    ).rowcount
    batch.deleted["visitors"] = deleted
    batch.more = deleted < len(ids) or _exists(
        conn, f"SELECT 1 FROM visitors v WHERE {INACTIVE}", params
    )
    return batch


def purge_consent_log(
    conn: Connection,
    cutoffs: Cutoffs,
    *,
    limit: int,
    after: tuple[int, int] | None = None,
) -> Batch:
    """Delete up to ``limit`` consent log entries past retention, in time order from ``after``
    (the batch's ``cursor``): entries kept as a profile's latest answer are passed only once."""
    at, row_id = after or (-1, -1)
    rows = conn.execute(
        _spelled(
            conn,
            "DELETE FROM consent_log WHERE id IN (SELECT c.id FROM consent_log c"
            f" WHERE {CONSENT_DUE} AND (c.at, c.id) > (:after_at, :after_id)"
            " ORDER BY c.at, c.id LIMIT :limit) RETURNING at, id",
        ),
        {**cutoffs.params(), "after_at": at, "after_id": row_id, "limit": limit},
    ).fetchall()
    if not rows:
        return Batch({"consent_log": 0})
    cursor = max(rows)
    return Batch({"consent_log": len(rows)}, len(rows) == limit, cursor)


def purge_merges(conn: Connection, cutoffs: Cutoffs, *, limit: int) -> Batch:
    """Delete up to ``limit`` merge records as old as the consent log entries they link."""
    return _purge_records(conn, "merges", cutoffs.consent_before, limit)


def purge_erasures(conn: Connection, cutoffs: Cutoffs, *, limit: int) -> Batch:
    """Delete up to ``limit`` erasure records as old as the consent log entries they vouch for."""
    return _purge_records(conn, "erasures", cutoffs.consent_before, limit)


def purge_audit(conn: Connection, cutoffs: Cutoffs, *, limit: int) -> Batch:
    """Delete up to ``limit`` entries of the console's audit log past ``admin_audit_days``."""
    return _purge_records(conn, "admin_audit", cutoffs.audit_before, limit)


def _purge_records(conn: Connection, table: str, before: int | None, limit: int) -> Batch:
    deleted = conn.execute(
        f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE at < ? LIMIT ?)",
        (before, limit),
    ).rowcount
    more = deleted == limit and _exists(conn, f"SELECT 1 FROM {table} WHERE at < ?", (before,))
    return Batch({table: deleted}, more)


def purge_webhooks(conn: Connection, cutoffs: Cutoffs, *, limit: int) -> Batch:
    """Delete up to ``limit`` delivered webhooks past ``webhook_keep_days``."""
    from .outbox import prune_webhooks

    before = cutoffs.webhooks_before
    deleted = prune_webhooks(conn, delivered_before=before, limit=limit)
    more = deleted == limit and _exists(
        conn,
        "SELECT 1 FROM webhook_outbox WHERE state = 'delivered' AND delivered_at < ?",
        (before,),
    )
    return Batch({"webhook_outbox": deleted}, more)


def count_due(conn: Connection, cutoffs: Cutoffs) -> dict[str, int]:
    """Per table, how many rows the purge would delete now (a dry run changes nothing)."""
    params = cutoffs.params()
    profiles = cutoffs.profiles_before is not None
    inactive = f"SELECT v.id FROM visitors v WHERE {INACTIVE}"
    own: dict[str, str] = {
        "webhook_outbox": "state = 'delivered' AND delivered_at < :webhooks_before"
    }
    if cutoffs.events_before is not None:
        own["events"] = "id < :events_before_id"
    counts: dict[str, int] = {}
    tables = purged_tables(conn)
    for table in sorted({*tables, *own}):
        terms = [own[table]] if table in own else []
        if profiles and table in tables:
            terms.append(naming(table, inactive))
        counts[table] = _count(conn, table, terms, params)
    counts["visitors"] = _count(conn, "visitors v", [INACTIVE] if profiles else [], params)
    consent = cutoffs.consent_before is not None
    counts["consent_log"] = _count(conn, "consent_log c", [CONSENT_DUE] if consent else [], params)
    for table in ("merges", "erasures"):
        counts[table] = _count(conn, table, ["at < :consent_before"] if consent else [], params)
    audit = ["at < :audit_before"] if cutoffs.audit_before is not None else []
    counts["admin_audit"] = _count(conn, "admin_audit", audit, params)
    return dict(sorted(counts.items()))


def _count(conn: Connection, table: str, terms: list[str], params: dict[str, Any]) -> int:
    if not terms:
        return 0
    where = " OR ".join(f"({term})" for term in terms)
    sql = _spelled(conn, f"SELECT count(*) FROM {table} WHERE {where}")
    return int(conn.execute(sql, params).fetchone()[0])


def _exists(conn: Connection, sql: str, params: Any) -> bool:
    return conn.execute(_spelled(conn, sql) + " LIMIT 1", params).fetchone() is not None


def _spelled(conn: Connection, sql: str) -> str:
    return sql.replace("GREATEST(", dialect_of(conn).greatest + "(")


def claim_lease(
    conn: Connection, name: str, owner: str, *, now: float, until: float
) -> tuple[bool, float]:
    """Take the lease ``name`` for ``owner`` until ``until``, unless another owner holds it past
    ``now``. Returns whether ``owner`` holds it, and until when it is held."""
    conn.execute(
        "INSERT INTO leases (name, owner, until) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE"
        " SET owner = excluded.owner, until = excluded.until WHERE leases.until <= ?",
        (name, owner, until, now),
    )
    holder, held_until = conn.execute(
        "SELECT owner, until FROM leases WHERE name = ?", (name,)
    ).fetchone()
    return holder == owner, float(held_until)
