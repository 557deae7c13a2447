"""Coupon codes in popups, in real Chromium (docs/rules.md#coupon-codes): revealed when their
element comes into sight, with expiry and countdown, copied; the fallback when none can be had;
then the example first-order coupon end to end against the real server."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from touchpoint.render.templates import SAMPLE_CONTEXT, Templates

from ..conftest import PRODUCT, page_on
from ..snippet import test_snippet_browser as snippet_tests
from ..snippet.test_demo_browser import accept_consent, leave_through_top
from ..snippet.test_snippet_browser import INDEX, POPUP, new_page, open_page

pytestmark = pytest.mark.browser
harness = snippet_tests.harness
ROOT = Path(__file__).resolve().parent.parent.parent
ARTIFACTS = Path(__file__).parent.parent / "artifacts"
SIZES = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "mobile": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}
EXPIRES = 1781956800  # 2026-06-20 12:00 UTC
REVEAL = "**/tp/v1/coupons/reveal"


def example(template: str, campaign: str, variant: str, trigger: str = "load") -> dict[str, Any]:
    """An example coupon template as the server renders it, in a decide answer's popup."""
    context = {**SAMPLE_CONTEXT, "context": {**SAMPLE_CONTEXT["context"], "cart_value": 129.0}}
    html = Templates(ROOT / "rules" / "templates").render(template, context)
    return {
        "campaign": campaign,
        "variant": variant,
        "style": "modal",
        "trigger": {"on": trigger, **({"selector": "#buy"} if trigger == "click" else {})},
        "control": False,
        "html": html,
    }


CART = example("cart-coupon.html", "cart-coupon", "five-euro-off")
FIRST_ORDER = example("first-order-coupon.html", "first-order-coupon", "ten-percent")


def code_of(code: str, expires_at: int | None = None) -> dict[str, Any]:
    return {"body": {"code": code, "pool": "welcome", "expires_at": expires_at}}


@pytest.fixture
def page(browser, harness):  # type: ignore[no-untyped-def]
    errors: list[str] = []
    page = new_page(browser, harness, errors, [], timezone_id="Europe/Berlin", **SIZES["desktop"])
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    yield page
    page.context.close()
    assert errors == [], f"the page threw: {errors}"


def status(page) -> str:  # type: ignore[no-untyped-def]
    return str(page.locator(POPUP).locator("xpath=..").get_by_role("status").text_content())


def code_shown(page) -> str:  # type: ignore[no-untyped-def]
    return str(page.locator(POPUP).locator(".tp-code").inner_text())


def through_the_form(page) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("button", name="Get my code").click()
    page.get_by_label("E-mail", exact=True).fill("ada@example.com")
    page.get_by_role("button", name="Show my code").click()
    page.get_by_role("heading", name="Your code for 10 % off").wait_for()


def test_a_code_in_the_first_step_is_revealed_as_the_popup_shows(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [CART]}, granted=["marketing"], coupon=code_of("CART-7K2P-Q9XD"))
    with page.expect_response(REVEAL):
        open_page(page, INDEX)
    page.locator(POPUP).get_by_text("CART-7K2P-Q9XD").wait_for()
    assert harness.log()["reveal"] == [{"campaign": "cart-coupon", "variant": "five-euro-off"}]
    assert status(page) == "CART-7K2P-Q9XD"  # announced

    page.get_by_role("button", name="Copy the code").click()
    page.get_by_role("button", name="Code copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == "CART-7K2P-Q9XD"
    assert status(page) == "Code copied"


def test_a_code_in_the_success_step_is_revealed_only_after_the_form(page, harness) -> None:  # type: ignore[no-untyped-def]
    coupon = code_of("WELCOME-4F7K-2M9Q", EXPIRES)
    harness.script({"popups": [FIRST_ORDER]}, granted=["marketing"], coupon=coupon)
    open_page(page, INDEX)
    page.get_by_role("button", name="Get my code").click()
    page.get_by_label("E-mail", exact=True).fill("ada@example.com")
    page.wait_for_timeout(200)
    assert harness.log()["reveal"] == []  # the teaser and the form reveal nothing
    with page.expect_response(REVEAL):
        page.get_by_role("button", name="Show my code").click()
    page.locator(POPUP).get_by_text("WELCOME-4F7K-2M9Q").wait_for()
    expiry = page.locator(POPUP).locator("[data-tp-coupon-expires]")
    assert expiry.inner_text() == "June 20, 2026"  # <html lang="en">
    assert harness.log()["reveal"] == [{"campaign": "first-order-coupon", "variant": "ten-percent"}]
    page.get_by_role("button", name="Copy the code").click()  # focused by the success step
    page.get_by_role("button", name="Code copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == "WELCOME-4F7K-2M9Q"


def test_the_countdown_counts_down_in_the_page_language(page, harness) -> None:  # type: ignore[no-untyped-def]
    html = (
        '<h2>Flash sale</h2><p class="tp-code" data-tp-coupon>SALE</p>'
        "<p>Ends <span data-tp-coupon-expires>soon</span>, in <span data-tp-countdown>two days"
        "</span>.</p>"
    )
    left = 2 * 86400 + 3 * 3600 + 12 * 60 + 45
    expires = int(time.time()) + left
    flash = {**CART, "campaign": "flash", "trigger": {"on": "click", "selector": "#buy"}}
    harness.script(
        {"popups": [{**flash, "html": html}]},
        granted=["marketing"],
        coupon=code_of("SALE-1", expires),
    )
    open_page(page, INDEX)
    page.evaluate("document.documentElement.lang = 'de'")
    with page.expect_response(REVEAL):
        page.click("#buy")
    countdown = page.locator(POPUP).locator("[data-tp-countdown]")
    page.locator(POPUP).get_by_text("SALE-1").wait_for()
    first = countdown.inner_text()
    assert re.fullmatch(r"2 Tage 03:12:(4[0-5])", first), first
    page.wait_for_function(
        "t => document.querySelector('[data-tp-popup]').shadowRoot"
        ".querySelector('[data-tp-countdown]').textContent !== t",
        arg=first,
    )
    assert re.fullmatch(r"2 Tage 03:12:[34]\d", countdown.inner_text())
    assert re.fullmatch(
        r"\d{1,2}\. \w+ 20\d\d",
        page.locator(POPUP).locator("[data-tp-coupon-expires]").inner_text(),
    )


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 410, "body": {"type": "about:blank", "title": "Gone", "status": 410}},
        {"status": 403, "body": {"type": "about:blank", "title": "Forbidden", "status": 403}},
        {"status": 500, "body": {}},
        {"status": 200, "body": {}},  # no code at all
    ],
)
def test_without_a_code_the_fallback_stays(page, harness, answer) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [CART]}, granted=["marketing"], coupon=answer)
    with page.expect_response(REVEAL):
        open_page(page, INDEX)
    page.wait_for_timeout(200)
    assert code_shown(page) == "CART5-OFF"
    page.get_by_role("button", name="Copy the code").click()
    page.get_by_role("button", name="Code copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == "CART5-OFF"


def test_without_marketing_consent_the_server_decides(page, harness) -> None:  # type: ignore[no-untyped-def]
    """A shared code needs no consent, so the snippet asks whatever was granted; the server
    refuses a visitor's own code without marketing (403: the fallback stays, see above)."""
    harness.script({"popups": [CART]}, granted=["measurement", "personalisation"])
    open_page(page, INDEX)
    page.locator(POPUP).wait_for()
    page.locator(POPUP).get_by_text("CODE-cart-coupon-1").wait_for()
    assert [r["campaign"] for r in harness.log()["reveal"]] == ["cart-coupon"]


def test_a_bot_filling_the_trap_reveals_nothing(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [FIRST_ORDER]}, granted=["marketing"])
    open_page(page, INDEX)
    page.get_by_role("button", name="Get my code").click()
    page.get_by_label("E-mail", exact=True).fill("bot@example.com")
    page.locator(POPUP).locator("[name=tp_hp]").fill("http://spam.example")
    page.get_by_role("button", name="Show my code").click()
    page.get_by_role("heading", name="Your code for 10 % off").wait_for()
    page.wait_for_timeout(300)
    assert harness.log()["reveal"] == []
    assert code_shown(page) == "WELCOME10"


def test_a_preview_shows_a_sample_code_and_asks_for_none(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [CART]}, granted=["marketing"])
    open_page(page, INDEX + "?tp_preview=token")
    page.locator(POPUP).get_by_text("SAMPLE-CODE").wait_for()
    page.wait_for_timeout(200)
    assert harness.log()["reveal"] == []


@pytest.mark.parametrize("size", sorted(SIZES))
def test_screenshots_of_the_revealed_code(browser, harness, size: str) -> None:  # type: ignore[no-untyped-def]
    errors: list[str] = []
    page = new_page(browser, harness, errors, [], **SIZES[size])
    expires = int(time.time()) + 14 * 86400
    harness.script(
        {"popups": [FIRST_ORDER]},
        granted=["marketing"],
        coupon=code_of("WELCOME-4F7K-2M9Q", expires),
    )
    open_page(page, INDEX)
    through_the_form(page)
    page.locator(POPUP).get_by_text("WELCOME-4F7K-2M9Q").wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"coupon-success-{size}.png", animations="disabled")
    box = page.locator(POPUP).bounding_box()
    width = SIZES[size]["viewport"]["width"]  # type: ignore[index]
    assert box["x"] >= 0 and box["x"] + box["width"] <= width
    page.context.close()
    assert errors == []


# End to end: the example first-order coupon against the real server.


def test_first_order_coupon_end_to_end(browser, live_server) -> None:  # type: ignore[no-untyped-def]
    """Exit intent, the teaser, the e-mail form, the code in the success step, copied; the
    code is the visitor's from the welcome pool, and asking again returns it."""
    with page_on(browser, live_server.url) as page:
        page.set_viewport_size(SIZES["desktop"]["viewport"])
        page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        page.goto(PRODUCT)
        accept_consent(page)
        leave_through_top(page)
        page.get_by_role("dialog", name="Wait — 10 % off your first order").wait_for()
        page.get_by_role("button", name="Get my code").click()
        page.get_by_label("E-mail", exact=True).fill("ada@example.com")
        with page.expect_response(REVEAL) as revealed:
            page.get_by_role("button", name="Show my code").click()
        assert revealed.value.status == 200, revealed.value.text()
        coupon = revealed.value.json()
        code = coupon["code"]
        page.locator(POPUP).get_by_text(code).wait_for()
        assert code != "WELCOME10"
        assert status(page) == code  # announced as it is revealed
        if coupon["expires_at"]:
            expiry = page.locator(POPUP).locator("[data-tp-coupon-expires]").inner_text()
            assert expiry != "two weeks from today" and re.search(r"20\d\d", expiry)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / "coupon-end-to-end-desktop.png", animations="disabled")
        page.set_viewport_size(SIZES["mobile"]["viewport"])
        page.screenshot(path=ARTIFACTS / "coupon-end-to-end-mobile.png", animations="disabled")

        page.get_by_role("button", name="Copy the code").click()
        page.get_by_role("button", name="Code copied").wait_for()
        assert page.evaluate("navigator.clipboard.readText()") == code
        assert status(page) == "Code copied"
        # The visitor keeps their code: asking again answers the same one.
        again = page.evaluate(
            "fetch('/tp/v1/coupons/reveal', {method: 'POST', credentials: 'include', body:"
            " JSON.stringify({campaign: 'first-order-coupon', variant: 'ten-percent'})})"
            ".then(r => r.json())"
        )
        assert again["code"] == code
