"""The webhook outbox of webhooks/delivery.py. Rows are queued inside the caller's unit of work;
delivery claims them with a lease, so that workers sharing the database never send one row at
once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .engine import Connection, dialect_of


@dataclass(frozen=True)
class OutboxRow:
    id: int
    endpoint: str
    event: str
    key: str  # the idempotency key; the webhook-id of every attempt is derived from it
    body: str
    attempts: int  # including the one this claim is for


def queue_webhook(
    conn: Connection,
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


def erase_webhooks(conn: Connection, visitor_id: str) -> int:
    """Delete every outbox row about ``visitor_id``, sent or not (erasure of their data)."""
    return conn.execute("DELETE FROM webhook_outbox WHERE visitor_id = ?", (visitor_id,)).rowcount


def _placeholders(values: Iterable[Any]) -> str:
    return ", ".join("?" for _ in values)


def claim_webhooks(
    conn: Connection,
    endpoints: Iterable[str],
    *,
    now: float,
    owner: str,
    lease_until: float,
    limit: int,
) -> list[OutboxRow]:
    """Lease up to ``limit`` due rows of ``endpoints`` to ``owner``, counting an attempt each.

    One statement, inside the writer's ``BEGIN IMMEDIATE``: another process's claim runs
    before or after it, never between the choice of rows and their lease. On PostgreSQL,
    another node's claim skips the rows this one has locked (``SKIP LOCKED``).
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
        f"   ORDER BY next_attempt_at LIMIT ?{dialect_of(conn).skip_locked})"
        " RETURNING id, endpoint, event, key, body, attempts",
        (owner, lease_until, lease_until, now, *names, limit),
    ).fetchall()
    return sorted((OutboxRow(*row) for row in rows), key=lambda row: row.id)


def webhook_delivered(conn: Connection, row_id: int, *, now: int, status: int) -> None:
    # Whoever holds the lease now: a 2xx answer is the truth even if the lease ran out meanwhile.
    conn.execute(
        "UPDATE webhook_outbox SET state = 'delivered', delivered_at = ?, last_status = ?,"
        " last_error = NULL, lease_owner = NULL, lease_until = NULL"
        " WHERE id = ? AND state = 'pending'",
        (now, status, row_id),
    )


def webhook_attempt_failed(
    conn: Connection,
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
        " lease_until = NULL,"
        " state = CASE WHEN CAST(? AS DOUBLE PRECISION) IS NULL THEN 'failed' ELSE state END,"
        " next_attempt_at = coalesce(?, next_attempt_at)"
        " WHERE id = ? AND lease_owner = ? AND state = 'pending'",
        (status, error, retry_at, retry_at, row_id, owner),
    )


def release_webhooks(conn: Connection, owner: str, *, now: float) -> int:
    """Hand back the leases of ``owner``, whose attempts were interrupted: the rows are due
    again at once and the interrupted attempts do not count."""
    cursor = conn.execute(
        "UPDATE webhook_outbox SET lease_owner = NULL, lease_until = NULL, next_attempt_at = ?,"
        " attempts = greatest(attempts - 1, 0) WHERE lease_owner = ? AND state = 'pending'",
        (now, owner),
    )
    return cursor.rowcount


def prune_webhooks(conn: Connection, *, delivered_before: int, limit: int | None = None) -> int:
    """Delete rows delivered before ``delivered_before`` (at most ``limit``, oldest first);
    failed rows stay until retried."""
    due = "state = 'delivered' AND delivered_at < ?"
    if limit is None:
        return conn.execute(f"DELETE FROM webhook_outbox WHERE {due}", (delivered_before,)).rowcount
    cursor = conn.execute(
        f"DELETE FROM webhook_outbox WHERE id IN (SELECT id FROM webhook_outbox WHERE {due}"
        " ORDER BY next_attempt_at LIMIT ?)",
        (delivered_before, limit),
    )
    return cursor.rowcount


def retry_webhooks(
    conn: Connection, *, now: float, ids: Iterable[int] = (), all_failed: bool = False
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


def webhook_due(conn: Connection, endpoints: Iterable[str]) -> float | None:
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
    conn: Connection, *, states: Iterable[str] = ("pending", "failed"), limit: int = 100
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
