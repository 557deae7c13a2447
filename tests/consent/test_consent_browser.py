"""The consent banner and the other consent modes in real Chromium against a real server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..conftest import PRODUCT, ROOT, LiveServer
from ..databases import opened

pytestmark = pytest.mark.browser
SHOTS = Path("/tmp/shots")
BANNER = "[data-tp-consent] [role=dialog]"
TITLE = "Your privacy choices"
ALL = ["marketing", "measurement", "personalisation"]
GPC = "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true});"
# A consent management platform speaking the IAB TCF v2.2 API: it answers addEventListener
# with what the test put in window.tcData (nothing at all when that is missing).
FAKE_CMP = """
window.__tcfapi = function (command, version, callback) {
  if (command !== 'addEventListener' || version !== 2 || !window.tcData) return;
  setTimeout(function () { callback(Object.assign({listenerId: 1}, window.tcData), true); }, 50);
};
"""
GERMAN_PAGE = """<!doctype html><html lang="de"><head><meta charset="utf-8"><title>Start</title>
<script async src="/tp/t.js"></script></head><body><h1>Willkommen</h1></body></html>"""


def stored(server: LiveServer, sql: str) -> list[tuple[Any, ...]]:
    with opened(server.database) as conn:
        return conn.execute(sql).fetchall()


def server_with(tmp: Path, consent: str, *args: str) -> LiveServer:
    """The demo with another `consent:` section in site.yaml."""
    rules = tmp / "rules"
    if not rules.exists():
        shutil.copytree(ROOT / "rules", rules)
    site = ROOT / "rules" / "site.yaml"
    text = site.read_text().split("consent:")[0] + consent
    (rules / "site.yaml").write_text(text)
    return LiveServer(tmp, "--rules-dir", str(rules), *args)


class Watch:
    """The page's requests to Touchpoint, as (method, path)."""

    def __init__(self, page) -> None:  # type: ignore[no-untyped-def]
        self.requests: list[tuple[str, str]] = []
        page.on("request", self.seen)

    def seen(self, request) -> None:  # type: ignore[no-untyped-def]
        path = request.url.split("/tp/", 1)
        if len(path) == 2:
            self.requests.append((request.method, "/tp/" + path[1]))

    def to(self, endpoint: str) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[1].startswith("/tp/v1/" + endpoint)]


def new_page(browser, server: LiveServer, **options: Any):  # type: ignore[no-untyped-def]
    init = options.pop("init", None)
    viewport = options.pop("viewport", {"width": 1280, "height": 800})
    context = browser.new_context(base_url=server.url, viewport=viewport, **options)
    if init:
        context.add_init_script(init)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    return page


@pytest.fixture
def page(browser, live_server) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    page = new_page(browser, live_server)
    yield page
    page.context.close()
    assert page.errors == [], f"the page threw: {page.errors}"


def answer(page, button: str) -> Any:  # type: ignore[no-untyped-def]
    """Click a banner button; the consent request's JSON body and its answer."""
    with page.expect_response("**/tp/v1/decide"):  # decided again with the new consent
        with page.expect_response("**/tp/v1/consent") as sent:
            page.locator(BANNER).get_by_role("button", name=button).click()
        answered = sent.value.json()
    # Nothing of this page still in flight: a later expect_response must see the next page's.
    page.wait_for_load_state("networkidle")
    return sent.value.request.post_data_json, answered


def cookies(page) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {c["name"]: c["value"] for c in page.context.cookies()}


def focused(page) -> str:  # type: ignore[no-untyped-def]
    """What has focus inside the banner ('' when focus is elsewhere)."""
    found: str = page.evaluate(
        "(() => { const a = document.activeElement;"
        " if (!a || !a.hasAttribute('data-tp-consent')) return '';"
        " const inner = a.shadowRoot.activeElement;"
        " return inner ? (inner.getAttribute('role') === 'dialog' ? 'dialog'"
        " : inner.textContent || inner.name) : 'dialog'; })()"
    )
    return found


def test_banner_shows_and_nothing_is_stored_or_sent_before_an_answer(page, live_server) -> None:  # type: ignore[no-untyped-def]
    watch = Watch(page)
    with page.expect_response("**/tp/v1/decide"):
        page.goto(PRODUCT)
    dialog = page.get_by_role("dialog", name=TITLE)
    dialog.wait_for()
    assert dialog.get_attribute("aria-modal") == "true"
    assert page.locator(BANNER).get_by_role("link", name="Privacy policy").get_attribute(
        "href"
    ) == ("/demo/privacy.html")
    page.mouse.wheel(0, 600)
    page.evaluate("touchpoint('track', 'video-played')")
    page.wait_for_timeout(1200)  # past exit intent's arming: no popup over the banner either
    page.mouse.move(600, 10, steps=3)
    page.mouse.move(600, -20)
    with page.expect_response("**/tp/v1/decide"):
        page.goto("/demo/cart.html")  # leaving the page sends nothing either
    page.get_by_role("dialog", name=TITLE).wait_for()  # no answer yet: asked again
    assert page.context.cookies() == []
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0
    assert watch.to("events") == watch.to("consent") == []
    assert page.locator("[data-tp-popup]").count() == 0
    for table in ("visitors", "events", "consent_log", "campaign_state"):
        assert stored(live_server, f"SELECT count(*) FROM {table}") == [(0,)], table


def test_accept_all_grants_every_category(page, live_server) -> None:  # type: ignore[no-untyped-def]
    page.goto(PRODUCT)
    sent, answered = answer(page, "Accept all")
    assert sent == {"granted": ALL, "method": "banner-accept-all"}
    assert answered["granted"] == ALL
    assert list(cookies(page)) == ["tp_vid"]
    assert page.locator(BANNER).count() == 0
    with page.expect_response("**/tp/v1/decide") as decided:
        page.reload()
    assert decided.value.json()["consent"]["prompt"] is False
    page.wait_for_timeout(200)
    assert page.locator(BANNER).count() == 0


def test_reject_all_is_remembered_without_an_identifier(page, live_server) -> None:  # type: ignore[no-untyped-def]
    page.goto(PRODUCT)
    sent, answered = answer(page, "Reject all")
    assert sent == {"granted": [], "method": "banner-reject-all"}
    assert cookies(page) == {"tp_refused": "1"}  # the revision refused, nothing else
    for other in ("/demo/", "/demo/cart.html"):
        with page.expect_response("**/tp/v1/decide") as decided:
            page.goto(other)
        assert decided.value.json()["consent"]["prompt"] is False
    page.wait_for_timeout(200)
    assert page.locator(BANNER).count() == 0
    assert stored(live_server, "SELECT granted, method FROM consent_log") == [
        ("[]", "banner-reject-all")
    ]
    assert stored(live_server, "SELECT count(*) FROM visitors") == [(0,)]


def test_a_context_only_popup_after_a_refusal_stores_nothing(page, live_server) -> None:  # type: ignore[no-untyped-def]
    """The cart coupon (a shared code) shows on the cart's context alone, code included."""
    page.goto("/demo/cart.html")
    answer(page, "Reject all")
    page.mouse.move(600, 400)
    page.wait_for_timeout(2100)
    page.mouse.move(600, 10, steps=5)
    with page.expect_response("**/tp/v1/coupons/reveal") as revealed:
        page.mouse.move(600, -20)
    popup = page.locator("[data-tp-popup] [role=dialog]")
    popup.wait_for()
    assert revealed.value.json()["code"] == "CART5-OFF"
    popup.get_by_role("button", name="No thanks").click()
    page.wait_for_timeout(300)
    assert list(cookies(page)) == ["tp_refused"]
    for table in ("events", "visitors", "coupon_reveals", "coupon_codes"):
        assert stored(live_server, f"SELECT count(*) FROM {table}") == [(0,)]


def test_custom_choice_in_the_settings(page, live_server) -> None:  # type: ignore[no-untyped-def]
    page.goto(PRODUCT)
    banner = page.locator(BANNER)
    banner.get_by_role("button", name="Settings").click()
    switches = banner.get_by_role("switch")
    assert switches.count() == 4
    assert [switches.nth(i).is_checked() for i in range(4)] == [True, False, False, False]
    assert switches.nth(0).is_disabled()  # necessary
    assert focused(page) == "measurement"
    banner.get_by_role("switch", name="Measurement").check()
    sent, answered = answer(page, "Save choices")
    assert sent == {"granted": ["measurement"], "method": "banner-custom"}
    assert answered["granted"] == ["measurement"]
    assert list(cookies(page)) == ["tp_vid"]


def test_withdrawal_through_the_settings_link_stops_tracking_at_once(page, live_server) -> None:  # type: ignore[no-untyped-def]
    watch = Watch(page)
    page.goto(PRODUCT)
    answer(page, "Accept all")
    page.evaluate("touchpoint('track', 'before-withdrawal')")
    page.get_by_role("link", name="Privacy settings").click()
    banner = page.locator(BANNER)
    banner.get_by_role("switch", name="Personalisation").wait_for()
    assert all(banner.get_by_role("switch").nth(i).is_checked() for i in range(4))
    assert banner.get_by_role("button", name="Close").is_visible()
    for name in ("Measurement", "Personalisation", "Marketing popups"):
        banner.get_by_role("switch", name=name).uncheck()
    sent, answered = answer(page, "Save choices")
    assert sent == {"granted": [], "method": "banner-custom"}
    assert list(cookies(page)) == ["tp_refused"]  # the recognition cookie expired
    events_before = len(watch.to("events"))
    page.evaluate("touchpoint('track', 'after-withdrawal')")
    page.mouse.wheel(0, 800)
    with page.expect_response("**/tp/v1/decide"):
        page.goto("/demo/")  # leaving the page would send a beacon of what was tracked
    page.wait_for_timeout(300)
    assert len(watch.to("events")) == events_before
    assert stored(live_server, "SELECT granted, method FROM consent_log ORDER BY id") == [
        ('["marketing", "measurement", "personalisation"]', "banner-accept-all"),
        ("[]", "banner-custom"),
    ]


def test_settings_link_reopens_the_banner_and_esc_closes_it(page) -> None:  # type: ignore[no-untyped-def]
    page.goto(PRODUCT)
    answer(page, "Reject all")
    link = page.get_by_role("link", name="Privacy settings")
    link.focus()
    link.press("Enter")
    page.locator(BANNER).get_by_role("switch", name="Measurement").wait_for()
    assert focused(page) == "measurement"
    page.keyboard.press("Escape")
    assert page.locator(BANNER).count() == 0
    assert page.evaluate("document.activeElement.textContent") == "Privacy settings"


def test_revision_bump_asks_again(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = LiveServer(tmp_path)
    try:
        page = new_page(browser, first)
        page.goto(PRODUCT)
        answer(page, "Reject all")
        state = page.context.storage_state()
        page.context.close()
    finally:
        first.stop()
    bumped = LiveServer(tmp_path, "--consent-revision", "2")
    try:
        page = new_page(browser, bumped, storage_state=state)
        assert list(cookies(page)) == ["tp_refused"]
        with page.expect_response("**/tp/v1/decide") as decided:
            page.goto(PRODUCT)
        assert decided.value.json()["consent"]["prompt"] is True
        page.get_by_role("dialog", name=TITLE).wait_for()
        sent, answered = answer(page, "Accept all")
        assert answered == {"revision": 2, "granted": ALL}
        assert set(cookies(page)) == {"tp_vid"}  # the old refusal is gone with the grant
        page.context.close()
    finally:
        bumped.stop()


def test_global_privacy_control(browser, live_server) -> None:  # type: ignore[no-untyped-def]
    page = new_page(browser, live_server, init=GPC, extra_http_headers={"Sec-GPC": "1"})
    try:
        page.goto(PRODUCT)
        banner = page.locator(BANNER)
        assert "Global Privacy Control" in banner.inner_text()
        sent, answered = answer(page, "Accept all")
        assert answered["granted"] == ["measurement"]  # accept all is no opt-in to profiling
        page.get_by_role("link", name="Privacy settings").click()
        assert not banner.get_by_role("switch", name="Personalisation").is_checked()
        banner.get_by_role("switch", name="Personalisation").check()
        sent, answered = answer(page, "Save choices")
        assert answered["granted"] == ["measurement", "personalisation"]  # explicit: honoured
        assert sent["method"] == "banner-custom"
    finally:
        page.context.close()


def test_server_enforces_gpc_whatever_the_page_sends(browser, live_server) -> None:  # type: ignore[no-untyped-def]
    page = new_page(browser, live_server, extra_http_headers={"Sec-GPC": "1"})
    try:
        page.goto(PRODUCT)  # a browser whose script does not see the signal: the header counts
        sent, answered = answer(page, "Accept all")
        assert sent["granted"] == ALL
        assert answered["granted"] == ["measurement"]
    finally:
        page.context.close()


def test_tab_cycles_within_the_banner(page) -> None:  # type: ignore[no-untyped-def]
    page.goto(PRODUCT)
    page.locator(BANNER).wait_for()
    assert focused(page) == "dialog"  # the dialog itself: its title and text are read first
    order = []
    for _ in range(5):
        page.keyboard.press("Tab")
        order.append(focused(page))
    assert order == ["Privacy policy", "Settings", "Reject all", "Accept all", "Privacy policy"]
    page.keyboard.press("Shift+Tab")
    assert focused(page) == "Accept all"
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    assert focused(page) == "Settings"
    page.keyboard.press("Enter")
    assert focused(page) == "measurement"
    page.keyboard.press("Space")
    for _ in range(2):
        page.keyboard.press("Tab")
    assert focused(page) == "marketing"
    with page.expect_response("**/tp/v1/consent") as sent:
        page.keyboard.press("Tab")
        assert focused(page) == "Save choices"
        page.keyboard.press("Enter")
    assert sent.value.request.post_data_json == {
        "granted": ["measurement"],
        "method": "banner-custom",
    }


def test_german_texts_for_a_german_page(page) -> None:  # type: ignore[no-untyped-def]
    page.route(
        "**/demo/willkommen.html",
        lambda route: route.fulfill(body=GERMAN_PAGE, content_type="text/html; charset=utf-8"),
    )
    page.goto("/demo/willkommen.html")
    dialog = page.get_by_role("dialog", name="Ihre Datenschutz-Einstellungen")
    dialog.wait_for()
    assert dialog.get_by_role("button", name="Alle ablehnen").is_visible()
    assert dialog.get_by_role("button", name="Alle akzeptieren").is_visible()
    dialog.get_by_role("button", name="Einstellungen").click()
    assert dialog.get_by_role("switch", name="Personalisierung").is_visible()
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SHOTS / "banner-de-settings.png", animations="disabled")


def test_external_mode_shows_no_banner(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = server_with(tmp_path, "consent: {mode: external}\n")
    try:
        page = new_page(browser, server)
        with page.expect_response("**/tp/v1/decide"):
            page.goto(PRODUCT)
        page.wait_for_timeout(300)
        assert page.locator("[data-tp-consent]").count() == 0
        page.get_by_role("link", name="Privacy settings").click()  # the site's tool's business
        page.wait_for_timeout(200)
        assert page.locator("[data-tp-consent]").count() == 0
        with page.expect_response("**/tp/v1/consent") as sent:
            page.evaluate("touchpoint('consent', {measurement: true})")
        assert sent.value.json()["granted"] == ["measurement"]
        page.context.close()
    finally:
        server.stop()


@pytest.fixture
def tcf_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = server_with(tmp_path, "consent: {mode: tcf, tcf_timeout: 1s}\n")
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("consents", "granted"),
    [
        ({1: True, 5: True, 6: True, 8: True}, ["measurement", "personalisation"]),
        ({1: True, 3: True, 4: True, 5: True, 6: True, 8: True}, ALL),
        ({5: True, 6: True, 8: True}, []),  # purpose 1 (storing information) is needed by all
    ],
)
def test_tcf_publisher_consents_grant_categories(browser, tcf_server, consents, granted) -> None:  # type: ignore[no-untyped-def]
    tc_data = {
        "eventStatus": "tcloaded",
        "gdprApplies": True,
        "purpose": {"consents": {str(p): True for p in range(1, 11)}},  # vendors': not ours
        "publisher": {"consents": {str(k): v for k, v in consents.items()}},
    }
    page = new_page(
        browser, tcf_server, init=FAKE_CMP + f"window.tcData = {tc_data!r};".replace("True", "true")
    )
    watch = Watch(page)
    try:
        with page.expect_response("**/tp/v1/decide"):
            page.goto(PRODUCT)
        if granted:
            page.wait_for_function("window.tcData !== undefined")
            page.wait_for_timeout(1500)
            assert [b for _, b in watch.to("consent")], "no consent sent"
        else:
            page.wait_for_timeout(1500)
        assert page.locator("[data-tp-consent]").count() == 0
        logged = stored(tcf_server, "SELECT granted, method FROM consent_log")
        if granted:
            assert logged == [(str(granted).replace("'", '"'), "tcf")]
            assert list(cookies(page)) == ["tp_vid"]
        else:  # a refusal from an unknown visitor changes nothing and is not sent
            assert logged == [] and page.context.cookies() == []
    finally:
        page.context.close()


def test_tcf_without_an_answer_means_no_consent(browser, tcf_server) -> None:  # type: ignore[no-untyped-def]
    page = new_page(browser, tcf_server, init=FAKE_CMP)  # a CMP that never answers
    watch = Watch(page)
    try:
        page.goto(PRODUCT)
        page.evaluate("touchpoint('track', 'waiting')")
        page.wait_for_timeout(1500)  # past the timeout
        with page.expect_response("**/tp/v1/decide"):
            page.goto("/demo/")
        page.wait_for_timeout(300)
        assert watch.to("consent") == watch.to("events") == []
        assert page.context.cookies() == []
        assert page.locator("[data-tp-consent]").count() == 0
    finally:
        page.context.close()


@pytest.mark.parametrize(
    ("name", "viewport"),
    [("desktop", {"width": 1280, "height": 800}), ("mobile", {"width": 390, "height": 844})],
)
def test_screenshots(browser, live_server, name: str, viewport: dict[str, int]) -> None:  # type: ignore[no-untyped-def]
    page = new_page(browser, live_server, viewport=viewport)
    try:
        page.goto(PRODUCT)
        banner = page.locator(BANNER)
        banner.wait_for()
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=SHOTS / f"banner-{name}.png", animations="disabled")
        box = banner.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]
        assert box["y"] + box["height"] <= viewport["height"]
        reject = banner.get_by_role("button", name="Reject all").bounding_box()
        accept = banner.get_by_role("button", name="Accept all").bounding_box()
        assert (
            reject
            and accept
            and (reject["width"], reject["height"])
            == (
                accept["width"],
                accept["height"],
            )
        )
        banner.get_by_role("button", name="Settings").click()
        page.screenshot(path=SHOTS / f"banner-{name}-settings.png", animations="disabled")
        box = banner.bounding_box()
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"]
    finally:
        page.context.close()


def test_tcf_choice_made_after_the_timeout_still_counts(browser, tcf_server) -> None:  # type: ignore[no-untyped-def]
    # The CMP answers at once that its dialog is showing; the visitor chooses after 1.5 s.
    cmp = """
    window.__tcfapi = function (command, version, callback) {
      callback({eventStatus: 'cmpuishown', listenerId: 1}, true);
      setTimeout(function () {
        callback({eventStatus: 'useractioncomplete', listenerId: 1,
                  publisher: {consents: {1: true, 8: true}}}, true);
      }, 1500);
    };
    """
    page = new_page(browser, tcf_server, init=cmp)
    try:
        with page.expect_response("**/tp/v1/consent", timeout=5000) as sent:
            page.goto(PRODUCT)
        assert sent.value.request.post_data_json == {"granted": ["measurement"], "method": "tcf"}
    finally:
        page.context.close()


STRICT_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Strict</title>
<script async src="/tp/t.js"></script></head><body><h1>Strict</h1>
<a href="#" data-tp-consent-settings>Privacy settings</a></body></html>"""
STRICT_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'"
)


def test_banner_under_a_strict_content_security_policy(page) -> None:  # type: ignore[no-untyped-def]
    page.add_init_script(
        "window.violations = []; document.addEventListener('securitypolicyviolation',"
        " e => window.violations.push(e.violatedDirective));"
    )
    page.route(
        "**/demo/strict.html",
        lambda route: route.fulfill(
            body=STRICT_PAGE,
            content_type="text/html; charset=utf-8",
            headers={"Content-Security-Policy": STRICT_CSP},
        ),
    )
    page.goto("/demo/strict.html")
    banner = page.locator(BANNER)
    banner.wait_for()
    reject = banner.get_by_role("button", name="Reject all").bounding_box()
    assert reject and reject["height"] > 30  # styled: the stylesheet applied
    answer(page, "Reject all")
    page.get_by_role("link", name="Privacy settings").click()
    banner.get_by_role("switch", name="Measurement").wait_for()
    assert page.evaluate("window.violations") == []
