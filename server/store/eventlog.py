"""The event log's rows (migration m016): how they are written and how a visitor or a time
names them.

An event's id is the second it happened shifted left by :data:`EVENT_ID_BITS`, plus its place
among the events of that second: ids run in time order, ``at`` is a column computed from the
id, and a time range is a range of ids (the purge, the profiles' last activity) with no index
on the time. An event names its visitor by number (``visitors.num``) instead of by id: 1 to 4
bytes in the row and in the ``events_visitor`` index instead of 22 in each. Issue 19 measured
147 bytes per stored event before, under 100 after.

A second holds 2**EVENT_ID_BITS (about a million) events of one database; one more in the
same second would take the first id of the next second, and the insert fails on the primary
key if that id is already taken (the batch is refused, never stored under a wrong time).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .engine import Connection, PgConnection

EVENT_ID_BITS = 20

# The columns a caller gives per event, in this order.
COLUMNS = ("at", "type", "campaign", "variant", "path", "name", "value", "props", "source")
_B = EVENT_ID_BITS
# The last id given in a second, found on the primary key (the writer holds the write lock, so
# nobody takes the next one meanwhile); one before the second's first id when there is none.
_LAST = (
    f"SELECT coalesce(max(id), (CAST(?1 AS BIGINT) << {_B}) - 1) FROM events"
    f" WHERE id BETWEEN CAST(?1 AS BIGINT) << {_B} AND ((CAST(?1 AS BIGINT) + 1) << {_B}) - 1"
)
_INSERT = (
    "INSERT INTO events (id, visitor, type, campaign, variant, path, name, value, props, source)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def insert(
    conn: Connection, visitor_id: str, rows: Iterable[tuple[Any, ...]], *, number: int | None = None
) -> int:
    """Append events of ``visitor_id``, each a tuple of :data:`COLUMNS`; returns how many
    were stored (none for a visitor without a row). ``number``: the visitor's (``visitors.num``)
    as read in the same transaction, which spares looking it up.

    One lookup of the last id per second and one statement for the rows: a third less than an
    ``INSERT ... SELECT ... RETURNING`` of the first row and the others after it (issue 19)."""
    if isinstance(conn, PgConnection):
        return _pg_insert(conn, visitor_id, rows)
    if number is None:
        found = conn.execute("SELECT num FROM visitors WHERE id = ?", (visitor_id,)).fetchone()
        if found is None:
            return 0
        (number,) = found
    last: dict[int, int] = {}  # per second, the id given last
    values = []
    for at, *columns in rows:
        given = last.get(at)
        if given is None:
            (given,) = conn.execute(_LAST, (at,)).fetchone()
        last[at] = given + 1
        values.append((given + 1, number, *columns))
    conn.executemany(_INSERT, values)
    return len(values)


def _pg_insert(conn: PgConnection, visitor_id: str, rows: Iterable[tuple[Any, ...]]) -> int:
    pending = list(rows)
    stored = 0
    while pending:
        numbers = conn.execute(_PG_NUMBERS, (len(pending), visitor_id)).fetchall()
        if not numbers:
            return 0  # no such visitor
        values = [
            ((at << _B) | (number & _LOW), visitor, *columns)
            for (visitor, number), (at, *columns) in zip(numbers, pending, strict=True)
        ]
        sql = _PG_INSERT.format(", ".join([_PG_ROW] * len(values)))
        taken = {row[0] for row in conn.execute(sql, [v for row in values for v in row])}
        stored += len(taken)
        pending = [row for row, v in zip(pending, values, strict=True) if v[0] not in taken]
    return stored


def first_id(at: int) -> int:
    """The smallest event id of second ``at``: ``id < first_id(t)`` is ``at < t``."""
    return at << EVENT_ID_BITS


# On PostgreSQL several nodes write at once, and no lock says who takes the next id of a
# second: a sequence numbers the events, of which an id keeps the low EVENT_ID_BITS. Two events
# of one second get the same id only when a million others were numbered between them (events
# pushed long after the second they name); such an event draws the next number. Two round trips
# a batch, whatever its size: the visitor's number with the batch's numbers, then the rows.
_PG_NUMBERS = (
    "SELECT v.num, nextval('event_numbers') FROM visitors v, generate_series(1, ?) WHERE v.id = ?"
)
_PG_INSERT = (
    "INSERT INTO events (id, visitor, type, campaign, variant, path, name, value, props, source)"
    " VALUES {} ON CONFLICT (id) DO NOTHING RETURNING id"
)
_PG_ROW = "(" + ", ".join(["?"] * 10) + ")"
_LOW = (1 << _B) - 1


def of_visitor(alias: str = "") -> str:
    """The condition naming one visitor's events by their id (one ``?`` parameter)."""
    return f"{alias}visitor = (SELECT num FROM visitors WHERE id = ?)"
