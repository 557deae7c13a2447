"""The visitor lookup and the webhook outbox in real Chromium against a real server: an editor
looks up a visitor made through the public endpoints (consent, decide, events, identify), sees
the profile with its score's decay chart drawn, and finds the lookup in the audit log; and
screenshots of every page at laptop and tablet size (/tmp/console-shots/)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from touchpoint import store

from ..conftest import LiveServer
from .helpers import add_user_with_cli
from .test_console_browser import SHOTS, SIZES, _anmelden, new_page, sign_in

pytestmark = pytest.mark.browser
EMAIL = "ada@example.com"
PAGE = {"path": "/demo/products/trail-runner.html", "query": "?utm_source=facebook"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    """The demo server with one editor, one visitor who consented, browsed, signed up for the
    workshop and identified, and two webhooks waiting in the outbox (one failed)."""
    data = tmp_path / "live-data"
    data.mkdir()
    add_user_with_cli(data)
    server = LiveServer(tmp_path)
    with httpx.Client(base_url=server.url) as visitor:
        granted = ["marketing", "measurement", "personalisation"]
        assert visitor.post("/tp/v1/consent", json={"granted": granted}).status_code == 200
        assert visitor.post("/tp/v1/decide", json={"page": PAGE}).status_code == 200
        events = [
            {"type": "impression", "campaign": "first-order-coupon", "variant": "ten-percent"},
            {"type": "form_submit", "name": "workshop", "path": PAGE["path"]},
            {"type": "scroll", "value": 80, "path": PAGE["path"]},
        ]
        assert visitor.post("/tp/v1/events", json={"events": events}).status_code == 202
        identified = visitor.post("/tp/v1/identify", json={"email": EMAIL, "first_name": "Ada"})
        assert identified.json()["identified"] is True
    conn = store.connect(server.database)
    try:
        with store.immediate(conn):
            for n, event in enumerate(["score.threshold", "stage.changed"]):
                store.queue_webhook(
                    conn,
                    endpoint="sales",
                    event=event,
                    key=f"k{n}",
                    body="{}",
                    now=int(time.time()),
                )
            conn.execute(
                "UPDATE webhook_outbox SET state = 'failed', attempts = 20, last_status = 502,"
                " last_error = 'HTTP 502' WHERE id = 1"
            )
    finally:
        conn.close()
    yield server
    server.stop()


def look_up(page: Any, email: str = EMAIL) -> None:
    page.goto("/tp/admin/visitors")
    page.get_by_label("E-mail address").check()
    page.get_by_label("Reference").fill(email)
    page.get_by_role("button", name="Look up").click()


def test_an_editor_looks_a_visitor_up_and_finds_it_in_the_audit_log(
    browser, server: LiveServer
) -> None:  # type: ignore[no-untyped-def]
    page = new_page(browser, server)
    sign_in(page)
    page.wait_for_url("**/tp/admin/results")
    page.get_by_role("link", name="Visitors").click()
    look_up(page)
    page.get_by_role("heading", name="Profile").wait_for()
    facts = page.locator("dl.facts").inner_text()
    assert "lead" in facts and "Score now" in facts
    chart = page.locator("figure.decay-chart")
    chart.locator(".tp-chart canvas").first.wait_for()
    assert "tp-chart-drawn" in (chart.get_attribute("class") or "")
    assert "first-order-coupon" in page.get_by_role("table", name="Campaign history").inner_text()
    page.get_by_role("link", name="Audit log of lookups").first.click()
    row = page.get_by_role("table", name="Console actions on visitor data").locator("tbody tr")
    assert row.count() == 1
    text = row.first.inner_text()
    assert "ana" in text and "lookup" in text and "E-mail address" in text
    assert EMAIL not in page.content()
    assert page.errors == []


@pytest.mark.parametrize("size", list(SIZES))
def test_screenshots(browser, server: LiveServer, size: str) -> None:  # type: ignore[no-untyped-def]
    SHOTS.mkdir(exist_ok=True)
    page = new_page(browser, server, size)
    sign_in(page)
    page.wait_for_url("**/tp/admin/results")
    page.goto("/tp/admin/visitors")
    page.screenshot(path=SHOTS / f"visitors-search-{size}.png", full_page=True)
    look_up(page)
    page.locator("figure.decay-chart .tp-chart canvas").first.wait_for()
    page.screenshot(path=SHOTS / f"visitors-profile-{size}.png", full_page=True)
    _fits(page, size)
    page.get_by_role("button", name="Erase…").click()
    page.get_by_role("heading", name="Erase this person?").wait_for()
    page.screenshot(path=SHOTS / f"visitors-erase-{size}.png", full_page=True)
    look_up(page, "nobody@example.com")
    page.screenshot(path=SHOTS / f"visitors-miss-{size}.png", full_page=True)
    page.goto("/tp/admin/visitors/audit")
    page.screenshot(path=SHOTS / f"visitors-audit-{size}.png", full_page=True)
    _fits(page, size)
    page.goto("/tp/admin/webhooks")
    page.screenshot(path=SHOTS / f"webhooks-{size}.png", full_page=True)
    _fits(page, size)
    page.get_by_role("button", name="Retry all failed").click()
    assert "1 webhook(s) queued again" in page.get_by_role("status").inner_text()
    page.screenshot(path=SHOTS / f"webhooks-retried-{size}.png", full_page=True)
    assert page.errors == []
    german = new_page(browser, server, size, locale="de")
    german.goto("/tp/admin/signin")
    _anmelden(german)
    german.wait_for_url("**/tp/admin/results")
    german.goto("/tp/admin/visitors")
    german.get_by_label("Angabe").fill(EMAIL)
    german.get_by_role("button", name="Suchen").click()
    german.locator("figure.decay-chart .tp-chart canvas").first.wait_for()
    german.screenshot(path=SHOTS / f"visitors-profile-de-{size}.png", full_page=True)
    _fits(german, size)
    german.goto("/tp/admin/webhooks")
    german.screenshot(path=SHOTS / f"webhooks-de-{size}.png", full_page=True)
    _fits(german, size)
    assert german.errors == []


def _fits(page: Any, size: str) -> None:
    """Tables scroll inside their own box, never the whole page sideways."""
    assert page.evaluate("document.documentElement.scrollWidth") <= SIZES[size]["width"]
