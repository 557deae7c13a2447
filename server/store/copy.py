"""Moving a SQLite database to PostgreSQL (``touchpoint db copy``, issue 20): every row of
every table, in one transaction of the target, checked by counting both sides afterwards."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ConfigError
from . import catalog
from .engine import PgConnection

# Progress: the table, rows copied of it so far, its rows in all.
Progress = Callable[[str, int, int], None]
EVERY = 5_000  # rows between two progress reports


@dataclass(frozen=True)
class Copied:
    table: str
    source: int  # rows in the SQLite database
    target: int  # rows in the PostgreSQL database once the copy was committed

    @property
    def verified(self) -> bool:
        return self.source == self.target


def copy_database(
    source: sqlite3.Connection, target: PgConnection, *, progress: Progress | None = None
) -> list[Copied]:
    """Copy every table of ``source`` into ``target``, both migrated to the same version and
    ``target`` without rows (ConfigError otherwise). The source is read in one snapshot; the
    target's numbering (identity columns) continues after the copied rows. Returns the rows of
    each table on both sides, counted after the commit."""
    tables = catalog.tables(source)
    missing = sorted(set(tables) - set(catalog.tables(target)))
    if missing:
        raise ConfigError(f"the target database has no table {', '.join(missing)}")
    for table in tables:
        if target.execute(f'SELECT 1 FROM "{table}" LIMIT 1').fetchone():
            raise ConfigError(
                f"the target database holds rows already (table {table}): copy into an empty"
                " database, so that nothing is mixed or counted twice"
            )
    source.execute("BEGIN")  # one snapshot of everything
    try:
        counts = {t: _count(source, t) for t in tables}
        target.execute("BEGIN")
        try:
            for table in tables:
                _copy_table(source, target, table, counts[table], progress)
            for table, column in catalog.identity_columns(target):
                target.execute(
                    f"SELECT setval(pg_get_serial_sequence(?, ?),"
                    f' coalesce((SELECT max("{column}") FROM "{table}"), 0) + 1, false)',
                    (table, column),
                )
        except BaseException:
            target.execute("ROLLBACK")
            raise
        target.execute("COMMIT")
    finally:
        source.execute("ROLLBACK")
    # The planner's statistics of the new rows, now rather than at autovacuum's next round:
    # until then it plans the first requests' queries for empty tables.
    target.execute("ANALYZE")
    return [Copied(t, counts[t], _count(target, t)) for t in tables]


def _copy_table(
    source: sqlite3.Connection,
    target: PgConnection,
    table: str,
    total: int,
    progress: Progress | None,
) -> None:
    # Computed columns (the event's time, the hour of the last page view) are computed again.
    columns = catalog.columns(target, table, computed=False)
    missing = set(columns) - set(catalog.columns(source, table, computed=False))
    if missing:
        raise ConfigError(f"table {table}: the source has no column {', '.join(sorted(missing))}")
    listed = ", ".join(f'"{c}"' for c in columns)
    rows = source.execute(f'SELECT {listed} FROM "{table}"')
    done = 0
    if progress:
        progress(table, 0, total)
    with target.raw.cursor().copy(f'COPY "{table}" ({listed}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)
            done += 1
            if progress and done % EVERY == 0 and done < total:
                progress(table, done, total)
    if progress:
        progress(table, done, total)


def _count(conn: sqlite3.Connection | PgConnection, table: str) -> int:
    return int(conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])
