"""The console's charts and rules editor (server/admin/static/) in real Chromium, under the
console's strict Content-Security-Policy, against the stand-in of tests/admin/assets_harness.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .assets_harness import CAMPAIGN, AssetsHarness

pytestmark = pytest.mark.browser
SHOTS = Path("/tmp/console-shots")
SIZES = {"desktop": {"width": 1366, "height": 900}, "tablet": {"width": 820, "height": 1180}}
# Records CSP violations before any page script runs (an init script is not subject to CSP).
RECORD_VIOLATIONS = """
window.violations = [];
document.addEventListener('securitypolicyviolation', function (event) {
  window.violations.push(event.violatedDirective + ' ' + event.blockedURI + ' ' + event.sample);
});
"""
# Counts the painted pixels of every chart's canvas.
PAINTED = """
() => [...document.querySelectorAll('[data-chart] canvas')].map((canvas) => {
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
  return painted;
})
"""


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AssetsHarness]:
    server = AssetsHarness(tmp_path_factory.mktemp("assets"))
    yield server
    server.stop()


@pytest.fixture(params=list(SIZES))
def size(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def open_page(browser: Any, harness: AssetsHarness, *, size: str = "desktop") -> Any:
    context = browser.new_context(base_url=harness.url, viewport=SIZES[size])
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.problems = []
    page.on("pageerror", lambda exc: page.problems.append(str(exc)))
    page.on(
        "console",
        lambda message: message.type in ("error", "warning") and page.problems.append(message.text),
    )
    return page


def close(page: Any) -> None:
    """Closes ``page``, failing the test on a CSP violation, an exception or a console error."""
    violations = page.evaluate("window.violations")
    problems = page.problems
    page.context.close()
    assert violations == [], violations
    assert problems == [], problems


@pytest.fixture
def charts(browser: Any, harness: AssetsHarness, size: str) -> Iterator[Any]:
    page = open_page(browser, harness, size=size)
    page.goto("/charts")
    page.wait_for_selector(".tp-chart canvas")
    yield page
    close(page)


@pytest.fixture
def editor(browser: Any, harness: AssetsHarness) -> Iterator[Any]:
    page = open_page(browser, harness)
    page.goto("/editor")
    page.wait_for_selector(".cm-editor")
    yield page
    close(page)


def test_charts_are_drawn_labelled_and_keep_their_tables(charts: Any, size: str) -> None:
    assert charts.locator(".tp-chart canvas").count() == 2
    assert all(painted > 1000 for painted in charts.evaluate(PAINTED))
    first = charts.locator(".tp-chart").first
    assert first.get_attribute("role") == "img"
    label = first.get_attribute("aria-label")
    assert "Conversions of Holdout, Ten percent, Free shipping per day" in label
    assert "2026-11-01 to 2026-11-14" in label
    legend = charts.locator(".tp-chart").first.locator(".u-legend .u-series th")
    assert legend.all_inner_texts()[1:] == ["Holdout", "Ten percent", "Free shipping"]
    # Pointing at a day shows its numbers in the legend, rates in percent.
    rates = charts.locator(".tp-chart").nth(1)
    rates.locator(".u-over").hover()
    values = rates.locator(".u-legend .u-value").all_inner_texts()
    assert values[0].startswith("Nov ") and values[0].endswith(", 2026"), values
    assert all(value.endswith("%") or value == "–" for value in values[1:]), values
    assert charts.locator("details table").count() == 2
    SHOTS.mkdir(exist_ok=True)
    charts.screenshot(path=SHOTS / f"charts-{size}.png", full_page=True)


def test_charts_follow_their_container(charts: Any, size: str) -> None:
    before = charts.locator(".tp-chart canvas").first.bounding_box()["width"]
    figure = charts.locator("figure").first.bounding_box()["width"]
    assert abs(before - figure) < 80
    charts.set_viewport_size({"width": 600, "height": 900})
    # Polled from here: wait_for_function evaluates strings, which script-src 'self' forbids.
    for _ in range(50):
        if charts.locator(".tp-chart canvas").first.bounding_box()["width"] < 600:
            break
        charts.wait_for_timeout(50)
    after = charts.locator(".tp-chart canvas").first.bounding_box()["width"]
    assert after < before
    assert all(painted > 1000 for painted in charts.evaluate(PAINTED))


def test_charts_speak_the_pages_language(browser: Any, harness: AssetsHarness) -> None:
    page = open_page(browser, harness)
    page.goto("/charts?lang=de")
    chart = page.locator(".tp-chart").first
    chart.locator("canvas").wait_for()
    assert chart.get_attribute("aria-label").startswith("Liniendiagramm: Conversions von Holdout")
    assert chart.locator(".u-legend .u-series th").first.inner_text() == "Tag"
    close(page)


def test_a_chart_with_bad_data_stays_as_it_was(browser: Any, harness: AssetsHarness) -> None:
    page = open_page(browser, harness)
    page.goto("/charts?broken=1")
    page.locator(".tp-chart canvas").nth(1).wait_for()
    assert page.locator("figure").first.inner_html() == "<figcaption>Broken</figcaption>"
    assert [text for text in page.problems if "touchpoint chart:" in text] != []
    page.problems.clear()
    close(page)


def content(page: Any) -> str:
    return str(
        page.evaluate("document.querySelector('textarea').touchpointEditor.state.doc.toString()")
    )


def type_at_end(page: Any, text: str) -> None:
    page.locator(".cm-content").click()
    page.keyboard.press("Control+End")
    page.keyboard.type(text)


def test_editor_replaces_the_textarea_with_yaml_highlighting(editor: Any) -> None:
    assert editor.locator("textarea").is_hidden()
    assert content(editor) == CAMPAIGN
    # Keys and values are coloured differently: the YAML grammar is at work.
    key = editor.locator(".cm-line").first.locator("span").first
    assert key.inner_text() == "campaign"
    key_colour = key.evaluate("span => getComputedStyle(span).color")
    text_colour = editor.locator(".cm-content").evaluate("e => getComputedStyle(e).color")
    assert key_colour != text_colour
    assert editor.locator(".cm-lineNumbers .cm-gutterElement").filter(has_text="7").count() == 1
    # The label names the editor, the hint tells how to leave it.
    assert editor.get_by_role("textbox", name="Campaign file").count() == 1
    assert "Esc then Tab leaves the editor" in editor.locator(".tp-editor-hint").inner_text()
    editor.locator("label").click()
    assert editor.evaluate("document.activeElement.classList.contains('cm-content')")
    SHOTS.mkdir(exist_ok=True)
    editor.screenshot(path=SHOTS / "editor-desktop.png", full_page=True)


def completions_after(page: Any, text: str) -> list[str]:
    """The completions the editor offers (Ctrl-Space) with ``text`` typed, the caret at its end."""
    page.evaluate(
        """text => {
            const view = document.querySelector('textarea').touchpointEditor;
            view.dispatch({changes: {from: 0, to: view.state.doc.length, insert: text},
                           selection: {anchor: text.length}});
            view.focus();
        }""",
        text,
    )
    page.keyboard.press("Control+Space")
    options = page.locator(".cm-tooltip-autocomplete li")
    options.first.wait_for()
    texts: list[str] = options.all_inner_texts()
    page.keyboard.press("Escape")
    return texts


def test_editor_completes_keys_and_values_from_the_schema(editor: Any) -> None:
    type_at_end(editor, "trig")
    options = editor.locator(".cm-tooltip-autocomplete li")
    options.first.wait_for()
    assert options.all_inner_texts() == ["trigger"]
    SHOTS.mkdir(exist_ok=True)
    editor.screenshot(path=SHOTS / "editor-completion-desktop.png")
    editor.wait_for_timeout(100)  # keys within 75 ms of the list opening are typing, not choice
    editor.keyboard.press("Enter")
    assert content(editor) == CAMPAIGN + "trigger: "
    assert "weight" in completions_after(editor, CAMPAIGN + "  - {id: a}\n  - ")
    assert completions_after(editor, CAMPAIGN + "frequency:\n  after_") == [
        "after_close",
        "after_convert",
    ]
    assert completions_after(editor, "campaign: x\nkind: ") == ["content", "popup"]
    assert completions_after(editor, CAMPAIGN + "trigger:\n  exit_intent:\n    mobile: ") == [
        "false",
        "true",
    ]


def test_editor_shows_the_validators_problems_at_their_line(editor: Any) -> None:
    editor.locator(".tp-editor-summary").filter(has_text="No problems found.").wait_for()
    type_at_end(editor, "goal: BROKEN")
    summary = editor.locator(".tp-editor-summary")
    summary.filter(has_text="1 problem").wait_for()
    assert summary.inner_text() == "1 problem. Line 8, column 7: unknown key BROKEN"
    assert summary.get_attribute("aria-live") == "polite"
    marked = editor.locator(".cm-lintRange-error")
    assert marked.inner_text() == "BROKEN"
    assert editor.locator(".cm-gutter-lint .cm-lint-marker-error").count() == 1
    SHOTS.mkdir(exist_ok=True)
    editor.screenshot(path=SHOTS / "editor-problem-desktop.png", full_page=True)
    editor.keyboard.press("Backspace")
    summary.filter(has_text="No problems found.").wait_for()
    assert editor.locator(".cm-lintRange-error").count() == 0


def test_editor_says_when_it_cannot_check(browser: Any, harness: AssetsHarness) -> None:
    page = open_page(browser, harness)
    page.goto("/editor?csrf=stale")
    summary = page.locator(".tp-editor-summary")
    summary.filter(has_text="Could not check").wait_for()
    assert summary.inner_text() == (
        "Could not check the file (HTTP 403); it will be checked again on saving."
    )
    page.problems.clear()  # the browser logs the 403
    close(page)


def test_editor_submits_its_text_with_the_form(editor: Any) -> None:
    type_at_end(editor, "priority: 5\n")
    editor.get_by_role("button", name="Save").click()
    editor.wait_for_url("**/editor")
    assert editor.locator("#saved").inner_text() == CAMPAIGN + "priority: 5\n"


def test_editor_does_not_trap_the_keyboard(editor: Any) -> None:
    editor.locator(".cm-content").click()
    editor.keyboard.press("Control+Home")
    editor.keyboard.press("Tab")  # indents, as YAML needs
    assert content(editor).startswith("  campaign:")
    editor.keyboard.press("Escape")
    editor.keyboard.press("Tab")
    assert editor.evaluate("document.activeElement.textContent") == "Save"
    editor.keyboard.press("Shift+Tab")
    assert editor.evaluate("document.activeElement.classList.contains('cm-content')")


def test_editor_at_tablet_size(browser: Any, harness: AssetsHarness) -> None:
    page = open_page(browser, harness, size="tablet")
    page.goto("/editor")
    page.wait_for_selector(".cm-editor")
    type_at_end(page, "goal: BROKEN")
    page.locator(".tp-editor-summary").filter(has_text="1 problem").wait_for()
    box = page.locator(".cm-editor").bounding_box()
    assert box["width"] <= SIZES["tablet"]["width"]
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SHOTS / "editor-tablet.png", full_page=True)
    close(page)
