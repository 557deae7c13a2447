"""The app as a whole: routes under the prefix, the health check."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_healthz(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/tp/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "campaigns": 1}


def test_custom_prefix(tmp_path: Path, rules_dir: Path) -> None:
    from starlette.testclient import TestClient
    from touchpoint.app import create_app
    from touchpoint.settings import Settings

    settings = Settings.load(
        {"data_dir": str(tmp_path), "rules_dir": str(rules_dir), "prefix": "/personalise"},
        environ={},
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/personalise/healthz").status_code == 200
        assert client.get("/tp/healthz").status_code == 404


@pytest.mark.sqlite_only("breaks the database through SQLite's query_only switch")
def test_healthz_reports_an_unreadable_database(client) -> None:  # type: ignore[no-untyped-def]
    client.app.state.tp.reader.conn.execute("PRAGMA query_only = OFF")
    client.app.state.tp.reader.conn.execute("DROP TABLE visitors")
    response = client.get("/tp/healthz")
    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["database"]) == ("error", "unavailable")
    assert body["reason"] == "cannot be read (no such table: visitors)"


def test_healthz_reports_a_stopped_writer(client) -> None:  # type: ignore[no-untyped-def]
    client.app.state.tp.writer.close()
    assert client.get("/tp/healthz").status_code == 503


@pytest.mark.sqlite_only("the permissions of a SQLite database's own files")
def test_database_files_are_private(client, settings) -> None:  # type: ignore[no-untyped-def]
    import stat

    client.post("/tp/v1/consent", json={"granted": ["marketing"]})
    for suffix in ("", "-wal", "-shm"):
        path = Path(str(settings.database_path) + suffix)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_sigterm_commits_every_queued_write(tmp_path: Path) -> None:
    """Page views and behaviour batches are answered before they are committed (group commit);
    a graceful stop (SIGTERM) commits everything queued before the process exits."""
    import httpx2 as httpx
    from touchpoint import store

    from .conftest import LiveServer

    # A commit window far longer than the test: every write is still queued at the SIGTERM.
    live_server = LiveServer(tmp_path, "--group-commit-ms=60000")

    headers = {"Origin": live_server.url}
    with httpx.Client(base_url=live_server.url, headers=headers) as client:
        granted = ["marketing", "measurement", "personalisation"]
        client.post("/tp/v1/consent", json={"granted": granted}).raise_for_status()
        for n in range(150):
            client.post("/tp/v1/decide", json={"page": {"path": f"/demo/{n}"}}).raise_for_status()
            events = [{"type": "click", "name": f"link-{n}", "path": f"/demo/{n}"}]
            assert client.post("/tp/v1/events", json={"events": events}).status_code == 202
    live_server.stop()  # SIGTERM right after the last answer
    conn = store.connect(live_server.database)
    counts = dict(conn.execute("SELECT type, count(*) FROM events GROUP BY type").fetchall())
    (page_views,) = conn.execute("SELECT page_views FROM visitors").fetchone()
    conn.close()
    assert counts == {"page_view": 150, "click": 150} and page_views == 150
