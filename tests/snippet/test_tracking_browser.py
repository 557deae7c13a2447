"""The snippet's behaviour tracking, single-page app navigation, identification and preview
links, in real Chromium against the scripted server (tests/snippet_harness.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from ..snippet_harness import Harness
from . import test_snippet_browser as snippet
from .test_snippet_browser import INDEX, POPUP, SHORT, content, open_page, popup, seen, shown

pytestmark = pytest.mark.browser
# The scripted server and page fixtures of the snippet's other browser tests.
harness, page, warnings = snippet.harness, snippet.page, snippet.warnings
BEHAVIOUR = ("dwell", "scroll", "click", "custom")


def behaviour(harness: Harness, *, at_least: int = 0, wait: float = 5) -> list[dict[str, Any]]:
    """The behaviour events the snippet sent, once there are ``at_least`` of them."""
    deadline = time.monotonic() + wait
    while True:
        sent = [e for e in harness.log()["events"] if e["type"] in BEHAVIOUR]
        if len(sent) >= at_least or time.monotonic() > deadline:
            return sent
        time.sleep(0.05)


def test_behaviour_is_sent_when_the_page_is_left(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({}, granted=["measurement"])
    open_page(page)
    page.click("text=Size guide")
    page.click("#plain")  # not marked: not tracked
    page.evaluate(
        "touchpoint('track', 'video-played', {seconds: 30, title: 'Boots', nested: {a: 1}})"
    )
    page.mouse.wheel(0, 100000)
    page.wait_for_timeout(1200)  # over a second of visible time
    page.goto(SHORT)  # pagehide: the rest goes out in a beacon
    sent = {e["type"]: e for e in behaviour(harness, at_least=4)}
    assert sorted(sent) == ["click", "custom", "dwell", "scroll"]
    assert {e["path"] for e in sent.values()} == {INDEX}
    assert sent["click"]["name"] == "size-guide"
    assert sent["custom"]["name"] == "video-played"
    assert sent["custom"]["props"] == {"seconds": 30, "title": "Boots"}  # flat values only
    assert sent["dwell"]["value"] >= 1
    assert sent["scroll"]["value"] == 100


def test_events_go_out_every_few_seconds_on_a_long_visit(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({}, granted=["personalisation"])
    open_page(page)
    page.evaluate("touchpoint('track', 'configurator-opened')")
    assert [e["name"] for e in behaviour(harness, at_least=1, wait=8)] == ["configurator-opened"]


@pytest.mark.parametrize("granted", [None, ["marketing"]])
def test_nothing_is_tracked_without_measurement_or_personalisation(  # type: ignore[no-untyped-def]
    page, harness, granted: list[str] | None
) -> None:
    harness.script({}, granted=granted)
    open_page(page)
    page.click("text=Size guide")
    page.evaluate("touchpoint('track', 'video-played')")
    page.wait_for_timeout(1100)
    page.goto(SHORT)
    page.wait_for_timeout(300)
    assert behaviour(harness, wait=0) == []


def test_withdrawal_stops_tracking_on_the_same_page(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({}, granted=["measurement"])
    open_page(page)
    page.evaluate("touchpoint('track', 'before-withdrawal')")
    with page.expect_response("**/tp/v1/consent"):
        page.evaluate("touchpoint('consent', {})")
    page.evaluate("touchpoint('track', 'after-withdrawal')")
    page.wait_for_timeout(1100)
    page.goto(SHORT)
    page.wait_for_timeout(300)
    assert behaviour(harness, wait=0) == []


def test_a_batch_the_server_could_not_store_is_sent_again(page, harness) -> None:  # type: ignore[no-untyped-def]
    """Issue 15: a 503 (the server's disk is full) keeps the batch; it goes again after the
    answer's Retry-After, and is stored once."""
    harness.script({}, granted=["measurement"], events_unavailable=2)
    open_page(page)
    page.evaluate("touchpoint('track', 'configurator-opened')")
    page.evaluate("touchpoint('track', 'configurator-saved')")
    sent = behaviour(harness, at_least=2, wait=15)
    assert [e["name"] for e in sent] == ["configurator-opened", "configurator-saved"]
    assert harness.log()["events_refused"] == [2, 2]  # refused twice, then stored once


def test_withdrawal_drops_the_batches_waiting_to_be_sent_again(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({}, granted=["measurement"], events_unavailable=1)
    open_page(page)
    page.evaluate("touchpoint('track', 'configurator-opened')")
    deadline = time.monotonic() + 8
    while not harness.log()["events_refused"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert harness.log()["events_refused"] == [1]
    page.evaluate("touchpoint('consent', {measurement: false})")
    page.wait_for_timeout(2500)  # past the Retry-After
    assert behaviour(harness, wait=0) == []


def test_a_pushstate_navigation_is_a_new_page_view(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script(
        {"popups": [popup("first", "load")], "slots": {"hero": content("first", "<h1>F</h1>")}},
        {
            "popups": [popup("second", "load")],
            "slots": {"hero": content("next", "<h1>N</h1>"), "sidebar": content("next", "N")},
        },
        granted=["marketing", "measurement"],
    )
    open_page(page)
    page.get_by_role("button", name="Close").click()
    with page.expect_response("**/tp/v1/decide"):
        page.evaluate("history.pushState({}, '', '/pages/next?size=42')")
    page.locator(POPUP).wait_for()  # the new page view has its own popup
    assert shown(page) == ["second"]
    # A slot decided on the last view is not swapped under the reader; an open one is filled.
    filled = "els => els.map(e => e.dataset.tpFilled)"
    assert page.locator("[data-tp-slot]").evaluate_all(filled) == ["first", "next", "first", None]
    page.evaluate("location.hash = 'reviews'")  # not a page view
    page.go_back()  # back to /pages/next: only the hash changes again
    with page.expect_response("**/tp/v1/decide"):
        page.go_back()
    decides = harness.log()["decide"]
    assert [(d["page"]["path"], d["page"]["query"], d["count"]) for d in decides] == [
        (INDEX, "", True),
        ("/pages/next", "?size=42", True),
        (INDEX, "", True),
    ]
    assert decides[1]["page"]["referrer"] == harness.url + INDEX
    assert decides[2]["page"]["referrer"] == harness.url + "/pages/next?size=42"


def test_identify_needs_the_personalisation_consent(page, harness) -> None:  # type: ignore[no-untyped-def]
    who = "{email: 'ada@example.com', first_name: 'Ada', password: 'x', customer_id: 7}"
    harness.script({}, granted=["measurement", "marketing"])
    open_page(page)
    page.evaluate(f"touchpoint('identify', {who})")
    page.wait_for_timeout(200)
    assert harness.log()["identify"] == []
    harness.script({}, granted=["personalisation"])
    open_page(page)
    with page.expect_response("**/tp/v1/identify"):
        page.evaluate(f"touchpoint('identify', {who})")
    # Only the known keys, only strings: nothing else of the page's object leaves.
    assert harness.log()["identify"] == [{"email": "ada@example.com", "first_name": "Ada"}]


def test_reset_starts_a_new_visitor(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({}, granted=["personalisation"])
    open_page(page)
    with page.expect_response("**/tp/v1/reset"):
        page.evaluate("touchpoint('reset')")
    assert harness.log()["reset"] == [{}]


def test_a_late_answer_leaves_the_slots_alone(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script(
        {"delay": 700, "slots": {"hero": content("late", "<h1>Too late</h1>")}},
        granted=["marketing"],
    )
    open_page(page)
    page.wait_for_timeout(100)
    assert page.locator("section[data-tp-slot=hero]").inner_text().startswith("Default hero")
    assert seen(page, "fill") == []


def test_a_preview_link_shows_records_nothing_and_explains(page, harness) -> None:  # type: ignore[no-untyped-def]
    trace = ["first-order-coupon (first-order-coupon.yaml:1): not chosen: visits is 1"]
    harness.script(
        {
            "counted": False,
            "popups": [popup("first-order-coupon", "load")],
            "preview": {"campaign": "first-order-coupon", "variant": "a", "trace": trace},
        },
        granted=["marketing", "measurement"],
    )
    lines: list[str] = []
    page.on("console", lambda message: lines.append(message.text))
    with page.expect_response("**/tp/v1/decide"):
        page.goto(INDEX + "?tp_preview=token.with-signature")
    page.locator(POPUP).wait_for()
    page.evaluate("touchpoint('track', 'seen-in-preview')")
    page.get_by_role("button", name="Close").click()
    page.goto("about:blank")  # leaving: nothing queued goes out either
    page.wait_for_timeout(300)
    request = harness.log()["decide"][0]
    assert (request["preview"], request["count"]) == ("token.with-signature", False)
    assert harness.log()["events"] == []  # no impression, close or behaviour
    assert "touchpoint preview: first-order-coupon / a" in lines
    assert "touchpoint preview: " + trace[0] in lines


def test_everything_works_under_a_strict_content_security_policy(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script(
        {
            "popups": [popup("offer", "load")],
            "slots": {"hero": content("spring", "<h1>Spring sale</h1>")},
        },
        granted=["marketing", "measurement"],
    )
    with page.expect_response("**/tp/v1/decide"):
        page.goto("/csp.html")
    dialog = page.locator(POPUP)
    dialog.wait_for()
    # The popup's styles arrived (a constructed stylesheet, not a blocked inline <style>).
    assert dialog.evaluate("el => getComputedStyle(el).borderRadius") == "12px"
    assert page.locator("[data-tp-filled=spring]").inner_text() == "Spring sale"
    page.get_by_role("button", name="Close").click()
    page.click("text=Size guide")
    assert page.evaluate("window.violations") == []
    page.goto("about:blank")  # the beacon is allowed by connect-src 'self'
    assert "click" in [e["type"] for e in behaviour(harness, at_least=2)]


def test_the_page_works_unchanged_when_the_server_is_down(page, harness, warnings) -> None:  # type: ignore[no-untyped-def]
    harness.script({"slots": {"hero": content("spring", "<h1>Spring sale</h1>")}})
    page.route("**/tp/v1/**", lambda route: route.abort("connectionrefused"))
    page.goto(INDEX)
    page.wait_for_function("() => window.touchpoint && window.touchpoint.loaded")
    page.evaluate("touchpoint('track', 'still-fine'); touchpoint('context', {a: 1})")
    page.wait_for_timeout(1500)  # the first request and its two retries have failed
    assert page.locator("section[data-tp-slot=hero]").inner_text().startswith("Default hero")
    assert page.locator("[data-tp-popup]").count() == 0
    assert any("Failed to fetch" in w for w in warnings)  # reported, never thrown
