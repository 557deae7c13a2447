"""Which database engine a ``database`` setting names, and a PostgreSQL connection that the
store's SQL runs on unchanged where the two dialects agree.

SQLite (a file path, or ``sqlite:///path``) is the embedded default. ``postgresql://...`` (or
``postgres://``) runs the store on PostgreSQL through psycopg 3 (issue 20). The store writes its
SQL once, with ``?`` placeholders as sqlite3 takes them; :class:`PgConnection` turns them into
psycopg's ``%s`` (and ``?1``-style numbered ones into named ones) and otherwise passes the
statement through. Where the dialects differ, the store asks :data:`Dialect` for the fragment.
"""

from __future__ import annotations

import functools
import re
import sqlite3
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from ..errors import ConfigError

if TYPE_CHECKING:
    import psycopg

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
# A connection of either engine: what the store's functions take.
Connection: TypeAlias = "sqlite3.Connection | PgConnection"


@dataclass(frozen=True)
class Dialect:
    """The SQL fragments that differ between the engines."""

    name: str
    # The larger of several values (SQLite's scalar max(), PostgreSQL's greatest()).
    greatest: str
    # A write transaction that holds the write lock from its start (SQLite) or that takes row
    # locks as it goes (PostgreSQL: READ COMMITTED, with SELECT ... FOR UPDATE where it reads
    # what it then writes).
    begin_write: str
    # Row locks for a read-then-write (none in SQLite: the write lock covers the database).
    for_update: str
    # Rows locked for a claim that another node's claim passes over (a queue, a stock).
    skip_locked: str
    # A UTC day (YYYY-MM-DD) of a column holding seconds since the epoch.
    utc_day: str
    # The values of a JSON array (one text parameter), as a subquery's one column ``value``.
    json_values: str
    # A JSON array column's values as a table ``j`` of one column ``value`` (FROM t, this).
    json_table: str
    # A table without a separate rowid B-tree (SQLite); PostgreSQL has no such choice.
    without_rowid: str


SQLITE = Dialect(
    name="sqlite",
    greatest="max",
    begin_write="BEGIN IMMEDIATE",
    for_update="",
    skip_locked="",
    utc_day="date({}, 'unixepoch')",
    json_values="SELECT value FROM json_each(?)",
    json_table="json_each({}) AS j",
    without_rowid=" WITHOUT ROWID",
)
POSTGRESQL = Dialect(
    name="postgresql",
    greatest="greatest",
    begin_write="BEGIN",
    for_update=" FOR UPDATE",
    skip_locked=" FOR UPDATE SKIP LOCKED",
    utc_day="to_char(to_timestamp({}) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    json_values="SELECT json_array_elements_text(CAST(? AS json)) AS value",
    json_table="json_array_elements_text(CAST({} AS json)) AS j(value)",
    without_rowid="",
)


@dataclass(frozen=True)
class Location:
    """Where a ``database`` setting points: a SQLite file or a PostgreSQL server."""

    dialect: Dialect
    path: Path | None = None  # SQLite
    url: str | None = None  # PostgreSQL, as psycopg takes it

    @property
    def is_postgresql(self) -> bool:
        return self.dialect is POSTGRESQL

    def __str__(self) -> str:
        return str(self.path) if self.path is not None else redacted(self.url or "")


def locate(database: str | Path) -> Location:
    """The engine and address of a ``database`` setting: a path or ``sqlite:///path`` for
    SQLite (four slashes for an absolute path), ``postgresql://...`` for PostgreSQL."""
    text = str(database)
    if text.startswith(POSTGRES_SCHEMES):
        return Location(POSTGRESQL, url=text)
    if text.startswith("sqlite:///"):
        # As SQLAlchemy reads them: sqlite:///relative.db, sqlite:////absolute.db
        return Location(SQLITE, path=Path(text.removeprefix("sqlite:///")))
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise ConfigError(
            f"database {redacted(text)}: unknown engine {scheme!r}; give a file path for"
            " SQLite or a postgresql:// URL"
        )
    return Location(SQLITE, path=Path(text))


def redacted(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url)


_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?(\d*)|(?<![:\w]):([A-Za-z_]\w*)|%")


@functools.lru_cache(maxsize=2048)
def translate(sql: str) -> tuple[str, tuple[int, ...] | None]:
    """``sql`` with sqlite3's placeholders as psycopg's: ``?`` becomes ``%s``, ``:name``
    ``%(name)s`` and ``?N`` ``%(pN)s`` (the second item then lists the numbers, to turn the
    parameters into a dict); a literal ``%`` is doubled. Quoted strings and names are left
    alone."""
    numbered: set[int] = set()

    def swap(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "%":
            return "%%"
        if match.group(2):
            return f"%({match.group(2)})s"
        if token[0] != "?":
            return token.replace("%", "%%")
        if match.group(1):
            numbered.add(int(match.group(1)))
            return f"%(p{match.group(1)})s"
        return "%s"

    out = _TOKEN.sub(swap, sql)
    return out, (tuple(sorted(numbered)) if numbered else None)


Params: TypeAlias = "Sequence[Any] | Mapping[str, Any]"


class Cursor(Protocol):
    """What the store reads of a cursor, on either engine."""

    @property
    def rowcount(self) -> int: ...
    @property
    def description(self) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


def _params(numbers: tuple[int, ...] | None, params: Params) -> Any:
    if isinstance(params, Mapping):
        return params
    if numbers is None:
        return tuple(params)
    return {f"p{n}": params[n - 1] for n in numbers}


class PgConnection:
    """A psycopg connection with the part of sqlite3's connection API that the store uses:
    ``execute`` and ``executemany`` with ``?`` placeholders, explicit ``BEGIN``/``COMMIT``
    (autocommit otherwise, as sqlite3 with ``isolation_level=None``), ``in_transaction``."""

    dialect = POSTGRESQL

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Params = ()) -> Cursor:
        query, numbers = translate(sql)
        # Parameters always, even none: psycopg reads %% as % only in a statement it fills in.
        return self.raw.execute(query, _params(numbers, params))

    def executemany(self, sql: str, seq: Iterable[Params]) -> Cursor:
        query, numbers = translate(sql)
        cursor = self.raw.cursor()
        cursor.executemany(query, [_params(numbers, p) for p in seq])
        return cursor

    @property
    def in_transaction(self) -> bool:
        import psycopg.pq

        return self.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def close(self) -> None:
        self.raw.close()


def pg_connect(url: str) -> PgConnection:
    """A PostgreSQL connection for the store (autocommit; the store begins its transactions)."""
    try:
        import psycopg
    except ImportError as error:  # pragma: no cover - the extra is installed in tests
        raise ConfigError(
            "the database is a postgresql:// URL but psycopg is not installed:"
            " pip install 'touchpoint[postgresql]'"
        ) from error
    try:
        raw = psycopg.connect(url, autocommit=True)
    except psycopg.OperationalError as error:
        raise ConfigError(f"cannot connect to {redacted(url)}: {error}") from error
    # sum() of a BIGINT column is a NUMERIC, which psycopg reads as a Decimal (that JSON cannot
    # take); SQLite answers with an int or a float, and so does this connection.
    raw.adapters.register_loader("numeric", _number_loader())
    return PgConnection(raw)


def _number(text: str) -> int | float:
    return int(text) if text.lstrip("-").isdigit() else float(text)


@functools.cache
def _number_loader() -> type[psycopg.adapt.Loader]:
    from psycopg.adapt import Loader

    class NumberLoader(Loader):
        """NUMERIC (text format) as int or float: what sqlite3 gives for the same query."""

        def load(self, data: Any) -> int | float:
            return _number(bytes(data).decode())

    return NumberLoader


# PostgreSQL's answers meaning the database cannot be written at all (SQLSTATE classes and
# codes): a lost or refused connection, insufficient resources such as a full disk, an operator
# shutting the server down, an I/O error, a read-only server (a standby).
_STORAGE_STATES = ("08", "53", "57P", "58", "25006")


def pg_storage_failure(exc: BaseException) -> str | None:
    """What a psycopg error says is wrong with the storage, or None (not a psycopg error, or
    one about the data)."""
    psycopg = sys.modules.get("psycopg")
    if psycopg is None or not isinstance(exc, psycopg.Error):
        return None
    state = exc.sqlstate or ""
    lost = not state and isinstance(exc, psycopg.OperationalError)
    if lost or state.startswith(_STORAGE_STATES):
        return str(exc).strip() or type(exc).__name__
    return None


def one_at_a_time(conn: Connection, key: str) -> None:
    """Hold ``key`` to the end of the transaction: another transaction holding it waits.
    PostgreSQL's advisory lock, for work that no row lock covers (a claim for a visitor who
    may have no row yet); in SQLite the write lock serialises every writer anyway."""
    if isinstance(conn, PgConnection):
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (key,))


def database_errors() -> tuple[type[Exception], ...]:
    """The errors of either engine's driver (psycopg's once it is in use)."""
    psycopg = sys.modules.get("psycopg")
    return (sqlite3.Error, psycopg.Error) if psycopg is not None else (sqlite3.Error,)


async def open_pool(url: str, *, size: int) -> Any:
    """An open psycopg_pool.AsyncConnectionPool of up to ``size`` read-only connections to
    ``url``, for reads on the event loop; a connection that broke is replaced by the pool."""
    from psycopg_pool import AsyncConnectionPool

    async def configure(conn: Any) -> None:
        await conn.set_autocommit(True)
        await conn.execute("SET default_transaction_read_only = on")

    pool = AsyncConnectionPool(
        url, min_size=1, max_size=size, open=False, configure=configure, check=None
    )
    await pool.open(wait=True, timeout=10)
    return pool


def dialect_of(conn: Connection) -> Dialect:
    """The dialect a connection speaks."""
    return POSTGRESQL if isinstance(conn, PgConnection) else SQLITE
