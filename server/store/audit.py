"""The console's audit log (``admin_audit``): who looked up, exported or erased which person,
and when (docs/privacy.md#the-consoles-audit-log). A reference is stored as the store finds
people (store/subjects.py): ``("id", visitor id)`` as it is, an e-mail address or customer id
as its keyed hash. Nothing else about the person is written here."""

from __future__ import annotations

from dataclasses import dataclass

from .engine import Connection

ACTIONS = ("lookup", "export", "erase", "simulate")


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: int
    user: str
    action: str  # one of ACTIONS
    ref_kind: str  # id, email or customer
    ref: str  # a visitor id, or the identifier's keyed hash


def audit(conn: Connection, *, at: int, user: str, action: str, ref: tuple[str, str]) -> int:
    """Record one console action on the person ``ref`` names; the entry's id."""
    if action not in ACTIONS:
        raise ValueError(action)
    (entry,) = conn.execute(
        'INSERT INTO admin_audit (at, "user", action, ref_kind, ref) VALUES (?, ?, ?, ?, ?)'
        " RETURNING id",
        (at, user, action, *ref),
    ).fetchone()
    return int(entry)


def audit_entries(
    conn: Connection,
    *,
    limit: int = 200,
    before: int | None = None,
    ref: tuple[str, str] | None = None,
) -> list[AuditEntry]:
    """The newest ``limit`` entries, newest first; ``before``: only entries with a lower id
    (the next page); ``ref``: only those about this reference."""
    where = "id < ?"
    params: list[int | str] = [before if before is not None else 2**62]
    if ref is not None:
        where += " AND ref_kind = ? AND ref = ?"
        params += ref
    rows = conn.execute(
        'SELECT id, at, "user", action, ref_kind, ref FROM admin_audit'
        f" WHERE {where} ORDER BY id DESC LIMIT ?",
        (*params, limit),
    )
    return [AuditEntry(*row) for row in rows]
