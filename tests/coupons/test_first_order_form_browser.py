"""The first-order coupon's form against the real server, in real Chromium: newsletter consent
is a box of its own, never ticked in advance, usable by keyboard; the code shows whether it is
ticked or not (the coupon is not tied to the newsletter); the answer reaches the shop as a
boolean in the form.submitted webhook, received on 127.0.0.1 and verified as a receiver would.
In English and, for browsers preferring German, in German; screenshots of the form."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..conftest import PRODUCT, ROOT, LiveServer
from ..snippet.test_demo_browser import accept_consent, leave_through_top
from ..snippet.test_snippet_browser import POPUP
from ..webhooks.test_delivery import SECRET, Receiver, verified, wait_until

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).parent.parent / "artifacts"
REVEAL = "**/tp/v1/coupons/reveal"
SIZES = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}
TEXTS = {
    "en": {
        "dialog": "Wait — 10 % off your first order",
        "next": "Get my code",
        "email": "E-mail",
        "box": re.compile(r"^Yes, send me news and offers by e-mail"),
        "submit": "Show my code",
        "success": "Your code for 10 % off",
        "either": "You get your code with or without the newsletter.",
    },
    "de": {
        "dialog": "Warte — 10 % Rabatt auf deine erste Bestellung",
        "next": "Code holen",
        "email": "E-Mail",
        "box": re.compile(r"^Ja, schickt mir Neuigkeiten und Angebote per E-Mail"),
        "submit": "Code anzeigen",
        "success": "Dein Code für 10 % Rabatt",
        "either": "Deinen Code bekommst du auch ohne Newsletter.",
    },
}


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LiveServer, Receiver]]:
    """The demo shop with the example rules and a `forms` endpoint for form.submitted."""
    receiver = Receiver()
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    site = rules / "site.yaml"
    site.write_text(
        site.read_text() + "webhooks:\n"
        f"  forms: {{url: '{receiver.url}', secret_env: FORMS_SECRET, events: [form.submitted]}}\n"
    )
    monkeypatch.setenv("FORMS_SECRET", SECRET)
    server = LiveServer(tmp_path, "--rules-dir", str(rules), "--webhook-poll-seconds", "0.05")
    yield server, receiver
    server.stop()
    receiver.stop()


def to_the_form(page: Any, texts: dict[str, Any]) -> Any:
    """A consenting visitor leaves a product page, opens the teaser: the form's checkbox."""
    page.goto(PRODUCT)
    accept_consent(page)
    leave_through_top(page)
    page.get_by_role("dialog", name=texts["dialog"]).wait_for()
    page.get_by_role("button", name=texts["next"]).click()
    return page.locator(POPUP).get_by_role("checkbox", name=texts["box"])


def forms_received(receiver: Receiver) -> list[dict[str, Any]]:
    with receiver.lock:
        return [json.loads(r["body"]) for r in receiver.requests if r["event"] == "form.submitted"]


def sign_up(
    browser: Any, shop: tuple[LiveServer, Receiver], language: str, *, ticked: bool
) -> dict[str, Any]:
    """A fresh visitor sends the form, ticking the box (by keyboard) or not; the code it
    revealed, and the form.submitted webhook that reached the receiver."""
    server, receiver = shop
    texts = TEXTS[language]
    before = len(forms_received(receiver))
    locale = "de-DE" if language == "de" else "en-GB"
    context = browser.new_context(base_url=server.url, locale=locale, **SIZES["desktop"])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    box = to_the_form(page, texts)
    assert not box.is_checked()  # never ticked in advance
    assert page.locator(POPUP).get_by_text(texts["either"]).is_visible()
    page.get_by_label(texts["email"], exact=True).fill(f"lea-{ticked}@example.com")
    if ticked:  # by keyboard: Tab from the address to the box, Space ticks it
        page.keyboard.press("Tab")
        assert box.evaluate("el => el === el.getRootNode().activeElement")
        page.keyboard.press("Space")
        assert box.is_checked()
    with page.expect_response(REVEAL) as revealed:
        page.get_by_role("button", name=texts["submit"]).click()
    assert revealed.value.status == 200, revealed.value.text()
    code = revealed.value.json()["code"]
    page.get_by_role("heading", name=texts["success"]).wait_for()
    page.locator(POPUP).get_by_text(code).wait_for()
    context.close()
    assert errors == [], errors
    wait_until(lambda: len(forms_received(receiver)) > before)
    return {"code": code, "webhook": forms_received(receiver)[-1]}


@pytest.mark.parametrize("language", ["en", "de"])
def test_the_newsletter_box_records_consent_and_the_code_shows_either_way(
    browser: Any, shop: tuple[LiveServer, Receiver], language: str
) -> None:
    for ticked in (False, True):
        sent = sign_up(browser, shop, language, ticked=ticked)
        assert sent["code"] != "WELCOME10"  # the visitor's own code, ticked or not
        data = sent["webhook"]["data"]
        assert data["form"] == "first-order-coupon"
        assert data["fields"] == {"newsletter_consent": ticked}
        assert "lea-" not in json.dumps(data)  # the address is not a form field
    for request in shop[1].requests:
        verified(request)  # signed as Standard Webhooks


@pytest.mark.parametrize("language", ["en", "de"])
def test_screenshots_of_the_form(browser: Any, live_server: LiveServer, language: str) -> None:
    """The form with its unticked box, as a visitor sees it on a desktop and on a phone."""
    locale = "de-DE" if language == "de" else "en-GB"
    context = browser.new_context(base_url=live_server.url, locale=locale, **SIZES["desktop"])
    page = context.new_page()
    box = to_the_form(page, TEXTS[language])
    page.get_by_label(TEXTS[language]["email"], exact=True).fill("lea@example.com")
    page.keyboard.press("Tab")  # the box, with its focus ring
    ARTIFACTS.mkdir(exist_ok=True)
    for size, options in SIZES.items():
        page.set_viewport_size(options["viewport"])  # type: ignore[arg-type]
        path = ARTIFACTS / f"first-order-form-{language}-{size}.png"
        page.screenshot(path=path, animations="disabled")
        width = options["viewport"]["width"]  # type: ignore[index]
        for element in (page.locator(POPUP), box):
            found = element.bounding_box()
            assert found is not None and found["x"] >= 0 and found["x"] + found["width"] <= width
        checkbox = box.bounding_box()
        assert checkbox is not None and checkbox["width"] >= 16  # easy to hit with a finger
    context.close()
