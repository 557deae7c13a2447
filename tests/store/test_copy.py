"""``touchpoint db copy``: a SQLite database moved to PostgreSQL, every table counted on both
sides, and the server carries on there with the same visitors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from touchpoint import store
from touchpoint.app import create_app
from touchpoint.cli import main
from touchpoint.settings import Settings

from ..databases import opened

ALL = {"granted": ["marketing", "measurement", "personalisation"]}
PAGE = {"page": {"path": "/demo/products/trail-runner.html"}}


def shop_on(settings: Settings) -> TestClient:
    return TestClient(create_app(settings), base_url="https://shop.example")


COOKIES: dict[str, str] = {}  # the cookie of the SQLite database's busiest visitor, by folder


@pytest.fixture
def lite(tmp_path: Path, rules_dir: Path) -> Settings:
    """A SQLite database with a bit of everything: consent, page views, behaviour, an
    identified visitor, stage history, rollups."""
    settings = Settings.load(
        {"data_dir": str(tmp_path / "data"), "rules_dir": str(rules_dir)}, environ={}
    )
    with shop_on(settings) as client:
        for n in range(3):
            with shop_on(settings) as visitor:
                assert visitor.post("/tp/v1/consent", json=ALL).status_code == 200
                for _ in range(n + 1):
                    assert visitor.post("/tp/v1/decide", json=PAGE).status_code == 200
                events = [{"type": "click", "name": f"buy-{n}", "path": "/demo/"}]
                assert visitor.post("/tp/v1/events", json={"events": events}).status_code == 202
                COOKIES[settings.data_dir] = visitor.cookies["tp_vid"]
        assert client.post("/tp/v1/consent", json=ALL).status_code == 200
        identify = {"email": "ada@example.com", "first_name": "Ada"}
        assert client.post("/tp/v1/identify", json=identify).status_code == 200
    return settings


def counts(database: str) -> dict[str, int]:
    with opened(database) as conn:
        return {
            table: conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            for table in store.catalog.tables(conn)
        }


def test_a_copy_holds_every_row_and_the_server_carries_on_there(
    lite: Settings, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ["--data-dir", lite.data_dir]
    assert main(["db", "copy", "--to", pg_url, "--json", *flags]) == 0
    report = json.loads(capsys.readouterr().out)
    before = counts(lite.database_url)
    assert report["verified"] is True
    assert {t: c["sqlite"] for t, c in report["tables"].items()} == before
    assert {t: c["postgresql"] for t, c in report["tables"].items()} == before
    assert counts(pg_url) == before and before["events"] > 0 and before["identities"] == 1
    with opened(lite.database_url) as a, opened(pg_url) as b:
        for table in ("visitors", "events", "consent_log", "identities", "rollup_campaigns"):
            order = " ORDER BY 1, 2"
            sql = f'SELECT * FROM "{table}"{order}'
            assert a.execute(sql).fetchall() == b.execute(sql).fetchall(), table
    # The same secret key, now on PostgreSQL: a visitor comes back and is known.
    moved = Settings.load(
        {"data_dir": lite.data_dir, "rules_dir": lite.rules_dir, "database": pg_url}, environ={}
    )
    with shop_on(moved) as client:
        client.cookies.set("tp_vid", COOKIES[lite.data_dir])
        vid = client.app.state.tp.recognizer.read(COOKIES[lite.data_dir])  # type: ignore[attr-defined]
        assert vid is not None
        assert client.post("/tp/v1/decide", json=PAGE).status_code == 200
        events = [{"type": "click", "name": "after-the-move", "path": "/demo/"}]
        assert client.post("/tp/v1/events", json={"events": events}).json() == {"stored": 1}
        assert client.post("/tp/v1/consent", json=ALL).status_code == 200  # a new log row
    with opened(pg_url) as conn:
        assert conn.execute("SELECT page_views FROM visitors WHERE id = ?", (vid,)).fetchone() == (
            4,  # three before the move, one after
        )
        assert counts(pg_url)["consent_log"] == before["consent_log"] + 1


def test_a_copy_into_a_database_with_rows_is_refused_and_changes_nothing(
    lite: Settings, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ["--data-dir", lite.data_dir]
    assert main(["db", "copy", "--to", pg_url, *flags]) == 0
    out, err = capsys.readouterr()
    assert "visitors" in out and "every table counted the same" in err
    copied = counts(pg_url)
    assert main(["db", "copy", "--to", pg_url, *flags]) == 1
    assert "holds rows already" in capsys.readouterr().err
    assert counts(pg_url) == copied


def test_a_copy_needs_sqlite_on_one_side_and_postgresql_on_the_other(
    lite: Settings, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "copy", "--to", "/tmp/other.db", "--data-dir", lite.data_dir]) == 1
    assert "is not a postgresql:// URL" in capsys.readouterr().err
    assert main(["db", "copy", "--to", pg_url, "--database", pg_url]) == 1
    assert "PostgreSQL already" in capsys.readouterr().err
