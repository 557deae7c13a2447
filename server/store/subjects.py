"""Data subject requests (GDPR Art. 15, 17, 20) and proof of consent (Art. 7(1)).

A person is every visitor id that names them: the one asked about (by id, or through a hashed
e-mail address or customer id) and the ids merged into or out of it (the ``merges`` table,
followed both ways). Their rows are found in every table with a ``visitor_id`` column, or a
``visitor`` column holding the visitor's number (``visitors.num``: the event log, where the
id would be most of a row), read from the schema at the time of the request, so that a table
added later is exported and erased without changes here (:func:`naming` says how a table names
a visitor); ``visitors`` (``id``) and ``merges`` (``from_id``, ``into_id``) are the two tables
that name a visitor otherwise.

Erasure deletes those rows, except the consent log's: they stay as proof of consent with the
visitor ids replaced by one keyed pseudonym (erased_id of the person's primary id;
docs/privacy.md#erasure), and those of the tables in :data:`ANONYMISED`, kept without the
visitor id. One row in ``erasures``, under the same pseudonym, records when and
how, and how many rows went from which table.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from . import catalog
from .engine import Connection, dialect_of
from .outbox import erase_webhooks
from .records import CATEGORIES
from .wal import overwriting, scrub_after_commit

VIAS = ("cli", "api", "page")  # how an erasure was asked for
# Tables whose rows outlive the person, naming nobody: erasure sets their visitor_id to NULL.
# A coupon code handed out stays taken and can still be used at the checkout (deleted, it would
# be unknown there, or handed to somebody else); a redemption stays so that the code cannot be
# redeemed twice and the reports keep their totals.
ANONYMISED = ("coupon_codes", "coupon_redemptions")
# Columns holding JSON, decoded in an export.
JSON_COLUMNS = {
    ("visitors", "consent_granted"),
    ("visitors", "data"),
    ("events", "props"),
    ("orders", "items"),
    ("consent_log", "granted"),
    ("consent_log", "denied"),
    ("webhook_outbox", "body"),
    ("erasures", "rows"),
}
# Consent log methods that copy an answer given before (identify, reset) rather than record one.
COPIES = ("identify", "reset")


ERASED = "erased:"  # the prefix of an erased visitor id's pseudonym; never in a visitor id


def erased_id(key: bytes, visitor_id: str) -> str:
    """What an erased visitor id becomes where a row is kept as proof (the consent log, the
    erasure record): a keyed hash, so that nobody can tie it to the person from the database,
    while the person presenting their visitor id (their cookie, an export) can be shown it."""
    return ERASED + hmac.digest(key, f"erased:{visitor_id}".encode(), "sha256").hex()


@dataclass(frozen=True)
class Subject:
    """The visitor ids of one person."""

    visitor_ids: tuple[str, ...]  # sorted
    primary: str  # the id with a profile, else the one asked about: names the erasure record


@dataclass(frozen=True)
class Erasure:
    id: int
    at: int
    deleted: dict[str, int]  # rows per table
    pseudonymised: dict[str, int]  # consent log rows kept under the pseudonym
    anonymised: dict[str, int]  # rows kept without the visitor id (ANONYMISED)


def visitor_tables(conn: Connection) -> list[str]:
    """Every table with a ``visitor_id`` or a ``visitor`` (number) column, from the schema as
    it is now."""
    return [
        name
        for name in catalog.tables(conn)
        if name != "visitors" and {"visitor_id", "visitor"} & set(catalog.columns(conn, name))
    ]


BY_NUMBER = frozenset({"events"})  # the tables whose ``visitor`` column holds visitors.num


def naming(table: str, ids: str) -> str:
    """The condition on rows of ``table`` that name one of the visitors ``ids`` (an SQL list
    of visitor ids, or a query giving them)."""
    if table in BY_NUMBER:
        return f"visitor IN (SELECT num FROM visitors WHERE id IN ({ids}))"
    return f"visitor_id IN ({ids})"


def visitor_exists(conn: Connection, visitor_id: str) -> bool:
    return conn.execute("SELECT 1 FROM visitors WHERE id = ?", (visitor_id,)).fetchone() is not None


def _marks(values: Iterable[Any]) -> str:
    return ", ".join("?" for _ in values)


def merged_ids(conn: Connection, visitor_ids: Iterable[str]) -> set[str]:
    """``visitor_ids`` and every id merged into or out of them, transitively."""
    found = set(visitor_ids)
    frontier = set(found)
    while frontier:
        ids = sorted(frontier)
        rows = conn.execute(
            f"SELECT from_id, into_id FROM merges WHERE from_id IN ({_marks(ids)})"
            f" OR into_id IN ({_marks(ids)})",
            (*ids, *ids),
        )
        frontier = {visitor for row in rows for visitor in row} - found
        found |= frontier
    return found


def _named(conn: Connection, visitor_id: str, tables: list[str]) -> bool:
    if (
        visitor_exists(conn, visitor_id)
        or conn.execute(
            "SELECT 1 FROM merges WHERE from_id = ? OR into_id = ? LIMIT 1",
            (visitor_id, visitor_id),
        ).fetchone()
    ):
        return True
    return any(
        conn.execute(
            f'SELECT 1 FROM "{table}" WHERE {naming(table, "?")} LIMIT 1', (visitor_id,)
        ).fetchone()
        for table in tables
    )


def find_subject(conn: Connection, ref: tuple[str, str]) -> Subject | None:
    """The person ``ref`` names — ``("id", visitor id)`` or ``(kind, hash)`` of an identifier —
    whatever their consent; None when nothing is stored about them."""
    kind, value = ref
    if kind == "id":
        start = {value}
    else:
        start = {
            visitor
            for (visitor,) in conn.execute(
                "SELECT visitor_id FROM identities WHERE kind = ? AND hash = ?", (kind, value)
            )
        }
    tables = visitor_tables(conn)
    ids = sorted(v for v in merged_ids(conn, start) if _named(conn, v, tables))
    if not ids:
        return None
    profiles = [v for v in ids if visitor_exists(conn, v)]
    primary = profiles[0] if profiles else (value if kind == "id" else ids[0])
    return Subject(tuple(ids), primary)


def _rows(conn: Connection, table: str, where: str, params: tuple[Any, ...]) -> list[Any]:
    columns = catalog.columns(conn, table)
    order = " ORDER BY id" if "id" in columns and table != "visitors" else ""
    if table in BY_NUMBER:  # the visitor's id rather than their number
        listed = ", ".join(
            "(SELECT id FROM visitors WHERE num = visitor) AS visitor_id" if c == "visitor" else c
            for c in columns
        )
    else:
        listed = "*"
    cursor = conn.execute(f'SELECT {listed} FROM "{table}" WHERE {where}{order}', params)
    names = [d[0] for d in cursor.description]
    rows = []
    for row in cursor:
        item = dict(zip(names, row, strict=True))
        for name in names:
            if (table, name) in JSON_COLUMNS and isinstance(item[name], str):
                item[name] = orjson.loads(item[name])
        rows.append(item)
    return rows


def export_subject(conn: Connection, subject: Subject) -> dict[str, Any]:
    """Every row naming the person, table by table, JSON columns decoded. Every table with a
    ``visitor_id`` column is listed, empty or not, so the export shows what was looked at."""
    ids = subject.visitor_ids
    marks = _marks(ids)
    tables: dict[str, list[Any]] = {
        "visitors": _rows(conn, "visitors", f"id IN ({marks})", ids),
        "merges": _rows(conn, "merges", f"from_id IN ({marks}) OR into_id IN ({marks})", ids * 2),
    }
    for table in visitor_tables(conn):
        tables[table] = _rows(conn, table, naming(table, marks), ids)
    return {"visitor_ids": list(ids), "tables": dict(sorted(tables.items()))}


def erase_subject(
    conn: Connection,
    subject: Subject,
    *,
    key: bytes,
    at: int,
    via: str,
    requested_by: str | None = None,
) -> Erasure:
    """Delete every row naming the person, keep their consent log rows under the pseudonym
    of their primary id and the rows of :data:`ANONYMISED` tables without their id, and record
    the erasure under that pseudonym. Run it in one
    transaction (the writer's unit, or ``BEGIN IMMEDIATE``): afterwards no row names any of
    the person's ids."""
    if via not in VIAS:
        raise ValueError(via)
    ids = subject.visitor_ids
    marks = _marks(ids)
    # On PostgreSQL, a write about these visitors on another node waits for the erasure (and
    # then finds no row), rather than add rows that the erasure's deletes no longer see.
    if lock := dialect_of(conn).for_update:
        conn.execute(f"SELECT 1 FROM visitors WHERE id IN ({marks}) ORDER BY id{lock}", ids)
    pseudonym = erased_id(key, subject.primary)
    deleted: dict[str, int] = {}
    pseudonymised: dict[str, int] = {}
    anonymised: dict[str, int] = {}
    # Deleted rows are overwritten with zeros rather than left in the file's free pages, and
    # the -wal's copies of them go at the checkpoint after the commit (store/wal.py).
    scrub_after_commit(conn)
    with overwriting(conn):
        deleted["webhook_outbox"] = sum(erase_webhooks(conn, visitor) for visitor in ids)
        for table in visitor_tables(conn):
            if table == "consent_log":
                pseudonymised[table] = conn.execute(
                    f"UPDATE consent_log SET visitor_id = ? WHERE visitor_id IN ({marks})",
                    (pseudonym, *ids),
                ).rowcount
            elif table in ANONYMISED:
                sql = f'UPDATE "{table}" SET visitor_id = NULL WHERE visitor_id IN ({marks})'
                anonymised[table] = conn.execute(sql, ids).rowcount
            elif table != "webhook_outbox":
                sql = f'DELETE FROM "{table}" WHERE {naming(table, marks)}'
                deleted[table] = conn.execute(sql, ids).rowcount
        deleted["merges"] = conn.execute(
            f"DELETE FROM merges WHERE from_id IN ({marks}) OR into_id IN ({marks})", ids * 2
        ).rowcount
        sql = f"DELETE FROM visitors WHERE id IN ({marks})"
        deleted["visitors"] = conn.execute(sql, ids).rowcount
    counts = {
        "deleted": {t: n for t, n in sorted(deleted.items()) if n},
        "pseudonymised": {t: n for t, n in pseudonymised.items() if n},
        "anonymised": {t: n for t, n in anonymised.items() if n},
    }
    (erasure_id,) = conn.execute(
        "INSERT INTO erasures (at, via, requested_by, subject, rows) VALUES (?, ?, ?, ?, ?)"
        " RETURNING id",
        (at, via, requested_by, pseudonym, orjson.dumps(counts).decode()),
    ).fetchone()
    return Erasure(erasure_id, at, counts["deleted"], counts["pseudonymised"], counts["anonymised"])


def erase(
    conn: Connection,
    ref: tuple[str, str],
    *,
    key: bytes,
    at: int,
    via: str,
    requested_by: str | None = None,
) -> Erasure | None:
    """Erase the person ``ref`` names (:func:`erase_subject`); None when nothing is stored
    about them, say because they were erased already."""
    subject = find_subject(conn, ref)
    if subject is None:
        return None
    return erase_subject(conn, subject, key=key, at=at, via=via, requested_by=requested_by)


def consent_history(conn: Connection, ref: tuple[str, str], *, key: bytes) -> list[dict[str, Any]]:
    """The consent log of the person ``ref`` names, oldest first: under their visitor ids and,
    after an erasure, under the pseudonym of their primary id (which a visitor id ``ref``
    finds; an e-mail address or customer id no longer can, its identifiers being erased)."""
    kind, value = ref
    subject = find_subject(conn, ref)
    ids = set(subject.visitor_ids) if subject else set()
    if kind == "id":
        ids |= merged_ids(conn, {value})
    names = sorted(ids | {erased_id(key, visitor) for visitor in ids})
    if not names:
        return []
    return _rows(conn, "consent_log", f"visitor_id IN ({_marks(names)})", tuple(names))


def erasures_of(conn: Connection, visitor_id: str, *, key: bytes) -> list[dict[str, Any]]:
    """The erasure records made for ``visitor_id`` as the person's primary id."""
    return _rows(conn, "erasures", "subject = ?", (erased_id(key, visitor_id),))


def consent_proof(conn: Connection, ref: tuple[str, str], *, key: bytes) -> dict[str, Any]:
    """What proves a person's consent: their consent log (:func:`consent_history`) and, for a
    visitor id, when they were erased and how it was asked for."""
    erasures = erasures_of(conn, ref[1], key=key) if ref[0] == "id" else []
    return {
        "entries": consent_history(conn, ref, key=key),
        "erasures": [{"at": row["at"], "via": row["via"]} for row in erasures],
    }


def consent_summary(
    conn: Connection, *, since: int | None = None, until: int | None = None
) -> list[dict[str, Any]]:
    """Answers per consent revision: accepted (every category), rejected (none), customised
    (some), each per method, and how often each category was granted. ``since`` and ``until``
    (Unix seconds, until exclusive) narrow the time. Copies of an answer (``identify``,
    ``reset``) are not answers and are left out."""
    where = f"method NOT IN ({_marks(COPIES)}) AND at >= ? AND at < ?"
    params = (*COPIES, since or 0, until if until is not None else 2**62)
    revisions: dict[int, dict[str, Any]] = {}
    for revision, method, accepted, rejected, total in conn.execute(
        "SELECT revision, method,"
        " sum(CASE WHEN denied = '[]' AND granted != '[]' THEN 1 ELSE 0 END),"
        " sum(CASE WHEN granted = '[]' THEN 1 ELSE 0 END),"
        f" count(*) FROM consent_log WHERE {where} GROUP BY revision, method"
        " ORDER BY revision, method",
        params,
    ):
        entry = revisions.setdefault(revision, _counts(revision))
        counts = {
            "accepted": accepted,
            "rejected": rejected,
            "customised": total - accepted - rejected,
        }
        entry["methods"][method] = counts
        for name, n in counts.items():
            entry[name] += n
    for revision, category, n in conn.execute(
        f"SELECT revision, j.value, count(*) FROM consent_log,"
        f" {dialect_of(conn).json_table.format('granted')} WHERE {where}"
        " GROUP BY revision, j.value",
        params,
    ):
        revisions[revision]["granted"][category] = n
    return [revisions[r] for r in sorted(revisions)]


def _counts(revision: int) -> dict[str, Any]:
    return {
        "revision": revision,
        "accepted": 0,
        "rejected": 0,
        "customised": 0,
        "granted": dict.fromkeys(CATEGORIES, 0),
        "methods": {},
    }
