"""What a visitor sees, in real Chromium against a real server: the exit-intent popup."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ..conftest import PRODUCT, ROOT, LiveServer, page_on, without_own_codes
from ..databases import opened

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).parent.parent / "artifacts"
POPUP = "[data-tp-popup] [role=dialog]"


def leave_through_top(page) -> None:  # type: ignore[no-untyped-def]
    """Move the pointer about the page, then out through the top edge towards the tab bar."""
    page.mouse.move(600, 400)
    page.wait_for_timeout(1100)  # the example campaign arms exit intent after 1 s on the page
    page.mouse.move(600, 10, steps=5)
    page.mouse.move(600, -20)


def accept_consent(page) -> None:  # type: ignore[no-untyped-def]
    with page.expect_response("**/tp/v1/decide"):  # the decision made with the new consent
        with page.expect_response("**/tp/v1/consent"):
            page.get_by_role("button", name="Accept all").click()


@pytest.fixture
def external_consent(tmp_path: Path):  # type: ignore[no-untyped-def]
    """The demo with consent from the site's own tool (consent mode external): no banner, so
    popups show before any answer (the first-order coupon without its code, as for anyone)."""
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    without_own_codes(rules)
    site = rules / "site.yaml"
    site.write_text(site.read_text().replace("mode: builtin", "mode: external"))
    server = LiveServer(tmp_path, "--rules-dir", str(rules))
    yield server
    server.stop()


@pytest.fixture
def api_page(browser, external_consent):  # type: ignore[no-untyped-def]
    with page_on(browser, external_consent.url) as page:
        yield page


def stored(live_server, sql: str) -> list[tuple]:  # type: ignore[no-untyped-def]
    with opened(live_server.database) as conn:
        return conn.execute(sql).fetchall()


def test_exit_intent_popup_closed_stays_closed_after_reload(page, live_server) -> None:  # type: ignore[no-untyped-def]
    page.goto(PRODUCT)
    accept_consent(page)
    leave_through_top(page)
    dialog = page.locator(POPUP)
    dialog.wait_for()
    assert "10 % off your first order" in dialog.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "exit-intent-popup.png")

    with page.expect_response("**/tp/v1/events") as closed:
        dialog.get_by_role("button", name="Close").click()
    assert closed.value.json() == {"stored": 1}
    assert page.locator(POPUP).count() == 0

    with page.expect_response("**/tp/v1/decide") as decided:
        page.reload()
    assert decided.value.json()["popups"] == []
    leave_through_top(page)
    page.wait_for_timeout(300)
    assert page.locator(POPUP).count() == 0
    campaign_events = "SELECT type FROM events WHERE campaign IS NOT NULL ORDER BY id"
    assert [row[0] for row in stored(live_server, campaign_events)] == [
        "impression",
        "close",
    ]
    # Asked once: the banner does not come back once answered.
    assert stored(live_server, "SELECT count(*) FROM consent_log") == [(1,)]


def test_before_consent_no_cookie_and_nothing_stored(api_page, external_consent) -> None:  # type: ignore[no-untyped-def]
    page = api_page
    with page.expect_response("**/tp/v1/decide"):
        page.goto(PRODUCT)
    leave_through_top(page)
    page.locator(POPUP).wait_for()  # a context-only decision: no identifier needed
    page.locator(POPUP).get_by_role("button", name="No thanks").click()
    page.wait_for_timeout(300)
    assert page.context.cookies() == []
    assert stored(external_consent, "SELECT count(*) FROM events") == [(0,)]
    assert stored(external_consent, "SELECT count(*) FROM visitors") == [(0,)]


def test_a_repeated_refusal_from_a_consent_tool_sends_nothing(api_page, external_consent) -> None:  # type: ignore[no-untyped-def]
    page = api_page
    consent_requests: list[str] = []
    page.on("request", lambda r: "/v1/consent" in r.url and consent_requests.append(r.url))
    page.add_init_script(  # the tool repeats it on every page
        "window.touchpoint = window.touchpoint || function () {"
        " (touchpoint.q = touchpoint.q || []).push(arguments) }; touchpoint('consent', {});"
    )
    with page.expect_response("**/tp/v1/decide"):
        page.goto(PRODUCT)
    with page.expect_response("**/tp/v1/decide"):
        page.goto("/demo/cart.html")
    page.wait_for_timeout(200)
    assert page.context.cookies() == []
    assert consent_requests == []  # refusing changes nothing for an unknown visitor
    assert stored(external_consent, "SELECT count(*) FROM consent_log") == [(0,)]


def test_withdrawal_expires_the_cookie(page, live_server) -> None:  # type: ignore[no-untyped-def]
    page.goto(PRODUCT)
    accept_consent(page)
    assert [c["name"] for c in page.context.cookies()] == ["tp_vid"]
    with page.expect_response("**/tp/v1/consent"):
        page.evaluate("touchpoint('consent', {})")
    assert page.context.cookies() == []
    assert stored(live_server, "SELECT granted FROM consent_log ORDER BY id") == [
        ('["marketing", "measurement", "personalisation"]',),
        ("[]",),
    ]


def test_popup_closed_before_consent_stays_closed_on_that_page(api_page) -> None:  # type: ignore[no-untyped-def]
    page = api_page
    page.goto(PRODUCT)
    leave_through_top(page)
    page.locator(POPUP).get_by_role("button", name="No thanks").click()
    # Decides again, now with consent: the server knows no close yet.
    with page.expect_response("**/tp/v1/decide"):
        page.evaluate("touchpoint('consent', ['measurement', 'personalisation', 'marketing'])")
    leave_through_top(page)
    page.wait_for_timeout(300)
    assert page.locator(POPUP).count() == 0


def test_close_after_consent_given_while_the_popup_is_open_is_stored(api_page) -> None:  # type: ignore[no-untyped-def]
    page = api_page
    page.goto(PRODUCT)
    leave_through_top(page)
    page.locator(POPUP).wait_for()
    with page.expect_response("**/tp/v1/consent"):
        page.evaluate("touchpoint('consent', {marketing: true})")
    with page.expect_response("**/tp/v1/events") as closed:
        page.locator(POPUP).get_by_role("button", name="Close").click()
    assert closed.value.json() == {"stored": 1}


def test_popup_is_an_accessible_dialog(page) -> None:  # type: ignore[no-untyped-def]
    page.goto(PRODUCT)
    accept_consent(page)
    page.get_by_label("Size").focus()
    leave_through_top(page)
    dialog = page.get_by_role("dialog", name="Wait — 10 % off your first order")
    dialog.wait_for()
    assert dialog.get_attribute("aria-modal") == "true"
    # Focus moved into the dialog and Tab keeps it there.
    focused = page.evaluate("document.activeElement.shadowRoot.activeElement.textContent")
    assert focused == "Get my code"
    for _ in range(4):
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.hasAttribute('data-tp-popup')")
    page.keyboard.press("Escape")
    assert page.locator(POPUP).count() == 0
    assert page.evaluate("document.activeElement.name") == "size"  # focus returned


def test_no_exit_intent_inside_the_page_or_on_other_pages(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/demo/")
    accept_consent(page)
    leave_through_top(page)  # the home page is not in the campaign's audience
    page.wait_for_timeout(300)
    assert page.locator(POPUP).count() == 0
    page.goto(PRODUCT)
    page.mouse.move(600, 400)
    page.wait_for_timeout(1100)
    page.mouse.move(600, 30, steps=5)  # onto the fixed header: still inside the page
    page.mouse.move(10, 400, steps=5)
    page.wait_for_timeout(300)
    assert page.locator(POPUP).count() == 0


def test_cancelled_show_event_keeps_the_popup_away(api_page) -> None:  # type: ignore[no-untyped-def]
    page = api_page
    page.goto(PRODUCT)
    page.evaluate(
        "document.addEventListener('touchpoint:show',"
        " e => { window.shown = e.detail; e.preventDefault() })"
    )
    leave_through_top(page)
    page.wait_for_function("window.shown !== undefined")
    assert page.evaluate("window.shown") == {
        "campaign": "first-order-coupon",
        "variant": "ten-percent",
    }
    assert page.locator(POPUP).count() == 0


def test_cart_coupon_uses_the_context_the_page_pushed(page, live_server) -> None:  # type: ignore[no-untyped-def]
    page.goto("/demo/cart.html")
    accept_consent(page)
    page.mouse.move(600, 400)
    page.wait_for_timeout(2100)  # the cart coupon arms exit intent after 2 s
    page.mouse.move(600, 10, steps=5)
    page.mouse.move(600, -20)
    dialog = page.locator(POPUP)
    dialog.wait_for()
    assert "Your cart is worth 129.00 EUR" in dialog.inner_text()
    page.screenshot(path=ARTIFACTS / "cart-coupon.png", animations="disabled")


def test_the_cart_note_experiment_fills_its_slot(page, live_server) -> None:  # type: ignore[no-untyped-def]
    """The demo experiment (rules/cart-note.yaml): one of its two notes replaces the cart's
    default, and the visitor's impression of that variant is stored."""
    page.goto("/demo/cart.html")
    accept_consent(page)  # the note filled before it is not counted: nobody may be, yet
    with page.expect_response("**/tp/v1/events"):
        page.reload()
    note = page.locator('[data-tp-slot="cart-note"]')
    text = note.inner_text()
    assert "Free shipping" in text or "Free returns for 30 days" in text
    variant = "free-shipping" if "Free shipping" in text else "free-returns"
    page.screenshot(path=ARTIFACTS / "cart-note.png", animations="disabled")
    page.wait_for_timeout(300)
    assert stored(live_server, "SELECT type, variant FROM events WHERE campaign = 'cart-note'") == [
        ("impression", variant)
    ]


@pytest.fixture
def short_visits(tmp_path: Path):  # type: ignore[no-untyped-def]
    """The demo rules with visits that end after 2 idle seconds, so a test can return."""
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    site = rules / "site.yaml"
    site.write_text(site.read_text().replace("session_idle: 30m", "session_idle: 2s"))
    (tmp_path / "short").mkdir()
    server = LiveServer(tmp_path / "short", "--rules-dir", str(rules))
    yield server
    server.stop()


def test_returning_runner_gets_the_personalised_hero(browser, short_visits) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(
        base_url=short_visits.url, viewport={"width": 1200, "height": 800}
    )
    page = context.new_page()
    try:
        page.goto("/demo/")
        assert "Gear for every trail" in page.locator("[data-tp-slot=hero]").inner_text()
        accept_consent(page)
        for _ in range(2):
            with page.expect_response("**/tp/v1/decide"):
                page.goto("/demo/category/running.html")
        page.wait_for_timeout(2100)  # the visit ends
        with page.expect_response("**/tp/v1/decide") as decided:
            page.goto("/demo/")
        assert decided.value.json()["slots"]["hero"]["campaign"] == "hero-by-interest"
        hero = page.locator("[data-tp-slot=hero]")
        page.wait_for_function("document.querySelector('[data-tp-filled]') !== null")
        assert "Welcome back, runner" in hero.inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / "hero-returning.png")
    finally:
        context.close()


# On a phone: the demo pages are long enough for every trigger their campaigns use.
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def swipe(page, cdp, start: int, end: int, ms: int, steps: int = 10) -> None:  # type: ignore[no-untyped-def]
    """A finger on the screen from y ``start`` to y ``end`` in about ``ms``: real touch
    events, which the browser turns into scrolling as it does for a visitor's finger."""
    point = {"x": 195, "y": start}
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [point]})
    for i in range(1, steps + 1):
        point = {"x": 195, "y": start + (end - start) * i / steps}
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
        page.wait_for_timeout(ms / steps)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def read_down(page, cdp, swipes: int) -> None:  # type: ignore[no-untyped-def]
    for _ in range(swipes):
        swipe(page, cdp, 700, 200, 500)
        page.wait_for_timeout(300)


@pytest.mark.parametrize(
    ("path", "armed_after", "title"),
    [
        (PRODUCT, 1100, "Wait — 10 % off your first order"),
        ("/demo/cart.html", 2100, "5 € off this order"),
    ],
)
def test_touch_exit_intent_on_a_phone(
    browser, live_server, path: str, armed_after: int, title: str
) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=live_server.url, **PHONE)
    page = context.new_page()
    try:
        page.goto(path)
        accept_consent(page)
        cdp = context.new_cdp_session(page)
        page.wait_for_timeout(armed_after)  # the campaign's min_seconds
        read_down(page, cdp, 2)  # reading down the page, past a quarter of it
        assert page.evaluate("pageYOffset") >= 900
        assert page.locator(POPUP).count() == 0
        swipe(page, cdp, 200, 750, 150, steps=5)  # the flick back up, towards the address bar
        dialog = page.get_by_role("dialog", name=title)
        dialog.wait_for(timeout=2000)
        if path == PRODUCT:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=ARTIFACTS / "exit-intent-phone.png", animations="disabled")
    finally:
        context.close()


def test_scroll_popup_on_a_phone(browser, live_server) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=live_server.url, **PHONE)
    page = context.new_page()
    try:
        page.goto("/demo/category/running.html")
        accept_consent(page)
        cdp = context.new_cdp_session(page)
        swipe(page, cdp, 700, 200, 500)
        page.wait_for_timeout(300)
        assert page.locator(POPUP).count() == 0  # a screen's worth: not half of the page
        read_down(page, cdp, 3)
        page.get_by_role("dialog", name="5 € off your next order").wait_for(timeout=2000)
    finally:
        context.close()
