"""The results pages in real Chromium against a real server, with data pushed through the
public endpoints (consent, decide, events, a coupon reveal) and the server API (purchases, a
redemption): the charts drawn (painted canvas, no CSP violation), every page readable at laptop
and tablet size (screenshots in /tmp/console-shots/)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import httpx2 as httpx
import pytest
from touchpoint.api import keys as apikeys

from ..conftest import ROOT, LiveServer
from ..results.test_attribution import CONSENT_ALL, HOLDOUT_TEST
from .helpers import add_user_with_cli
from .test_console_browser import PASSWORD, SHOTS, SIZES, new_page, sign_in

pytestmark = pytest.mark.browser
VISITORS = 60
PAGES = ("results", "results/holdout-test", "lifecycle", "coupons", "consent")


def play(url: str, shop: dict[str, str]) -> None:
    """Visitors see the shop, a third of them buy (the shop pushes the purchase); one reveals
    the first-order coupon and redeems it."""
    for i in range(VISITORS):
        with httpx.Client(base_url=url) as visitor:
            assert visitor.post("/tp/v1/consent", json=CONSENT_ALL).status_code == 200
            answer = visitor.post("/tp/v1/decide", json={"page": {"path": "/shop/shoes"}}).json()
            (variant,) = [p["variant"] for p in answer["popups"] if p["campaign"] == "holdout-test"]
            kind = "exposure" if variant == "holdout" else "impression"
            seen = {"type": kind, "campaign": "holdout-test", "variant": variant}
            assert visitor.post("/tp/v1/events", json={"events": [seen]}).status_code == 202
            if i % 3 == 0:
                who = visitor.cookies["tp_vid"].split(".")[0]
                purchase = {"type": "purchase", "visitor_id": who, "order_id": f"o-{i}"}
                pushed = httpx.post(f"{url}/tp/v1/api/events", json=purchase, headers=shop)
                assert pushed.status_code == 202, pushed.text
            if i == 0:
                offer = {"campaign": "first-order-coupon", "variant": "ten-percent"}
                code = visitor.post("/tp/v1/coupons/reveal", json=offer).json()["code"]
                order = {"code": code, "order_id": "c-1", "value": 49.5, "currency": "EUR"}
                redeemed = httpx.post(f"{url}/tp/v1/api/coupons/redeem", json=order, headers=shop)
                assert redeemed.status_code == 200, redeemed.text


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("results-pages")
    rules = tmp / "rules"
    shutil.copytree(ROOT / "rules", rules)
    (rules / "holdout-test.yaml").write_text(HOLDOUT_TEST)
    data = tmp / "live-data"
    data.mkdir()
    add_user_with_cli(data, role="viewer")
    token = apikeys.ApiKeys(data / "api_keys.json").create(
        "shop", ["events:write", "coupons:redeem"], now=1
    )
    server = LiveServer(tmp, "--rules-dir", str(rules), "--rate-limit-per-minute=1000000")
    try:
        play(server.url, {"Authorization": f"Bearer {token}"})
        yield server
    finally:
        server.stop()


PAINTED = """figure => {
  const canvas = figure.querySelector('canvas');
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
  return painted;
}"""


def test_the_campaign_page_draws_its_charts_from_the_real_data(browser, server: LiveServer) -> None:  # type: ignore[no-untyped-def]
    page = new_page(browser, server)
    sign_in(page)
    page.wait_for_url("**/tp/admin/results")
    page.get_by_role("link", name="holdout-test").click()
    page.wait_for_url("**/tp/admin/results/holdout-test?*")
    assert page.get_by_role("heading", level=1).inner_text() == "Campaign holdout-test"
    table = page.get_by_role("table", name="Variants").inner_text()
    assert "holdout (control)" in table and "shown" in table
    charts = page.locator("figure.chart.tp-chart-drawn")
    charts.first.wait_for()
    assert charts.count() == 2
    for i in range(2):
        assert charts.nth(i).is_visible()
        assert charts.nth(i).evaluate(PAINTED) > 500  # lines, axes and labels on the canvas
    assert page.get_by_role("img").count() == 2  # each chart one image with a name
    assert page.errors == []


def test_the_overview_chart_is_drawn_and_the_pages_hold_the_pushed_data(
    browser, server: LiveServer
) -> None:  # type: ignore[no-untyped-def]
    page = new_page(browser, server)
    sign_in(page)
    page.wait_for_url("**/tp/admin/results")
    page.locator("figure.chart.tp-chart-drawn").wait_for()
    page.get_by_role("link", name="Coupons").click()
    assert "49.50 EUR" in page.get_by_role("table").nth(1).inner_text()
    page.get_by_role("link", name="Consent").click()
    assert "Revision 1" in page.inner_text("main")
    page.get_by_role("link", name="Lifecycle").click()
    funnel = page.locator("table.funnel").inner_text()
    assert f"visitor\t{VISITORS}" in funnel
    page.locator("figure.chart.tp-chart-drawn").wait_for()
    assert page.errors == []


@pytest.mark.parametrize("size", list(SIZES))
def test_screenshots_of_every_results_page(browser, server: LiveServer, size: str) -> None:  # type: ignore[no-untyped-def]
    SHOTS.mkdir(exist_ok=True)
    for lang in ("en", "de"):
        page = new_page(browser, server, size, locale=lang)
        page.goto("/tp/admin/signin")
        page.locator("#name").fill("ana")
        page.locator("#password").fill(PASSWORD)
        page.locator("main form.stacked button[type=submit]").click()
        page.wait_for_url("**/tp/admin/results")
        for path in PAGES:
            page.goto(f"/tp/admin/{path}")
            if "results" in path:
                page.locator("figure.chart.tp-chart-drawn").first.wait_for()
            name = path.replace("/", "-")
            page.screenshot(path=SHOTS / f"{name}-{lang}-{size}.png", full_page=True)
            assert page.evaluate("document.documentElement.scrollWidth") <= SIZES[size]["width"]
        assert page.errors == []
