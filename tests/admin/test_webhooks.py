"""The webhook outbox in the console: pending and failed rows with their error and no body,
viewers see it, editors retry one row or every failed one, with the CSRF token only."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from touchpoint import store
from touchpoint.app import create_app
from touchpoint.settings import Settings

from .helpers import add_user, csrf_of, sign_in

SECRET_BODY = '{"data": {"email": "ada@example.com", "visitor_id": "v-ada"}}'


@pytest.fixture
def settings(tmp_path: Path, rules_dir: Path) -> Settings:
    site = rules_dir / "site.yaml"
    site.write_text(
        "webhooks:\n  sales:\n    url: http://127.0.0.1:9/hooks\n"
        "    secret_env: TOUCHPOINT_TEST_UNSET_SECRET\n    events: [stage.changed]\n"
    )
    return Settings.load(
        {"data_dir": str(tmp_path / "data"), "rules_dir": str(rules_dir)}, environ={}
    )


def outbox(path: Path | str) -> list[tuple[int, str, int]]:
    conn = store.connect(path)
    try:
        return conn.execute("SELECT id, state, attempts FROM webhook_outbox ORDER BY id").fetchall()
    finally:
        conn.close()


@pytest.fixture
def app(settings: Settings):  # type: ignore[no-untyped-def]
    path = settings.database_path
    add_user(path, "ana", role="editor")
    add_user(path, "vic", role="viewer")
    conn = store.connect(path)
    now = int(time.time())
    with store.immediate(conn):
        for n, event in enumerate(["stage.changed", "score.threshold", "stage.changed"]):
            store.queue_webhook(
                conn,
                endpoint="sales",
                event=event,
                key=f"k{n}",
                body=SECRET_BODY,
                now=now,
                visitor_id="v-ada",
            )
        conn.execute(
            "UPDATE webhook_outbox SET state = 'failed', attempts = 20,"
            " last_error = 'ConnectError: [Errno 111] Connection refused' WHERE id IN (1, 2)"
        )
    conn.close()
    return create_app(settings)


@pytest.fixture
def editor(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as client:
        sign_in(client, "ana")
        yield client


def test_the_outbox_lists_pending_and_failed_rows_without_their_body(editor: TestClient) -> None:
    page = editor.get("/tp/admin/webhooks")
    assert page.status_code == 200
    text = page.text
    assert "Connection refused" in text and "score.threshold" in text
    assert "TOUCHPOINT_TEST_UNSET_SECRET is not set: its webhooks wait" in text
    assert "ada@example.com" not in text and "v-ada" not in text
    assert 'aria-label="Retry webhook #1"' in text and "Retry all failed" in text
    assert '<a href="/tp/admin/webhooks" aria-current="page">Webhooks</a>' in text


def test_a_viewer_sees_the_outbox_but_cannot_retry(app, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app) as client:
        sign_in(client, "vic")
        page = client.get("/tp/admin/webhooks")
        assert page.status_code == 200 and "Connection refused" in page.text
        assert "Retry all failed" not in page.text
        token = csrf_of(page.text)
        refused = client.post("/tp/admin/webhooks/retry", data={"csrf": token, "all_failed": "1"})
        assert refused.status_code == 403
    assert [row[1] for row in outbox(settings.database_url)] == ["failed", "failed", "pending"]


def test_an_editor_retries_one_row_then_every_failed_one(
    editor: TestClient, settings: Settings
) -> None:
    token = csrf_of(editor.get("/tp/admin/webhooks").text)
    one = editor.post(
        "/tp/admin/webhooks/retry", data={"csrf": token, "id": "2"}, follow_redirects=False
    )
    assert one.status_code == 303 and one.headers["location"] == "/tp/admin/webhooks?queued=1"
    assert outbox(settings.database_url)[1] == (2, "pending", 0)
    page = editor.post("/tp/admin/webhooks/retry", data={"csrf": token, "all_failed": "1"})
    assert "1 webhook(s) queued again" in page.text
    assert [row[1:] for row in outbox(settings.database_url)] == [("pending", 0)] * 3
    assert editor.post("/tp/admin/webhooks/retry", data={"csrf": token}).status_code == 400


def test_retry_without_the_csrf_token_is_refused(editor: TestClient, settings: Settings) -> None:
    for form in ({"all_failed": "1"}, {"all_failed": "1", "csrf": "forged"}):
        response = editor.post("/tp/admin/webhooks/retry", data=form)
        assert response.status_code == 403 and "This form has expired" in response.text
    assert [row[1] for row in outbox(settings.database_url)] == ["failed", "failed", "pending"]


def test_a_retry_that_cannot_be_stored_is_a_503(editor: TestClient, settings: Settings) -> None:
    token = csrf_of(editor.get("/tp/admin/webhooks").text)
    writer = editor.app.state.tp.writer  # type: ignore[attr-defined]
    writer._conn.execute("PRAGMA query_only = 1")
    try:
        response = editor.post("/tp/admin/webhooks/retry", data={"csrf": token, "all_failed": "1"})
    finally:
        writer._conn.execute("PRAGMA query_only = 0")
    assert response.status_code == 503 and "nothing was queued" in response.text
    assert [row[1] for row in outbox(settings.database_url)] == ["failed", "failed", "pending"]
