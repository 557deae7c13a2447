"""Identification in real Chromium against a real server: a verified login with the same
e-mail in two browsers (a laptop and a phone) ends in one profile; an address merely typed in
the second browser opens nothing of the first's (issue 15)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..conftest import PRODUCT, LiveServer
from ..snippet.test_demo_browser import accept_consent, stored
from .test_identity import SECRET, signed

pytestmark = pytest.mark.browser


def visitor_cookie(context) -> str:  # type: ignore[no-untyped-def]
    (cookie,) = [c for c in context.cookies() if c["name"] == "tp_vid"]
    assert cookie["httpOnly"]
    return str(cookie["value"]).split(".")[0]  # the signed value starts with the visitor id


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """The demo server, sharing an identity secret with the (imaginary) shop backend."""
    server = LiveServer(tmp_path, "--identity-secret", SECRET)
    yield server
    server.stop()


def browse_and_identify(browser, live_server, email: str, *, verified: bool = True):  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(PRODUCT)
    accept_consent(page)
    before = visitor_cookie(context)
    with page.expect_response("**/tp/v1/identify") as answer:
        who: dict[str, Any] = signed(email=email) if verified else {"email": email}
        page.evaluate(f"touchpoint('identify', {json.dumps({**who, 'first_name': 'Ada'})})")
    assert answer.value.status == 200
    assert errors == []
    return context, before, answer.value.json()


def test_a_verified_login_in_a_second_browser_joins_the_same_profile(  # type: ignore[no-untyped-def]
    browser, live_server
) -> None:
    laptop, laptop_id, first = browse_and_identify(browser, live_server, "ada@example.com")
    assert first == {"identified": True, "merged": False}
    assert visitor_cookie(laptop) == laptop_id
    phone, phone_id, second = browse_and_identify(browser, live_server, " Ada@Example.com")
    assert phone_id != laptop_id  # anonymous until the identify call
    assert second == {"identified": True, "merged": True}
    assert visitor_cookie(phone) == laptop_id  # the cookie was re-issued for the profile
    rows = stored(live_server, "SELECT id, page_views, identified FROM visitors")
    assert rows == [(laptop_id, 2, 1)]  # one page view on each device, one profile
    assert stored(live_server, "SELECT kind FROM identities") == [("email",)]
    # The phone's next page view counts in the same profile.
    page = phone.new_page()
    with page.expect_response("**/tp/v1/decide"):
        page.goto(PRODUCT)
    page.wait_for_timeout(300)  # the page view is counted without waiting for the write
    assert stored(live_server, "SELECT page_views FROM visitors") == [(3,)]
    laptop.close()
    phone.close()


def test_an_address_typed_in_a_second_browser_opens_nothing(browser, live_server) -> None:  # type: ignore[no-untyped-def]
    laptop, laptop_id, _ = browse_and_identify(browser, live_server, "ada@example.com")
    phone, phone_id, answer = browse_and_identify(
        browser, live_server, "ada@example.com", verified=False
    )
    assert answer == {"identified": True, "merged": False}
    assert visitor_cookie(phone) == phone_id != laptop_id
    rows = stored(live_server, "SELECT id FROM visitors ORDER BY id")
    assert sorted(rows) == sorted([(laptop_id,), (phone_id,)])
    assert stored(live_server, "SELECT visitor_id, verified FROM identities") == [(laptop_id, 1)]
    laptop.close()
    phone.close()
