"""The snippet in real Chromium against a scripted server: triggers, popup styles, slots, decide."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..snippet_harness import Harness

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).parent.parent / "artifacts"
INDEX = "/pages/index.html"
SHORT = "/pages/short.html"
POPUP = "[data-tp-popup] [role=dialog]"
TITLE = "Free shipping this week"
STYLES = ["modal", "slide-in", "bar-top", "bar-bottom", "fullscreen"]
MODAL = {"modal", "fullscreen"}
# Records the snippet's touchpoint:* events with the page's clock, before any page script runs.
RECORD_EVENTS = """
window.seen = [];
['show', 'close', 'convert', 'fill'].forEach(function (name) {
  document.addEventListener('touchpoint:' + name, function (event) {
    window.seen.push({type: name, detail: event.detail, at: performance.now()});
  });
});
"""


def popup(
    campaign: str, on: str, *, style: str = "modal", control: bool = False, **trigger: Any
) -> dict[str, Any]:
    """A popup of a decide answer, as the server sends it."""
    html = (
        ""
        if control
        else f"<h2>{TITLE}</h2><p>Orders over 50 EUR ship free until Sunday.</p>"
        '<a class="tp-button" href="#shop" data-tp-convert>Shop now</a>'
        '<button class="tp-link" type="button" data-tp-close>No thanks</button>'
    )
    return {
        "campaign": campaign,
        "variant": "a",
        "style": style,
        "trigger": {"on": on, **trigger},
        "control": control,
        "html": html,
    }


def content(campaign: str, html: str = "", *, control: bool = False) -> dict[str, Any]:
    """The content for a slot in a decide answer."""
    return {"campaign": campaign, "variant": "a", "control": control, "html": html}


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    server = Harness(tmp_path_factory.mktemp("harness"))
    yield server
    server.stop()


def new_page(browser, harness: Harness, errors: list[str], warnings: list[str], **options: Any):  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=harness.url, **options)
    context.add_init_script(RECORD_EVENTS)
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def console(message) -> None:  # type: ignore[no-untyped-def]
        if message.type == "warning":
            warnings.append(message.text)

    page.on("console", console)
    return page


@pytest.fixture
def warnings() -> list[str]:
    """What the snippet reported with console.warn."""
    return []


@pytest.fixture
def page(browser, harness, warnings):  # type: ignore[no-untyped-def]
    errors: list[str] = []
    page = new_page(browser, harness, errors, warnings, viewport={"width": 1200, "height": 800})
    yield page
    page.context.close()
    assert errors == [], f"the page threw: {errors}"


def open_page(page, path: str = INDEX) -> None:  # type: ignore[no-untyped-def]
    with page.expect_response("**/tp/v1/decide"):
        page.goto(path)


def seen(page, kind: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The touchpoint:<kind> events the page saw."""
    events: list[dict[str, Any]] = page.evaluate("window.seen")
    return [event for event in events if event["type"] == kind]


def shown(page) -> list[str]:  # type: ignore[no-untyped-def]
    """The campaigns of the popups in the page."""
    found: list[str] = page.eval_on_selector_all(
        "[data-tp-popup]", "hosts => hosts.map(h => h.dataset.tpPopup)"
    )
    return found


def events(harness: Harness, *, at_least: int = 0) -> list[tuple[str, str]]:
    """(type, campaign) of the events the snippet sent, once there are `at_least` of them."""
    deadline = time.monotonic() + 5
    while True:
        logged = harness.log()["events"]
        sent = [(event["type"], event["campaign"]) for event in logged if "campaign" in event]
        if len(sent) >= at_least or time.monotonic() > deadline:
            return sent
        time.sleep(0.05)


def focus_in_popup(page) -> bool:  # type: ignore[no-untyped-def]
    return bool(page.evaluate("document.activeElement.hasAttribute('data-tp-popup')"))


# Triggers


def test_load_shows_at_once_and_records_an_impression(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [popup("welcome", "load")]}, granted=["marketing"])
    open_page(page)
    page.get_by_role("dialog", name=TITLE).wait_for()
    assert events(harness, at_least=1) == [("impression", "welcome")]


def test_seconds_counts_from_the_navigation(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [popup("timed", "seconds", seconds=1)]})
    open_page(page)
    assert shown(page) == []
    page.locator(POPUP).wait_for()
    # performance.now() is coarsened (and jittered) against timing attacks: a timer that fired
    # on time can read a fraction of a millisecond early.
    assert seen(page, "show")[0]["at"] >= 999


def test_scroll_fires_past_the_percent_only(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [popup("half", "scroll", percent=50)]})
    open_page(page)
    scroll_to = (
        "share => scrollTo(0, (document.documentElement.scrollHeight - innerHeight) * share)"
    )
    page.evaluate(scroll_to, 0.4)
    page.wait_for_timeout(200)
    assert shown(page) == []
    page.evaluate(scroll_to, 0.55)
    page.locator(POPUP).wait_for()


def test_a_page_that_cannot_scroll_never_reaches_a_scroll_trigger(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [popup("deep", "scroll", percent=1)]})
    open_page(page, SHORT)
    page.mouse.move(600, 400)
    page.mouse.wheel(0, 2000)
    page.wait_for_timeout(300)
    assert shown(page) == []


def test_inactivity_waits_for_quiet(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [popup("idle", "inactivity", seconds=1)]})
    open_page(page)
    page.evaluate(
        "['mousemove', 'keydown'].forEach(type => addEventListener(type,"
        " () => { window.lastActivity = performance.now() }))"
    )
    for step in range(6):  # 1.5 s of activity: moving, typing
        page.mouse.move(100 + step * 50, 300)
        if step == 3:
            page.keyboard.press("Shift")
        page.wait_for_timeout(250)
    assert shown(page) == []
    page.locator(POPUP).wait_for()
    quiet = seen(page, "show")[0]["at"] - page.evaluate("window.lastActivity")
    assert quiet >= 995  # timers and clocks may disagree by a few milliseconds


def test_exit_intent_through_the_top_edge_only(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [popup("leaving", "exit_intent", min_seconds=0)]})
    open_page(page)
    page.mouse.move(600, 400)
    page.mouse.move(-20, 400, steps=5)  # out through the left edge
    page.mouse.move(600, 400, steps=5)
    page.wait_for_timeout(200)
    assert shown(page) == []
    page.mouse.move(600, 10, steps=5)
    page.mouse.move(600, -20)
    page.locator(POPUP).wait_for()


def test_click_fires_on_the_selector_and_inside_it(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [popup("upsell", "click", selector="#buy")]})
    open_page(page)
    page.click("#other")
    page.wait_for_timeout(200)
    assert shown(page) == []
    page.click("#buy span")
    page.locator(POPUP).wait_for()


def test_an_invalid_click_selector_does_not_throw_into_the_page(page, harness, warnings) -> None:  # type: ignore[no-untyped-def]
    harness.script(
        {
            "popups": [
                popup("broken", "click", selector="#buy[["),
                popup("backup", "click", selector="#buy"),
            ]
        }
    )
    open_page(page)
    page.click("#other")
    page.click("#buy")
    page.locator(POPUP).wait_for()
    assert shown(page) == ["backup"]  # the broken trigger is skipped, the others stay armed
    assert any("#buy[[" in warning for warning in warnings), warnings


def test_event_fires_on_its_name_only_and_sends_nothing(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [popup("thanks", "event", name="signup-done")]})
    open_page(page)
    page.evaluate("touchpoint('track', 'signup-started', {plan: 'pro'})")
    page.wait_for_timeout(200)
    assert shown(page) == []
    page.evaluate("touchpoint('track', 'signup-done', {plan: 'pro'})")
    page.locator(POPUP).wait_for()
    assert harness.log()["events"] == []  # no consent: not even the impression


def test_event_tracked_before_the_answer_fires_when_armed(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [popup("thanks", "event", name="signup-done")]})
    page.add_init_script(
        "window.touchpoint = function () { (touchpoint.q = touchpoint.q || []).push(arguments) };"
        "touchpoint('track', 'signup-done');"
    )
    open_page(page)
    page.locator(POPUP).wait_for()


# One popup per page view


def test_only_the_first_trigger_to_fire_shows_a_popup(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script(
        {
            "popups": [
                popup("on-event", "event", name="go"),
                popup("first-load", "load"),
                popup("second-load", "load"),
                popup("on-click", "click", selector="#buy"),
            ]
        }
    )
    open_page(page)
    page.locator(POPUP).wait_for()
    assert shown(page) == ["first-load"]  # of two triggers firing together, the higher priority
    page.get_by_role("button", name="No thanks").click()
    page.evaluate("touchpoint('track', 'go')")
    page.click("#buy")
    page.wait_for_timeout(200)
    assert shown(page) == []
    assert [event["detail"]["campaign"] for event in seen(page, "show")] == ["first-load"]


def test_control_records_an_exposure_shows_nothing_and_disarms_the_rest(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script(
        {
            "popups": [
                popup("holdout", "load", control=True),
                popup("other", "seconds", seconds=0.3),
            ]
        },
        granted=["marketing"],
    )
    open_page(page)
    page.wait_for_timeout(600)
    assert shown(page) == []
    assert [e["detail"] for e in seen(page, "show")] == [
        {"campaign": "holdout", "variant": "a", "control": True}
    ]
    assert events(harness, at_least=1) == [("exposure", "holdout")]


def test_a_page_that_vetoes_popups_vetoes_holdout_exposures_alike(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [popup("holdout", "load", control=True)]}, granted=["marketing"])
    page.add_init_script("document.addEventListener('touchpoint:show', e => e.preventDefault())")
    open_page(page)
    page.wait_for_timeout(400)
    assert events(harness) == []


def test_a_vetoed_popup_leaves_the_others_armed(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [popup("vetoed", "load"), popup("later", "click", selector="#buy")]})
    page.add_init_script(
        "document.addEventListener('touchpoint:show', e => {"
        " if (e.detail.campaign === 'vetoed') e.preventDefault() })"
    )
    open_page(page)
    page.wait_for_timeout(200)
    assert shown(page) == []
    page.click("#buy")
    page.locator(POPUP).wait_for()
    assert shown(page) == ["later"]


# Popup styles


def tab_into(page, style: str) -> str:  # type: ignore[no-untyped-def]
    """Reach a non-modal popup by keyboard, as its place in the tab order allows; returns the
    name of the page's link it was reached from."""
    if style == "bar-top":  # before the page: Shift+Tab from its first link
        page.get_by_role("link", name="Home").focus()
        page.keyboard.press("Shift+Tab")
        return "Home"
    page.get_by_role("link", name="The last link of the page").focus()  # after the page
    page.keyboard.press("Tab")
    return "The last link of the page"


@pytest.mark.parametrize("style", STYLES)
def test_style_renders_and_behaves_by_keyboard(page, harness, style: str) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [popup("styled", "click", selector="#buy", style=style)]})
    open_page(page)
    page.click("#buy")  # focuses the button, then the popup shows
    dialog = page.get_by_role("dialog", name=TITLE)
    dialog.wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"popup-{style}.png", animations="disabled")

    box = dialog.bounding_box()
    width, height = page.evaluate("[document.documentElement.clientWidth, innerHeight]")
    right, bottom = box["x"] + box["width"], box["y"] + box["height"]
    if style == "modal":
        assert abs(box["x"] + box["width"] / 2 - width / 2) < 2
        assert abs(box["y"] + box["height"] / 2 - height / 2) < 2
    elif style == "fullscreen":
        assert (box["x"], box["y"], right, bottom) == (0, 0, width, height)
    elif style == "slide-in":
        assert (right, bottom) == (width - 16, height - 16)
    elif style == "bar-top":
        assert (box["x"], box["y"], right) == (0, 0, width)
    else:
        assert (box["x"], right, bottom) == (0, width, height)

    if style in MODAL:
        assert dialog.get_attribute("aria-modal") == "true"
        assert focus_in_popup(page)  # focus moved in, and Tab keeps it there
        for _ in range(4):
            page.keyboard.press("Tab")
            assert focus_in_popup(page)
    else:
        assert dialog.get_attribute("aria-modal") is None
        assert page.evaluate("document.activeElement.id") == "buy"  # focus stays on the page
        page.get_by_role("status").filter(has_text=TITLE).wait_for(state="attached")
        came_from = tab_into(page, style)
        assert focus_in_popup(page)
    page.keyboard.press("Escape")
    assert shown(page) == []
    assert seen(page, "close")[0]["detail"] == {"campaign": "styled", "variant": "a"}
    if style in MODAL:
        assert page.evaluate("document.activeElement.id") == "buy"  # focus returned
    else:
        assert page.evaluate("document.activeElement.textContent") == came_from


@pytest.mark.parametrize("style", STYLES)
def test_style_fits_a_phone(browser, harness, style: str) -> None:  # type: ignore[no-untyped-def]
    errors: list[str] = []
    phone = {"width": 390, "height": 844}
    page = new_page(browser, harness, errors, [], viewport=phone, is_mobile=True, has_touch=True)
    harness.script({"popups": [popup("styled", "load", style=style)]})
    open_page(page)
    dialog = page.get_by_role("dialog", name=TITLE)
    dialog.wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"popup-{style}-mobile.png", animations="disabled")
    box = dialog.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= phone["width"]
    assert box["y"] >= 0 and box["y"] + box["height"] <= phone["height"]
    page.get_by_role("button", name="Close").tap()
    assert shown(page) == []
    page.context.close()
    assert errors == []


def test_no_animation_for_visitors_who_ask_for_reduced_motion(browser, harness) -> None:  # type: ignore[no-untyped-def]
    animation = "document.querySelector('[data-tp-popup]').shadowRoot.querySelector('.dialog')"
    for motion, expected in [("no-preference", "tp-in"), ("reduce", "none")]:
        errors: list[str] = []
        page = new_page(browser, harness, errors, [], reduced_motion=motion)
        harness.script({"popups": [popup("calm", "load", style="slide-in")]})
        open_page(page)
        page.locator(POPUP).wait_for()
        assert page.evaluate(f"getComputedStyle({animation}).animationName") == expected
        page.context.close()
        assert errors == []


def test_close_and_convert_are_recorded(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [popup("offer", "load", style="slide-in")]}, granted=["marketing"])
    open_page(page)
    with page.expect_response("**/tp/v1/events"):
        page.get_by_role("link", name="Shop now").click()
    assert shown(page) == []
    assert events(harness, at_least=2) == [("impression", "offer"), ("convert", "offer")]


# Content slots


def test_slots_are_filled_and_others_keep_their_default(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script(
        {"slots": {"hero": content("spring", "<h1>Spring sale</h1><p>20 % off boots</p>")}},
        granted=["marketing"],
    )
    open_page(page)
    page.locator("[data-tp-filled]").first.wait_for()
    heroes = page.locator("[data-tp-slot=hero]")  # every element of the slot
    filled = "els => els.map(e => [e.innerHTML, e.dataset.tpFilled])"
    assert (
        heroes.evaluate_all(filled) == [["<h1>Spring sale</h1><p>20 % off boots</p>", "spring"]] * 2
    )
    assert page.locator("[data-tp-slot=sidebar]").inner_text() == "Default sidebar"
    assert page.locator("[data-tp-slot=sidebar]").get_attribute("data-tp-filled") is None
    assert [event["detail"] for event in seen(page, "fill")] == [
        {"slot": "hero", "campaign": "spring", "variant": "a", "control": False}
    ]
    page.wait_for_timeout(100)
    assert events(harness) == [("impression", "spring")]  # one per campaign, not per element


def test_a_control_slot_keeps_its_default_and_records_an_exposure(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script(
        {
            "slots": {
                "sidebar": content("sidebar-test", control=True),
                "hero": content("spring", "<h1>Hi</h1>"),
            }
        },
        granted=["marketing"],
    )
    open_page(page)
    page.locator("[data-tp-filled]").first.wait_for()
    assert page.locator("[data-tp-slot=sidebar]").inner_text() == "Default sidebar"
    assert sorted(event["detail"]["slot"] for event in seen(page, "fill")) == ["hero", "sidebar"]
    assert sorted(events(harness, at_least=2)) == [
        ("exposure", "sidebar-test"),
        ("impression", "spring"),
    ]


def test_a_cancelled_fill_keeps_the_default(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script(
        {"slots": {"hero": content("spring", "<h1>Spring sale</h1>")}}, granted=["marketing"]
    )
    page.add_init_script(
        "document.addEventListener('touchpoint:fill', e => {"
        " if (e.detail.slot === 'hero') e.preventDefault() })"
    )
    open_page(page)
    page.wait_for_function("window.seen.some(event => event.type === 'fill')")
    page.wait_for_timeout(100)
    assert page.locator("section[data-tp-slot=hero]").inner_text().startswith("Default hero")
    assert page.locator("[data-tp-filled]").count() == 0
    assert events(harness) == []


def test_slots_need_no_consent_but_events_do(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({"slots": {"hero": content("spring", "<h1>Spring sale</h1>")}})
    open_page(page)
    page.locator("[data-tp-filled=spring]").first.wait_for()
    page.wait_for_timeout(100)
    assert events(harness) == []


# The decide request


def test_decide_carries_the_page_context_and_slots(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({})
    open_page(page, SHORT)
    with page.expect_response("**/tp/v1/decide"):
        page.click("#onward")
    short, shop = harness.log()["decide"]
    assert short == {
        "page": {"path": SHORT, "title": "Short page", "query": "", "referrer": ""},
        "context": {},
        "slots": [],
        "count": True,
        "lang": "en",  # the page's language, for the consent banner's texts
    }
    assert shop == {
        "page": {
            "path": INDEX,
            "title": "Harness shop",
            "query": "?utm_source=news&utm_campaign=spring",
            "referrer": harness.url + SHORT,
        },
        "context": {"plan": "pro", "items": 3, "returning": True},  # only plain values
        "slots": ["hero", "sidebar"],  # distinct, valid names
        "count": True,
        "lang": "en",
    }


def test_at_most_twenty_slots_are_sent(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({})
    page.add_init_script(
        "document.addEventListener('DOMContentLoaded', () => { for (let i = 0; i < 30; i++) {"
        " const el = document.createElement('div'); el.dataset.tpSlot = 'extra-' + i;"
        " document.body.append(el) } })"
    )
    open_page(page)
    slots = harness.log()["decide"][0]["slots"]
    assert slots == ["hero", "sidebar"] + [f"extra-{i}" for i in range(18)]


@pytest.mark.parametrize("counted", [True, False])
def test_a_consent_change_decides_again_counting_only_once(page, harness, counted: bool) -> None:  # type: ignore[no-untyped-def]
    harness.script(
        {"counted": counted, "popups": [popup("first", "load")]},
        {"counted": True, "popups": [popup("second", "load")]},
    )
    open_page(page)
    page.get_by_role("button", name="Close").click()
    page.evaluate("touchpoint('context', {late: 'yes'})")  # kept for the next decide only
    page.wait_for_timeout(200)
    assert len(harness.log()["decide"]) == 1
    with page.expect_response("**/tp/v1/decide"):
        page.evaluate("touchpoint('consent', {marketing: true})")
    page.wait_for_timeout(200)
    log = harness.log()
    assert log["consent"] == [{"granted": ["marketing"], "method": "api"}]
    first, again = log["decide"]
    assert (first["count"], again["count"]) == (True, not counted)
    assert again["context"] == {"plan": "pro", "items": 3, "returning": True, "late": "yes"}
    assert shown(page) == []  # this page view had its popup


def test_consent_given_before_the_answer_supersedes_it(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script(
        {
            "popups": [popup("anonymous", "load")],
            "slots": {"hero": content("anonymous", "<h1>A</h1>")},
        },
        {"popups": [popup("known", "load")], "slots": {"hero": content("known", "<h1>K</h1>")}},
    )
    page.add_init_script(
        "window.touchpoint = function () { (touchpoint.q = touchpoint.q || []).push(arguments) };"
        "touchpoint('consent', ['marketing']);"
    )
    page.goto(INDEX)
    page.locator(POPUP).wait_for()
    assert shown(page) == ["known"]
    filled_by = "els => els.map(e => e.dataset.tpFilled)"
    assert page.locator("[data-tp-filled]").evaluate_all(filled_by) == ["known", "known"]
    assert [decide["count"] for decide in harness.log()["decide"]] == [True, False]
    # The slot's impression and the popup's, both under the consent the page gave.
    assert events(harness, at_least=2) == [("impression", "known")] * 2
