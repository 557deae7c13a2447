"""A database that cannot be written (issue 15): every route that would store answers 503 with
Retry-After and stores nothing, never a 2xx for what it did not keep; the health check says so
with the reason and recovers by itself; the log says it once, not per request."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient
from touchpoint.store.pgwriter import PgWriter

from ..conftest import ROOT, LiveServer

ALL = ["marketing", "measurement", "personalisation"]
PAGE = {"page": {"path": "/demo/"}}
BEHAVIOUR = {"events": [{"type": "dwell", "value": 12, "path": "/demo/"}]}


def writer_read_only(client: TestClient, on: bool) -> None:
    """Make the writer's connection refuse to write (SQLITE_READONLY), as a read-only or
    failed disk would: no root needed. (Set between requests, while the writer is idle.) On
    PostgreSQL: its session's transactions read-only, as on a standby after a failover."""
    writer = client.app.state.tp.writer  # type: ignore[attr-defined]
    if isinstance(writer, PgWriter):
        switch = f"SET default_transaction_read_only = {'on' if on else 'off'}"
        asyncio.run(writer.write(lambda conn: conn.execute(switch)))  # from the next one on
        return
    assert writer._lane is not None, "the loop lane opens with the first small write"
    for conn in (writer._conn, writer._lane.conn):  # the thread's and the event loop's
        conn.execute(f"PRAGMA query_only = {int(on)}")


def stored_events(client: TestClient) -> int:
    return int(client.app.state.tp.reader.count("events"))  # type: ignore[attr-defined]


def test_routes_refuse_with_503_what_they_cannot_store(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    assert client.post("/tp/v1/consent", json={"granted": ALL}).status_code == 200
    assert client.post("/tp/v1/events", json=BEHAVIOUR).status_code == 202
    before = stored_events(client)
    writer_read_only(client, True)
    with caplog.at_level(logging.WARNING, logger="touchpoint.store"):
        for _ in range(20):
            response = client.post("/tp/v1/events", json=BEHAVIOUR)
            assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "30"
        assert "nothing was stored" in response.json()["error"]
        identify = client.post("/tp/v1/identify", json={"email": "a@b.example"})
        assert identify.status_code == 503
        assert client.post("/tp/v1/consent", json={"granted": ["marketing"]}).status_code == 503
        # The page is still decided (reads work), but not counted.
        decided = client.post("/tp/v1/decide", json=PAGE)
        assert decided.status_code == 200 and decided.json()["counted"] is False
        health = client.get("/tp/healthz")
        assert health.status_code == 503
        assert "cannot be written" in health.json()["reason"]
        assert "readonly" in health.json()["reason"] or "read-only" in health.json()["reason"]
        failures = [r for r in caplog.records if "cannot be written" in r.getMessage()]
        assert len(failures) == 1, "logged once, not per request"
        writer_read_only(client, False)
        assert client.get("/tp/healthz").json()["status"] == "ok"
        assert any("written again" in r.getMessage() for r in caplog.records)
    assert stored_events(client) == before  # nothing of the refused batches was kept
    response = client.post("/tp/v1/events", json=BEHAVIOUR)
    assert response.status_code == 202 and response.json() == {"stored": 1}
    assert stored_events(client) == before + 1


@pytest.mark.sqlite_only("makes SQLite's connections read-only")
def test_the_server_api_refuses_with_a_503_problem(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    from touchpoint.api import keys as apikeys

    token = apikeys.ApiKeys(settings.api_keys_path).create("shop", ["events:write"], now=1)
    auth = {"Authorization": f"Bearer {token}"}
    assert client.post("/tp/v1/consent", json={"granted": ALL}).status_code == 200
    vid = client.app.state.tp.recognizer.read(client.cookies.get("tp_vid"))  # type: ignore[attr-defined]
    writer_read_only(client, True)
    event = {"type": "webinar", "visitor_id": vid, "name": "w"}
    response = client.post("/tp/v1/api/events", json=event, headers=auth)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "30"
    writer_read_only(client, False)


def _mount_tiny_filesystem(where: Path) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(where)],
        capture_output=True,
    )
    return result.returncode == 0


@pytest.fixture
def full_disk_server(tmp_path: Path) -> Iterator[tuple[LiveServer, Path]]:
    disk = tmp_path / "disk"
    if not _mount_tiny_filesystem(disk):
        pytest.skip("mounting a small tmpfs needs root; the read-only writer test covers this")
    try:
        server = LiveServer(disk)
        try:
            yield server, disk
        finally:
            server.stop()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.mark.slow
@pytest.mark.sqlite_only("fills the file system under a SQLite database")
def test_a_real_full_filesystem(full_disk_server: tuple[LiveServer, Path]) -> None:
    server, disk = full_disk_server
    with httpx.Client(base_url=server.url) as client:
        assert client.post("/tp/v1/consent", json={"granted": ALL}).status_code == 200
        filler = disk / "filler"
        # Fill what is left of the filesystem. Unbuffered: a buffered file would try to write
        # what the last short write left in its buffer again on closing, and fail there.
        with open(filler, "wb", buffering=0) as out:
            try:
                while True:
                    out.write(b"\0" * 65536)
            except OSError:
                pass
        statuses = [client.post("/tp/v1/events", json=BEHAVIOUR).status_code for _ in range(50)]
        assert 202 not in statuses[5:], statuses  # once the last free pages are gone: no 2xx
        assert set(statuses[5:]) == {503}
        assert client.get("/tp/healthz").status_code == 503
        filler.unlink()
        assert client.get("/tp/healthz").status_code == 200
        response = client.post("/tp/v1/events", json=BEHAVIOUR)
        assert response.status_code == 202 and response.json() == {"stored": 1}
    db = sqlite3.connect(server.data_dir / "touchpoint.db")
    try:
        (count,) = db.execute("SELECT count(*) FROM events WHERE type = 'dwell'").fetchone()
    finally:
        db.close()
    assert count == statuses.count(202) + 1  # every 202 was stored, nothing else


def test_the_fixture_files_are_where_the_server_expects_them() -> None:
    assert (ROOT / "rules" / "site.yaml").exists()
