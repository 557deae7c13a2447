"""What the schema holds, read from the engine's own catalog: tables, columns, primary keys."""

from __future__ import annotations

from .engine import Connection, PgConnection


def tables(conn: Connection) -> list[str]:
    """Touchpoint's tables, by name."""
    if isinstance(conn, PgConnection):
        sql = (
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
            " AND table_name != 'touchpoint_migrations' ORDER BY table_name"
        )
    else:
        sql = (
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " AND name != '_sqlite_migrations' ORDER BY name"
        )
    return [name for (name,) in conn.execute(sql)]


def columns(conn: Connection, table: str, *, computed: bool = True) -> list[str]:
    """The columns of ``table`` in their order; ``computed=False``: those a row is written
    with, computed ones left out."""
    if isinstance(conn, PgConnection):
        written = "" if computed else " AND is_generated = 'NEVER'"
        sql = (
            "SELECT column_name FROM information_schema.columns"
            f" WHERE table_schema = current_schema() AND table_name = ?{written}"
            " ORDER BY ordinal_position"
        )
    else:
        pragma = "pragma_table_xinfo" if computed else "pragma_table_info"
        sql = f"SELECT name FROM {pragma}(?) ORDER BY cid"
    return [name for (name,) in conn.execute(sql, (table,))]


def primary_key(conn: Connection, table: str) -> list[str]:
    """The primary key columns of ``table``, in the key's order (none: SQLite's rowid)."""
    if isinstance(conn, PgConnection):
        sql = (
            "SELECT k.column_name FROM information_schema.table_constraints t"
            " JOIN information_schema.key_column_usage k"
            "  ON k.constraint_schema = t.constraint_schema"
            "  AND k.constraint_name = t.constraint_name"
            " WHERE t.table_schema = current_schema() AND t.table_name = ?"
            " AND t.constraint_type = 'PRIMARY KEY' ORDER BY k.ordinal_position"
        )
    else:
        sql = "SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk"
    return [name for (name,) in conn.execute(sql, (table,))]


def index_leaders(conn: Connection, table: str) -> set[str]:
    """The first column of each index of ``table`` (its primary key's included): the columns
    a lookup can find rows of ``table`` by."""
    if isinstance(conn, PgConnection):
        sql = (
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
            " ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
            " WHERE i.indrelid = CAST(? AS regclass)"
        )
        return {name for (name,) in conn.execute(sql, (table,))}
    leaders = set(primary_key(conn, table)[:1])
    for (index,) in conn.execute("SELECT name FROM pragma_index_list(?)", (table,)).fetchall():
        first = conn.execute(
            "SELECT name FROM pragma_index_info(?) WHERE seqno = 0", (index,)
        ).fetchone()
        if first:
            leaders.add(first[0])
    return leaders


def identity_columns(conn: PgConnection) -> list[tuple[str, str]]:
    """(table, column) of every column PostgreSQL numbers itself (an identity)."""
    rows = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND is_identity = 'YES'"
        " ORDER BY table_name, column_name"
    )
    return [(table, column) for table, column in rows]
