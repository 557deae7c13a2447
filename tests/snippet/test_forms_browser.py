"""Forms in popups, in real Chromium: the example newsletter signup's steps, inline validation,
the honeypot, what a sent form records, and copying a coupon code (docs/rules.md#forms)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from touchpoint.render.templates import SAMPLE_CONTEXT, Templates

from . import test_snippet_browser as snippet_tests
from .test_snippet_browser import INDEX, POPUP, events, new_page, open_page, seen, shown

pytestmark = pytest.mark.browser
harness = snippet_tests.harness
ROOT = Path(__file__).resolve().parent.parent.parent
SHOTS = Path("/tmp/shots")
EVERYTHING = ["marketing", "measurement", "personalisation"]
SIZES = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "mobile": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}


def signup(style: str = "slide-in", first_name: str | None = None) -> dict[str, Any]:
    """The example newsletter-signup popup as the server renders it."""
    visitor = {**SAMPLE_CONTEXT["visitor"], "first_name": first_name}
    html = Templates(ROOT / "rules" / "templates").render(
        "newsletter-signup.html", {**SAMPLE_CONTEXT, "visitor": visitor}
    )
    return {
        "campaign": "newsletter-signup",
        "variant": "five-euro",
        "style": style,
        "trigger": {"on": "load"},
        "control": False,
        "html": html,
    }


@pytest.fixture
def page(browser, harness):  # type: ignore[no-untyped-def]
    errors: list[str] = []
    page = new_page(browser, harness, errors, [], **SIZES["desktop"])
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    yield page
    page.context.close()
    assert errors == [], f"the page threw: {errors}"


def popup_text(page) -> str:  # type: ignore[no-untyped-def]
    return str(page.locator(POPUP).inner_text())


def status(page) -> str:  # type: ignore[no-untyped-def]
    return str(page.locator(POPUP).locator("xpath=..").get_by_role("status").text_content())


def sent(harness, kind: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    return [event for event in harness.log()["events"] if event["type"] == kind]


def test_steps_validation_and_what_a_sent_form_records(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [signup()]}, granted=EVERYTHING)
    open_page(page, INDEX)
    page.get_by_role("dialog", name="5 € off your next order").wait_for()
    assert page.get_by_label("E-mail").is_hidden()  # the teaser first
    page.get_by_role("button", name="Get my 5 €").click()
    email = page.get_by_label("E-mail")
    assert page.get_by_label("First name").evaluate("el => el === el.getRootNode().activeElement")

    email.fill("not-an-address")
    page.get_by_role("button", name="Sign up").click()
    message = "Please enter your e-mail address, like name@example.com."
    assert email.get_attribute("aria-invalid") == "true"
    described = email.get_attribute("aria-describedby")
    assert page.locator(f"#{described}").inner_text() == message
    assert email.evaluate("el => el === el.getRootNode().activeElement")
    assert status(page) == message  # announced
    assert seen(page, "convert") == []

    page.get_by_label("First name").fill("Ada")
    email.fill("ada@example.com")
    page.get_by_label("I mostly go").select_option("hiking")
    with page.expect_response("**/tp/v1/identify"):
        page.get_by_role("button", name="Sign up").click()
    assert email.get_attribute("aria-invalid") == "false"
    page.get_by_text("Thanks for signing up!").wait_for()
    assert page.get_by_role("button", name="Sign up").is_hidden()
    assert harness.log()["identify"] == [{"email": "ada@example.com", "first_name": "Ada"}]
    assert [event["detail"]["campaign"] for event in seen(page, "convert")] == ["newsletter-signup"]
    assert ("convert", "newsletter-signup") in events(harness, at_least=2)
    page.wait_for_timeout(300)
    submits = sent(harness, "form_submit")
    assert [(e["name"], e["props"]) for e in submits] == [
        ("newsletter-signup", {"interest": "hiking"})  # no e-mail, no name
    ]

    page.get_by_role("button", name="Copy the code").click()
    page.get_by_role("button", name="Code copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == "TRAIL5"
    assert status(page) == "Code copied"


def test_a_known_name_is_filled_in(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [signup(first_name="Ada")]})
    open_page(page, INDEX)
    page.get_by_role("button", name="Get my 5 €").click()
    assert "Where shall we send your tips, Ada?" in popup_text(page)
    assert page.get_by_label("First name").input_value() == "Ada"


def test_a_filled_honeypot_pretends_success_and_sends_nothing(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [signup()]}, granted=EVERYTHING)
    open_page(page, INDEX)
    page.get_by_role("button", name="Get my 5 €").click()
    page.get_by_label("E-mail").fill("bot@example.com")
    page.locator(POPUP).locator("[name=tp_hp]").fill("http://spam.example")  # as a bot does
    page.get_by_role("button", name="Sign up").click()
    page.get_by_text("Thanks for signing up!").wait_for()
    page.wait_for_timeout(300)
    log = harness.log()
    assert log["identify"] == []
    assert [e["type"] for e in log["events"] if "campaign" in e] == ["impression"]
    assert sent(harness, "form_submit") == []
    assert seen(page, "convert") == []


def test_without_consent_the_form_works_and_nothing_is_sent(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [signup(style="modal")]})
    open_page(page, INDEX)
    page.get_by_role("button", name="Get my 5 €").click()
    page.get_by_label("E-mail").fill("ada@example.com")
    page.get_by_role("button", name="Sign up").click()
    page.get_by_text("Thanks for signing up!").wait_for()
    page.wait_for_timeout(300)
    log = harness.log()
    assert (log["identify"], log["events"]) == ([], [])
    assert shown(page) == ["newsletter-signup"]


def test_the_copy_fallback_without_the_clipboard_api(page, harness) -> None:  # type: ignore[no-untyped-def]
    page.add_init_script("Object.defineProperty(navigator, 'clipboard', {value: undefined})")
    page.add_init_script(
        "document.execCommand = (command) => { window.copied = String(getSelection()) ||"
        " document.querySelector('[data-tp-popup]').shadowRoot.activeElement.value;"
        " return true }"
    )
    harness.script({"popups": [signup(style="modal")]})
    open_page(page, INDEX)
    page.get_by_role("button", name="Get my 5 €").click()
    page.get_by_label("E-mail").fill("ada@example.com")
    page.get_by_role("button", name="Sign up").click()
    page.get_by_role("button", name="Copy the code").click()
    page.get_by_role("button", name="Code copied").wait_for()
    assert page.evaluate("window.copied") == "TRAIL5"


@pytest.mark.parametrize("size", sorted(SIZES))
@pytest.mark.parametrize("style", ["modal", "slide-in"])
def test_screenshots_of_each_step(browser, harness, size: str, style: str) -> None:  # type: ignore[no-untyped-def]
    errors: list[str] = []
    page = new_page(browser, harness, errors, [], **SIZES[size])
    harness.script({"popups": [signup(style=style)]})
    open_page(page, INDEX)
    SHOTS.mkdir(exist_ok=True)
    shot = SHOTS / f"form-{style}-{size}"
    page.locator(POPUP).wait_for()
    page.screenshot(path=f"{shot}-1-teaser.png", animations="disabled")
    page.get_by_role("button", name="Get my 5 €").click()
    page.get_by_label("E-mail").fill("ada@")
    page.get_by_role("button", name="Sign up").click()
    page.screenshot(path=f"{shot}-2-error.png", animations="disabled")
    page.get_by_label("E-mail").fill("ada@example.com")
    page.get_by_role("button", name="Sign up").click()
    page.get_by_text("Thanks for signing up!").wait_for()
    page.screenshot(path=f"{shot}-3-success.png", animations="disabled")
    box = page.locator(POPUP).bounding_box()
    width = SIZES[size]["viewport"]["width"]  # type: ignore[index]
    assert box["x"] >= 0 and box["x"] + box["width"] <= width
    page.context.close()
    assert errors == []
