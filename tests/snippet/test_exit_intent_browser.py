"""Exit intent on desktop and touch screens, and the recheck before a delayed popup shows, in
real Chromium against the scripted server (docs/exit-intent.md)."""

from __future__ import annotations

from typing import Any

import pytest

from . import test_snippet_browser as snippet_tests
from .test_snippet_browser import POPUP, events, new_page, open_page, popup, shown

# The scripted server, and a desktop page recording the snippet's warnings.
harness = snippet_tests.harness
page = snippet_tests.page
warnings = snippet_tests.warnings
pytestmark = pytest.mark.browser
EXIT = "/pages/exit.html"
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
ALL_ON = {"min_seconds": 0, "desktop": True, "mobile": True, "tab_return": True}


def exit_popup(**options: Any) -> dict[str, Any]:
    return popup("leaving", "exit_intent", **{**ALL_ON, **options})


def leave_upwards(page, x: int = 600) -> None:  # type: ignore[no-untyped-def]
    page.mouse.move(x, 300)
    page.mouse.move(x, 10, steps=4)
    page.mouse.move(x, -20)


def nothing_shown(page, ms: int = 400) -> bool:  # type: ignore[no-untyped-def]
    page.wait_for_timeout(ms)
    return shown(page) == []


@pytest.fixture
def phone(browser, harness):  # type: ignore[no-untyped-def]
    errors: list[str] = []
    page = new_page(browser, harness, errors, [], **PHONE)
    yield page
    page.context.close()
    assert errors == []


# Desktop


def test_leaving_upwards_through_the_top_fires_after_a_grace_delay(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [exit_popup()]})
    open_page(page, EXIT)
    leave_upwards(page)
    page.mouse.move(600, 200)  # back within the grace delay: the visitor changed their mind
    assert nothing_shown(page)
    leave_upwards(page)
    page.locator(POPUP).wait_for()


def test_not_before_min_seconds(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [exit_popup(min_seconds=2)]})
    open_page(page, EXIT)
    leave_upwards(page)
    assert nothing_shown(page)
    page.wait_for_timeout(1700)
    leave_upwards(page)
    page.locator(POPUP).wait_for()


def test_leaving_sideways_along_the_top_does_not_count(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [exit_popup()]})
    open_page(page, EXIT)
    page.mouse.move(600, 300)
    page.mouse.move(600, 5, steps=5)
    for x in range(500, 0, -100):  # along the top edge for half a second, then out sideways
        page.mouse.move(x, 5, steps=2)
        page.wait_for_timeout(100)
    page.mouse.move(-20, 5)
    assert nothing_shown(page)


# (px per step, ms per step): slower than a hand reaching for the tab bar.
DRIFTS = [(1, 200), (1, 50), (2, 100), (4, 100)]


@pytest.mark.parametrize(("px", "ms"), DRIFTS)
def test_a_pointer_drifting_out_through_the_top_does_not_count(
    page, harness, px: int, ms: int
) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [exit_popup()]})
    open_page(page, EXIT)
    page.mouse.move(600, 300)
    page.mouse.move(600, 4, steps=5)
    page.wait_for_timeout(300)  # resting near the top
    for x in range(550, 300, -50):  # sliding sideways along it
        page.mouse.move(x, 4)
        page.wait_for_timeout(40)
    for y in range(4 - px, -px - 1, -px):  # drifting up and out, ending above the edge
        page.wait_for_timeout(ms)
        page.mouse.move(300, y)
    assert nothing_shown(page), page.evaluate("window.seen")
    leave_upwards(page)  # the real thing still counts
    page.locator(POPUP).wait_for()


@pytest.mark.parametrize("start", [40, 120, 400])
def test_a_fast_move_out_through_the_top_counts_from_anywhere(page, harness, start: int) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [exit_popup()]})
    open_page(page, EXIT)
    page.mouse.move(300, start)
    page.wait_for_timeout(300)  # resting first: only the last movement counts
    page.mouse.move(300, -20, steps=3)
    page.locator(POPUP).wait_for(timeout=1000)


def test_the_fixed_header_links_and_clicks_do_not_count(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [exit_popup()]})
    open_page(page, EXIT)
    page.mouse.move(600, 300)
    page.mouse.move(600, 5, steps=5)  # up onto the fixed header, to the very top
    page.mouse.move(100, 5, steps=5)
    page.click("#top-link")  # a link in the header
    page.click("#in-page")  # a link on the page
    page.click("#buy")
    assert nothing_shown(page)


def test_a_select_list_does_not_count(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [exit_popup()]})
    open_page(page, EXIT)
    page.mouse.move(100, 300)
    page.mouse.move(100, 120, steps=4)
    # Some browsers report the pointer moving into an open <select> list as leaving the page.
    page.eval_on_selector(
        "#size",
        "el => el.dispatchEvent(new MouseEvent('mouseout', {bubbles: true, clientY: -5}))",
    )
    assert nothing_shown(page)


def test_a_context_menu_pauses_it(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [exit_popup()]})
    open_page(page, EXIT)
    # A context menu, then the pointer over it past the window's top edge, in one task: with
    # real mouse calls a loaded machine could take longer than the pause between them.
    page.evaluate(
        """() => {
          const fire = (type, y) => document.dispatchEvent(
            new MouseEvent(type, {clientX: 600, clientY: y, bubbles: true}));
          fire('contextmenu', 300);
          fire('mousemove', 200);
          fire('mousemove', 5);
          fire('mouseout', -20);
        }"""
    )
    assert nothing_shown(page, 1100)
    leave_upwards(page)  # the menu is gone, the pointer moved: leaving counts again
    page.locator(POPUP).wait_for()


def test_desktop_switched_off(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [exit_popup(desktop=False)]})
    open_page(page, EXIT)
    leave_upwards(page)
    assert nothing_shown(page)


# Touch screens

SCROLL = """async ([from, to, ms, swipe]) => {
  const steps = 8;
  for (let i = 0; i <= steps; i++) {
    if (swipe) document.dispatchEvent(new Event('touchmove'));
    scrollTo(0, from + (to - from) * i / steps);
    await new Promise(resolve => setTimeout(resolve, ms / steps));
  }
}"""


def scroll(page, start: float, end: float, ms: int, *, swipe: bool = True) -> None:  # type: ignore[no-untyped-def]
    page.evaluate(SCROLL, [start, end, ms, swipe])


def test_a_fast_swipe_up_after_reading_fires(phone, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [exit_popup()]})
    open_page(phone, EXIT)
    scroll(phone, 0, 2000, 400)  # reading down the page
    scroll(phone, 2000, 1400, 3000)  # slowly back up a little: re-reading
    assert nothing_shown(phone)
    scroll(phone, 1400, 1000, 150)  # a flick back up
    phone.locator(POPUP).wait_for()


def test_a_jump_to_the_top_without_a_finger_does_not_count(phone, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [exit_popup()]})
    open_page(phone, EXIT)
    scroll(phone, 0, 2000, 400)
    phone.wait_for_timeout(1100)  # reading, the finger off the screen
    scroll(phone, 2000, 0, 100, swipe=False)  # a "back to top" link or the page's script
    assert nothing_shown(phone)


def test_no_swipe_before_reading_and_not_when_switched_off(browser, harness) -> None:  # type: ignore[no-untyped-def]
    for options, start in [({}, 700), ({"mobile": False}, 2000)]:
        errors: list[str] = []
        page = new_page(browser, harness, errors, [], **PHONE)
        harness.script({"popups": [exit_popup(**options)]})
        open_page(page, EXIT)
        scroll(page, 0, start, 300)  # 700 px: less than a quarter of the page
        scroll(page, start, 0, 150)
        leave_upwards(page)  # touch screens have no pointer to leave
        assert nothing_shown(page), options
        page.context.close()
        assert errors == []


# Returning to the tab

HIDE = """state => {
  Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => state});
  document.dispatchEvent(new Event('visibilitychange'));
}"""


@pytest.mark.parametrize("tab_return", [True, False])
def test_returning_to_the_tab_after_a_while(phone, harness, tab_return: bool) -> None:  # type: ignore[no-untyped-def]
    harness.script({"popups": [exit_popup(tab_return=tab_return)]})
    open_page(phone, EXIT)
    phone.evaluate(HIDE, "hidden")
    phone.wait_for_timeout(500)
    phone.evaluate(HIDE, "visible")  # back after a moment: a glance at a message
    assert nothing_shown(phone)
    phone.evaluate(HIDE, "hidden")
    phone.wait_for_timeout(3100)
    phone.evaluate(HIDE, "visible")
    if tab_return:
        phone.locator(POPUP).wait_for()
    else:
        assert nothing_shown(phone)


# Rechecked before showing


def test_closed_in_another_tab_is_not_shown_in_this_one(browser, harness) -> None:  # type: ignore[no-untyped-def]
    errors: list[str] = []
    first = new_page(browser, harness, errors, [])
    second = first.context.new_page()
    harness.script(
        {"popups": [popup("offer", "load")]},
        {"popups": [popup("offer", "click", selector="#buy"), popup("other", "event", name="go")]},
    )
    open_page(first, EXIT)
    open_page(second, EXIT)
    first.get_by_role("button", name="No thanks").click()
    second.wait_for_timeout(100)
    second.click("#buy")
    assert nothing_shown(second)
    second.evaluate("touchpoint('track', 'go')")  # other campaigns still show
    second.locator(POPUP).wait_for()
    assert shown(second) == ["other"]
    first.context.close()
    assert errors == []


def test_the_server_is_asked_with_marketing_consent(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script(
        {"popups": [popup("offer", "click", selector="#buy"), popup("other", "event", name="go")]},
        granted=["marketing"],
        ineligible=["offer"],
    )
    open_page(page, EXIT)
    page.click("#buy")
    assert nothing_shown(page)
    assert harness.log()["eligible"] == [{"campaign": "offer"}]
    page.evaluate("touchpoint('track', 'go')")
    page.locator(POPUP).wait_for()
    assert events(harness, at_least=1) == [("impression", "other")]


def test_a_slow_server_does_not_hold_the_popup_back(page, harness) -> None:  # type: ignore[no-untyped-def]
    harness.script(
        {"popups": [popup("offer", "click", selector="#buy")]},
        granted=["marketing"],
        ineligible=["offer"],
        eligible_delay=2000,
    )
    open_page(page, EXIT)
    page.click("#buy")
    page.locator(POPUP).wait_for(timeout=1000)  # shown as decided after the 300 ms budget
