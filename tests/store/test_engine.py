"""Which engine a ``database`` setting names, and sqlite3's placeholders on psycopg."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from touchpoint.errors import ConfigError
from touchpoint.store import engine


def test_a_path_or_sqlite_url_is_sqlite_and_a_postgresql_url_is_postgresql() -> None:
    assert engine.locate("data/t.db") == engine.Location(engine.SQLITE, path=Path("data/t.db"))
    assert engine.locate("sqlite:////srv/t.db").path == Path("/srv/t.db")
    assert engine.locate("sqlite:///data/t.db").path == Path("data/t.db")
    for url in ("postgresql://u:pw@db/tp", "postgres://db/tp"):
        assert engine.locate(url).is_postgresql
    with pytest.raises(ConfigError, match="u:\\*\\*\\*@db/tp: unknown engine 'mysql'"):
        engine.locate("mysql://u:secret@db/tp")


def test_a_url_is_shown_without_its_password() -> None:
    assert str(engine.locate("postgresql://tp:s3cret@db:5432/tp")) == (
        "postgresql://tp:***@db:5432/tp"
    )


def test_placeholders_become_psycopgs_and_quoted_text_is_left_alone() -> None:
    sql = "SELECT '?%', \"a?\" FROM t WHERE x LIKE 'erased:%' AND y = ? AND z % 2 = ?"
    assert engine.translate(sql) == (
        "SELECT '?%%', \"a?\" FROM t WHERE x LIKE 'erased:%%' AND y = %s AND z %% 2 = %s",
        None,
    )
    assert engine.translate("SELECT ?2, ?1, ?2") == ("SELECT %(p2)s, %(p1)s, %(p2)s", (1, 2))


@given(st.lists(st.text(alphabet="ab?%' ", max_size=6), max_size=5))
def test_a_quoted_literal_comes_back_as_psycopg_prints_it(parts: list[str]) -> None:
    # psycopg turns %% back into %: what a literal says reaches the server unchanged.
    literals = ["'" + p.replace("'", "''") + "'" for p in parts]
    out, numbers = engine.translate(", ".join(literals))
    assert numbers is None
    assert out.replace("%%", "%") == ", ".join(literals)


def test_the_adapter_runs_sqlite_style_statements_on_postgresql(pg_url: str) -> None:
    conn = engine.pg_connect(pg_url)
    conn.executemany(
        "INSERT INTO leases (name, owner, until) VALUES (?, ?, ?)",
        [("a", "x", 1.5), ("b%", "y", 2.5)],
    )
    rows = conn.execute(
        "SELECT name, owner FROM leases WHERE until > ?1 - 1 AND until < ?1 + 5 AND name LIKE 'b%'",
        (1,),
    ).fetchall()
    assert rows == [("b%", "y")]
    assert not conn.in_transaction
    conn.execute("BEGIN")
    assert conn.in_transaction
    conn.execute("ROLLBACK")
    conn.close()


def test_an_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(
        ConfigError, match="cannot connect to postgresql://tp:\\*\\*\\*@127.0.0.1:1/"
    ):
        engine.pg_connect("postgresql://tp:pw@127.0.0.1:1/tp?connect_timeout=2")


def test_a_percent_sign_reaches_postgresql_unchanged_with_or_without_parameters(
    pg_url: str,
) -> None:
    conn = engine.pg_connect(pg_url)
    assert conn.execute("SELECT 'a%b'").fetchone() == ("a%b",)
    assert conn.execute("SELECT 'a%b', ?", (1,)).fetchone() == ("a%b", 1)
    conn.close()
