"""The console in real Chromium against a real server: sign-in, a wrong password, a CSRF
refusal, sign-out, the keyboard, and screenshots at laptop and tablet size
(/tmp/console-shots/)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from ..conftest import LiveServer
from .helpers import add_user_with_cli

pytestmark = pytest.mark.browser
SHOTS = Path("/tmp/console-shots")
PASSWORD = "correct horse battery"
SIZES = {"laptop": {"width": 1366, "height": 900}, "tablet": {"width": 820, "height": 1180}}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    """The demo server with one editor, added with the command as an operator would, and one
    visitor who saw the first-order popup (through the public endpoints)."""
    data = tmp_path / "live-data"
    data.mkdir()
    add_user_with_cli(data)
    server = LiveServer(tmp_path)
    with httpx.Client(base_url=server.url) as visitor:
        visitor.post("/tp/v1/consent", json={"granted": ["marketing", "measurement"]})
        event = {"type": "impression", "campaign": "first-order-coupon", "variant": "ten-percent"}
        visitor.post("/tp/v1/events", json={"events": [event]})
    yield server
    server.stop()


def new_page(browser: Any, server: LiveServer, size: str = "laptop", **options: Any) -> Any:
    context = browser.new_context(base_url=server.url, viewport=SIZES[size], **options)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    # a CSP violation is reported on the console ("Refused to load ..."), not thrown
    page.on(
        "console",
        lambda message: page.errors.append(message.text) if "Refused" in message.text else None,
    )
    return page


def sign_in(page: Any, password: str = PASSWORD, *, user: str = "ana") -> None:
    page.goto("/tp/admin/")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_the_overview_and_sign_out(browser, server: LiveServer) -> None:  # type: ignore[no-untyped-def]
    page = new_page(browser, server)
    sign_in(page, "not the password")
    assert page.get_by_role("alert").inner_text() == "The user name or the password is wrong."
    assert page.get_by_label("Password").get_attribute("aria-invalid") == "true"
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/tp/admin/results")
    table = page.locator("table.results")  # the chart's legend is a table too (uPlot)
    assert "first-order-coupon" in table.inner_text()
    assert page.get_by_role("link", name="Results").get_attribute("aria-current") == "page"
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/tp/admin/signin?signed_out=1")
    assert "You have signed out." in page.get_by_role("status").inner_text()
    page.goto("/tp/admin/results")
    assert "/tp/admin/signin" in page.url
    assert page.errors == []  # no CSP violation, no script error


def test_a_form_with_a_wrong_csrf_token_is_refused(browser, server: LiveServer) -> None:  # type: ignore[no-untyped-def]
    page = new_page(browser, server)
    sign_in(page)
    page.wait_for_url("**/tp/admin/results")
    page.locator("input[name=csrf]").evaluate("input => { input.value = 'forged' }")
    page.get_by_role("button", name="Sign out").click()
    assert "This form has expired or was sent from another site" in page.inner_text("main")
    page.goto("/tp/admin/results")  # still signed in: the forged sign-out did nothing
    assert page.url.endswith("/tp/admin/results")


def test_the_keyboard_reaches_the_skip_link_first(browser, server: LiveServer) -> None:  # type: ignore[no-untyped-def]
    page = new_page(browser, server)
    sign_in(page)
    page.wait_for_url("**/tp/admin/results")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#main"


@pytest.mark.parametrize("size", list(SIZES))
def test_screenshots(browser, server: LiveServer, size: str) -> None:  # type: ignore[no-untyped-def]
    SHOTS.mkdir(exist_ok=True)
    for lang in ("en", "de"):
        page = new_page(browser, server, size, locale=lang)
        page.goto("/tp/admin/signin")
        page.screenshot(path=SHOTS / f"signin-{lang}-{size}.png", full_page=True)
        sign_in(page) if lang == "en" else _anmelden(page)
        page.wait_for_url("**/tp/admin/results")
        page.screenshot(path=SHOTS / f"results-{lang}-{size}.png", full_page=True)
        # the table fits or scrolls inside its own box, never the whole page sideways
        assert page.evaluate("document.documentElement.scrollWidth") <= SIZES[size]["width"]
        assert page.errors == []


def _anmelden(page: Any) -> None:
    page.get_by_label("Benutzername").fill("ana")
    page.get_by_label("Passwort").fill(PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
