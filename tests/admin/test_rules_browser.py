"""The rules pages in real Chromium against a real server: an editor opens a campaign, types an
error and sees it at its line, the save is refused with its file:line message, a valid edit is
served within the reload interval and restored from the history; the simulator; screenshots of
every page at laptop and tablet size (/tmp/console-shots/)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..conftest import ROOT, LiveServer
from .helpers import add_user_with_cli
from .test_console_browser import SHOTS, SIZES, new_page, sign_in

pytestmark = pytest.mark.browser
FILE = "first-order-coupon.yaml"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    """The demo server on a copy of the example rules, with one editor."""
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    data = tmp_path / "live-data"
    data.mkdir()
    add_user_with_cli(data)
    server = LiveServer(tmp_path, "--rules-dir", str(rules))
    server.rules_dir = rules  # type: ignore[attr-defined]
    yield server
    server.stop()


def select_in_editor(page: Any, text: str, part: str) -> int:
    """Select ``part`` of the first ``text`` in the editor; returns its line."""
    return int(
        page.evaluate(
            """([text, part]) => {
                const view = document.querySelector('textarea[data-editor]').touchpointEditor;
                const doc = view.state.doc.toString();
                const from = doc.indexOf(text) + text.indexOf(part);
                view.dispatch({selection: {anchor: from, head: from + part.length}});
                view.focus();
                return view.state.doc.lineAt(from).number;
            }""",
            [text, part],
        )
    )


def served_priority(page: Any, expected: str, *, seconds: float = 8.0) -> None:
    """Reload the rules page until first-order-coupon's priority is ``expected``."""
    deadline = time.monotonic() + seconds
    while True:
        page.goto("/tp/admin/rules")
        row = page.get_by_role("row").filter(
            has=page.get_by_role("cell", name="first-order-coupon", exact=True)
        )
        if row.get_by_role("cell", name=expected, exact=True).count():
            return
        assert time.monotonic() < deadline, f"priority {expected} not served in {seconds} s"
        page.wait_for_timeout(250)


def test_an_edit_is_refused_then_saved_served_and_restored(browser, server: LiveServer) -> None:  # type: ignore[no-untyped-def]
    page = new_page(browser, server)
    sign_in(page)
    page.wait_for_url("**/tp/admin/results")
    page.get_by_role("link", name="Rules").click()
    page.get_by_role("link", name=FILE).click()
    summary = page.locator(".tp-editor-summary")
    summary.filter(has_text="No problems found.").wait_for()
    line = select_in_editor(page, "priority: 10", "10")
    page.keyboard.type("high")
    summary.filter(has_text="1 problem").wait_for()
    assert f"Line {line}, column 1: priority: must be a whole number" in summary.inner_text()
    gutter = page.locator(".cm-gutter-lint .cm-gutterElement").filter(
        has=page.locator(".cm-lint-marker-error")
    )
    assert gutter.count() == 1
    page.get_by_role("button", name="Save").click()
    alert = page.get_by_role("alert")
    assert "Not saved" in alert.inner_text()
    assert f"{FILE}:{line}:1: priority: must be a whole number" in page.inner_text("#problems")
    assert "priority: high" in page.locator("textarea[name=text]").input_value()

    select_in_editor(page, "priority: high", "high")
    page.keyboard.type("42")
    summary.filter(has_text="No problems found.").wait_for()
    page.get_by_role("button", name="Save").click()
    assert (
        "the server serves it within the reload interval"
        in page.get_by_role("status").first.inner_text()
    )
    served_priority(page, "42")
    assert "priority: 42" in (server.rules_dir / FILE).read_text()  # type: ignore[attr-defined]

    page.goto(f"/tp/admin/rules/history?file={FILE}")
    assert page.get_by_role("cell", name="ana").count() == 1
    page.get_by_role("button", name="Restore #1").click()
    page.wait_for_url(f"**/tp/admin/rules/edit?file={FILE}&saved=3")
    served_priority(page, "10")
    assert page.errors == []


def test_a_viewer_reads_a_rules_file_and_is_refused_an_edit(browser, server: LiveServer) -> None:  # type: ignore[no-untyped-def]
    """A viewer gets the file without an editor or a save button; a save posted anyway, with
    the viewer's own valid CSRF token, is refused and changes nothing."""
    add_user_with_cli(server.data_dir, "vic", role="viewer")
    before = (server.rules_dir / FILE).read_text()  # type: ignore[attr-defined]
    page = new_page(browser, server)
    sign_in(page, user="vic")
    page.wait_for_url("**/tp/admin/results")
    page.goto(f"/tp/admin/rules/edit?file={FILE}")
    assert "editing needs the editor role" in page.inner_text("main")
    assert page.locator("textarea[data-editor]").count() == 0
    assert page.get_by_role("button", name="Save").count() == 0
    with page.expect_navigation():
        page.evaluate(
            """([file, text]) => {
                const form = document.createElement('form');
                form.method = 'post';
                form.action = '/tp/admin/rules/edit?file=' + file;
                const csrf = document.querySelector('input[name=csrf]').value;
                for (const [name, value] of [['csrf', csrf], ['text', text], ['version', '']]) {
                    const input = document.createElement('input');
                    input.type = 'hidden';
                    input.name = name;
                    input.value = value;
                    form.appendChild(input);
                }
                document.body.appendChild(form);
                form.submit();
            }""",
            [FILE, before.replace("priority: 10", "priority: 99")],
        )
    assert "This needs the editor role; you are signed in as viewer." in page.inner_text("main")
    assert (server.rules_dir / FILE).read_text() == before  # type: ignore[attr-defined]
    assert page.errors == []


def test_the_simulator_explains_a_page(browser, server: LiveServer) -> None:  # type: ignore[no-untyped-def]
    page = new_page(browser, server)
    sign_in(page)
    page.wait_for_url("**/tp/admin/results")
    page.get_by_role("link", name="Simulator").click()
    page.get_by_label("Path or URL").fill("/demo/products/trail-runner.html")
    page.get_by_label("A what-if profile").check()
    page.get_by_label("What-if profile (JSON)").fill('{"visits": 3}')
    page.get_by_label("Trigger that fires").select_option("exit_intent")
    page.get_by_role("button", name="Simulate").click()
    assert "When exit_intent fires: first-order-coupon" in page.inner_text("main")
    table = page.get_by_role("table", name="Every campaign and why")
    assert "chosen (ten-percent)" in table.inner_text()
    page.get_by_label("What-if profile (JSON)").fill("{oops")
    page.get_by_role("button", name="Simulate").click()
    field = page.get_by_label("What-if profile (JSON)")
    assert field.get_attribute("aria-invalid") == "true"
    assert "Not JSON" in page.inner_text("#profile-error")
    assert page.errors == []


@pytest.mark.parametrize("size", list(SIZES))
def test_screenshots_of_the_rules_pages(browser, server: LiveServer, size: str) -> None:  # type: ignore[no-untyped-def]
    SHOTS.mkdir(exist_ok=True)
    page = new_page(browser, server, size)
    sign_in(page)
    page.wait_for_url("**/tp/admin/results")

    def shot(name: str) -> None:
        page.screenshot(path=SHOTS / f"{name}-{size}.png", full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= SIZES[size]["width"], name

    page.goto("/tp/admin/rules")
    shot("rules")
    page.goto(f"/tp/admin/rules/edit?file={FILE}")
    page.locator(".tp-editor-summary").filter(has_text="No problems found.").wait_for()
    shot("rules-edit")
    select_in_editor(page, "priority: 10", "10")
    page.keyboard.type("high")
    page.locator(".tp-editor-summary").filter(has_text="1 problem").wait_for()
    page.get_by_role("button", name="Save").click()
    shot("rules-edit-refused")
    page.get_by_text("What the change would do").click()
    page.get_by_label("Path or URL").fill("/demo/products/trail-runner.html")
    select_in_editor(page, "priority: high", "high")
    page.keyboard.type("10")
    page.get_by_role("button", name="Simulate this text").click()
    page.get_by_role("table", name="Every campaign and why").wait_for()
    shot("rules-edit-simulated")
    page.get_by_role("button", name="Save").click()
    page.goto(f"/tp/admin/rules/history?file={FILE}")
    shot("rules-history")
    page.goto(f"/tp/admin/rules/revision?file={FILE}&id=1")
    shot("rules-revision")
    page.goto("/tp/admin/rules/new")
    shot("rules-new")
    page.goto("/tp/admin/simulator")
    page.get_by_label("Path or URL").fill("/demo/products/trail-runner.html")
    page.get_by_label("Slots on the page (space-separated)").fill("hero")
    page.get_by_role("button", name="Simulate").click()
    shot("simulator")
    assert page.errors == []
