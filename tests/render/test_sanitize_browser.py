"""In Chromium, against a real server: a popup and a content slot whose templates carry the
payloads of issue 15 (in a branch `touchpoint check` cannot reach with its sample page) show
their text, and no payload runs."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import ROOT, LiveServer, page_on
from .test_sanitize import PAYLOADS

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).parent.parent / "artifacts"
# Rendered only on the demo's pages: the sample page of the check is "/".
BRANCH = '{% if page.path != "/" %}' + "\n".join(PAYLOADS) + "{% endif %}"


@pytest.fixture
def payload_server(tmp_path: Path) -> Iterator[LiveServer]:
    rules = tmp_path / "rules"
    (rules / "templates").mkdir(parents=True)
    site = (ROOT / "rules" / "site.yaml").read_text().replace("mode: builtin", "mode: external")
    (rules / "site.yaml").write_text(site)
    shutil.copy(ROOT / "rules" / "templates" / "first-order-coupon.html", rules / "templates")
    (rules / "templates" / "popup.html").write_text(f"<h2>Payload popup</h2>\n{BRANCH}\n")
    (rules / "templates" / "slot.html").write_text(f"<h1>Payload slot</h1>\n{BRANCH}\n")
    (rules / "popup.yaml").write_text(
        "campaign: payload-popup\nkind: popup\ntrigger: load\n"
        "variants:\n  - {id: a, template: popup.html}\n"
    )
    (rules / "slot.yaml").write_text(
        "campaign: payload-slot\nkind: content\nslot: hero\n"
        "variants:\n  - {id: a, template: slot.html}\n"
    )
    server = LiveServer(tmp_path, "--rules-dir", str(rules))
    yield server
    server.stop()


def test_payloads_in_popups_and_slots_run_nothing(browser, payload_server) -> None:  # type: ignore[no-untyped-def]
    with page_on(browser, payload_server.url) as page:
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto("/demo/")
        page.locator("[data-tp-slot=hero] h1").get_by_text("Payload slot").wait_for()
        popup = page.locator("[data-tp-popup]")
        popup.get_by_text("Payload popup").wait_for()
        page.wait_for_timeout(1000)  # an onerror fires once the broken image has failed
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "sanitized-payloads.png"))
        handlers = page.evaluate(
            """() => {
              const roots = [document, ...[...document.querySelectorAll('*')]
                .filter(e => e.shadowRoot).map(e => e.shadowRoot)];
              return roots.flatMap(r => [...r.querySelectorAll('*')])
                .flatMap(e => [...e.attributes].map(a => a.name))
                .filter(n => n.startsWith('on'));
            }"""
        )
        assert dialogs == []
        assert handlers == []
