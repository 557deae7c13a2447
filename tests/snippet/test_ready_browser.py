"""Calls a page makes before the consent state is known (inline in <head>, through the queue
stub) and touchpoint('ready'), in real Chromium: against the real server for what is stored,
against the scripted server for the failure paths (docs/embedding.md#the-order-of-events)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from ..conftest import PRODUCT, LiveServer
from ..databases import opened
from . import test_snippet_browser as snippet_tests
from .test_demo_browser import accept_consent

harness = snippet_tests.harness
pytestmark = pytest.mark.browser
ALL = ["marketing", "measurement", "personalisation"]
# A page after login, as docs/embedding.md shows it: the calls are made inline in <head>,
# before t.js has loaded, and long before the server has said what the visitor consented to.
ACCOUNT = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Your account</title>
<link rel="icon" href="data:,">
<script>window.touchpoint=window.touchpoint||function(){(touchpoint.q=touchpoint.q||[]).push(arguments)};
%s
touchpoint('identify', {email: 'ada@example.com', first_name: 'Ada'});
touchpoint('track', 'account-viewed', {orders: 3});
touchpoint('ready', function (state) { (window.readied = window.readied || []).push(state); });
</script>
<script async src="/tp/t.js"></script></head><body><h1>Your account</h1></body></html>"""


def serve_account(page, before: str = "") -> None:  # type: ignore[no-untyped-def]
    """The account page at /demo/account.html, with ``before`` run ahead of its calls."""
    html = ACCOUNT % before
    page.route("**/account.html", lambda route: route.fulfill(body=html, content_type="text/html"))


def requests_to(page, *paths: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The requests the page makes to ``paths`` from now on."""
    sent: list[str] = []
    page.on("request", lambda r: any(p in r.url for p in paths) and sent.append(r.url))
    return sent


def readied(page) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """What the ready callbacks received, once one has run."""
    page.wait_for_function("window.readied !== undefined", timeout=5000)
    page.wait_for_timeout(100)  # a second call would come now
    states: list[dict[str, Any]] = page.evaluate("window.readied")
    return states


def stored(server: LiveServer, sql: str) -> list[tuple[Any, ...]]:
    with opened(server.database) as conn:
        return conn.execute(sql).fetchall()


def stored_soon(server: LiveServer, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` once there are any (a beacon may still be on its way)."""
    deadline = time.monotonic() + 5
    while not (rows := stored(server, sql)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return rows


CUSTOM = (
    "SELECT v.id, e.name, e.props FROM events e JOIN visitors v ON v.num = e.visitor"
    " WHERE e.type = 'custom'"
)


# Against the real server: what is stored.


def test_inline_calls_of_a_consented_visitor_are_stored(page, live_server) -> None:  # type: ignore[no-untyped-def]
    page.goto(PRODUCT)
    accept_consent(page)
    serve_account(page)
    with page.expect_response("**/tp/v1/identify", timeout=5000) as identified:
        page.goto("/demo/account.html")
    assert identified.value.ok
    assert readied(page) == [{"granted": ALL}]
    page.goto(PRODUCT)  # leaving: the custom event goes out in a beacon
    [(visitor, name, props)] = stored_soon(live_server, CUSTOM)
    assert (name, json.loads(props)) == ("account-viewed", {"orders": 3})
    assert stored(live_server, "SELECT kind, visitor_id FROM identities") == [("email", visitor)]


def test_inline_calls_without_consent_send_nothing(page, live_server) -> None:  # type: ignore[no-untyped-def]
    sent = requests_to(page, "/v1/identify", "/v1/events")
    serve_account(page)
    page.goto("/demo/account.html")
    assert readied(page) == [{"granted": []}]  # the banner asks; nothing is granted yet
    page.get_by_role("dialog").wait_for()
    page.wait_for_timeout(300)
    assert sent == []
    assert page.context.cookies() == []
    # Calls after the visitor answered the banner go out as ever; ready does not run again.
    accept_consent(page)
    assert page.evaluate("window.readied.length") == 1
    with page.expect_response("**/tp/v1/identify", timeout=5000):
        page.evaluate("touchpoint('identify', {email: 'ada@example.com'})")
    page.evaluate("touchpoint('track', 'after-the-banner')")
    page.goto(PRODUCT)
    assert [row[1] for row in stored_soon(live_server, CUSTOM)] == ["after-the-banner"]
    assert stored(live_server, "SELECT kind FROM identities") == [("email",)]


# Against the scripted server: where the consent comes from, and when it never comes.


def harness_page(browser, harness, *, before: str = ""):  # type: ignore[no-untyped-def]
    errors: list[str] = []
    page = snippet_tests.new_page(browser, harness, errors, [])
    serve_account(page, before)
    return page, errors


def test_the_consent_the_page_gives_first_applies_to_the_calls_after_it(browser, harness) -> None:  # type: ignore[no-untyped-def]
    # A consent tool that answers inline too: identify comes after it, so it needs its answer.
    harness.script({}, granted=None)
    page, errors = harness_page(
        browser, harness, before="touchpoint('consent', ['personalisation']);"
    )
    with page.expect_response("**/tp/v1/identify", timeout=5000):
        page.goto("/pages/account.html")
    assert [c["granted"] for c in harness.log()["consent"]] == [["personalisation"]]
    assert readied(page) == [{"granted": ["personalisation"]}]
    page.context.close()
    assert errors == []


def test_a_tcf_consent_tool_is_waited_for(browser, harness) -> None:  # type: ignore[no-untyped-def]
    tcf = {"revision": 1, "granted": ["personalisation"], "prompt": False, "known": True}
    harness.script(
        {"consent": {**tcf, "mode": "tcf", "timeout": 3000}}, granted=["personalisation"]
    )
    cmp = """window.__tcfapi = function (command, version, callback) {
      window.choose = function () { callback({eventStatus: 'tcloaded', listenerId: 1,
        publisher: {consents: {1: true, 5: true, 6: true}}}, true); };
    };"""
    page, errors = harness_page(browser, harness, before=cmp)
    with page.expect_response("**/tp/v1/decide"):
        page.goto("/pages/account.html")
    page.wait_for_timeout(300)
    assert harness.log()["identify"] == []  # the server holds consent, but the tool has not spoken
    assert page.evaluate("window.readied") is None
    with page.expect_response("**/tp/v1/identify", timeout=5000):
        page.evaluate("window.choose()")
    assert readied(page) == [{"granted": ["personalisation"]}]
    page.context.close()
    assert errors == []


def test_a_failed_decide_drops_the_calls(browser, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({}, granted=ALL)
    page, errors = harness_page(browser, harness)
    sent = requests_to(page, "/v1/identify", "/v1/events")
    page.route("**/tp/v1/decide", lambda route: route.abort("connectionrefused"))
    page.goto("/pages/account.html")
    assert readied(page) == [{"granted": []}]  # after the request and its retries failed
    page.goto("about:blank")
    assert sent == []
    page.context.close()
    assert errors == []


def test_a_decide_that_never_answers_holds_the_calls_ten_seconds(browser, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({}, granted=ALL)
    page, errors = harness_page(browser, harness)
    sent = requests_to(page, "/v1/identify", "/v1/events")
    hanging: list[Any] = []
    page.route("**/tp/v1/decide", lambda route: hanging.append(route))  # unanswered for now
    page.clock.install()
    page.goto("/pages/account.html")
    page.wait_for_function("() => window.touchpoint.loaded && window.touchpoint.q === undefined")
    page.clock.run_for(9_900)
    assert page.evaluate("window.readied") is None
    page.clock.run_for(200)
    assert readied(page) == [{"granted": []}]
    # The answer comes after all, granting everything: what was dropped stays dropped.
    with page.expect_response("**/tp/v1/decide"):
        hanging[0].continue_()
    page.clock.run_for(6_000)  # a tracking flush, had anything been queued
    page.goto("about:blank")
    assert sent == []
    page.context.close()
    assert errors == []
