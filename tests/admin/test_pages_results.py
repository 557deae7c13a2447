"""The lifecycle, coupons and consent pages of the console, with data pushed through the public
endpoints and the server API: what each shows, in German too, and bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from touchpoint.api import keys as apikeys
from touchpoint.app import create_app
from touchpoint.settings import Settings

from ..conftest import ROOT
from ..databases import opened

CONSENT_ALL = {"granted": ["measurement", "personalisation", "marketing"]}
PRODUCT = {"page": {"path": "/demo/products/trail-runner.html"}}


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """The example rules whole: their pools, lifecycle and campaigns."""
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    return rules


def visit(settings: Settings, consent: dict[str, list[str]]) -> TestClient:
    """A new visitor who answers the consent banner and views a product page."""
    visitor = TestClient(create_app(settings))
    visitor.__enter__()
    assert visitor.post("/tp/v1/consent", json=consent).status_code == 200
    assert visitor.post("/tp/v1/decide", json=PRODUCT).status_code == 200
    return visitor


# --- lifecycle --------------------------------------------------------------------------------


def test_the_lifecycle_funnel_flows_thresholds_and_chart(
    client: TestClient, settings: Settings
) -> None:
    for _ in range(2):
        visit(settings, CONSENT_ALL).__exit__(None, None, None)
    today = client.get("/tp/admin/lifecycle").text.split('name="until" type="date" value="')[1][:10]
    with opened(settings.database_url) as db:  # a lapse, as the nightly stage moves count it
        db.execute(
            "INSERT INTO rollup_stages (day, before, after, moves) VALUES (?, 'customer',"
            " 'inactive', 3)",
            (today,),
        )
    page = client.get("/tp/admin/lifecycle")
    assert page.status_code == 200
    assert '<a href="/tp/admin/lifecycle" aria-current="page">Lifecycle</a>' in page.text
    assert '<th scope="row">visitor</th>\n      <td class="num">2</td>' in page.text
    assert '<th scope="row">(new profile)</th>\n      <td>visitor</td>' in page.text
    assert '<tr class="backwards">\n      <th scope="row">customer</th>' in page.text
    assert "↩ backwards" in page.text
    assert 'data-chart="lifecycle"' in page.text
    csv = client.get("/tp/admin/lifecycle.csv")
    assert csv.text.splitlines()[0] == "from,to,visitors,backwards"
    assert "customer,inactive,3,True" in csv.text
    german = client.get("/tp/admin/lifecycle", headers={"Accept-Language": "de"})
    assert "<h1>Lebenszyklus</h1>" in german.text and "↩ rückwärts" in german.text


def test_the_lifecycle_refuses_bad_ranges_beside_the_fields(client: TestClient) -> None:
    page = client.get("/tp/admin/lifecycle?since=2026-01-01&until=2025-01-01")
    assert 'id="until-error">The end must not be before the start.' in page.text
    long = client.get("/tp/admin/lifecycle?since=2020-01-01&until=2026-01-01")
    assert "At most 731 days in one report." in long.text and "<table" not in long.text
    assert client.get("/tp/admin/lifecycle.csv?since=x").status_code == 400


# --- coupons ----------------------------------------------------------------------------------


def api_key(settings: Settings, *scopes: str) -> dict[str, str]:
    token = apikeys.ApiKeys(settings.api_keys_path).create("shop", list(scopes), now=1)
    return {"Authorization": f"Bearer {token}"}


def test_coupon_stock_with_the_low_warning_and_what_each_pool_brought_in(
    client: TestClient, settings: Settings
) -> None:
    shop = api_key(settings, "coupons:write", "coupons:redeem")
    codes = {"codes": ["SPRING-1", "SPRING-2", "SPRING-3"]}
    assert client.post("/tp/v1/api/coupons/spring/codes", json=codes, headers=shop).is_success
    visitor = visit(settings, CONSENT_ALL)
    revealed = visitor.post(
        "/tp/v1/coupons/reveal", json={"campaign": "first-order-coupon", "variant": "ten-percent"}
    )
    assert revealed.status_code == 200, revealed.text
    visitor.__exit__(None, None, None)
    order = {"code": revealed.json()["code"], "order_id": "O-1", "value": 59.9, "currency": "EUR"}
    assert client.post("/tp/v1/api/coupons/redeem", json=order, headers=shop).is_success

    page = client.get("/tp/admin/coupons")
    assert page.status_code == 200
    spring = page.text.split('<th scope="row">spring</th>')[1].split("</tr>")[0]
    assert '<td class="num">3</td>' in spring and "⚠ Low: below 100" in spring
    welcome = page.text.split('<th scope="row">welcome</th>')[1].split("</tr>")[0]
    assert "unlimited" in welcome
    used = page.text.split('id="used-caption"')[1]
    row = used.split('<th scope="row">welcome</th>')[1].split("</tr>")[0]
    assert ">first-order-coupon</a>" in row
    assert row.count('<td class="num">1</td>') == 2  # one code revealed, one redeemed
    assert "59.90 EUR" in row
    german = client.get("/tp/admin/coupons", headers={"Accept-Language": "de"})
    assert "⚠ Knapp: unter 100" in german.text and "unbegrenzt" in german.text
    bad = client.get("/tp/admin/coupons?since=2026-99-01")
    assert 'id="since-error"' in bad.text and "spring" in bad.text  # the stock stays


# --- consent ----------------------------------------------------------------------------------


def test_the_consent_summary_per_revision(client: TestClient, settings: Settings) -> None:
    visit(settings, CONSENT_ALL).__exit__(None, None, None)
    visit(settings, {"granted": []}).__exit__(None, None, None)
    visit(settings, {"granted": ["measurement"]}).__exit__(None, None, None)
    page = client.get("/tp/admin/consent")
    assert page.status_code == 200
    assert "All answers so far" in page.text and "<h2" in page.text
    totals = page.text.split("<tfoot>")[1].split("</tfoot>")[0]
    assert totals.count('<td class="num">1</td>') == 3  # accepted, rejected, customised
    assert '<th scope="row">measurement</th>\n      <td class="num">2</td>' in page.text
    german = client.get("/tp/admin/consent", headers={"Accept-Language": "de"})
    assert "Alle akzeptiert" in german.text and "66,7\u00a0%" in german.text
    none = client.get("/tp/admin/consent?since=2020-01-01&until=2020-01-31")
    assert "No consent answers in this time." in none.text
    bad = client.get("/tp/admin/consent?since=2026-01-02&until=2026-01-01")
    assert 'id="until-error">The end must not be before the start.' in bad.text


def test_every_page_needs_a_sign_in(settings: Settings) -> None:
    with TestClient(create_app(settings)) as anonymous:
        for path in ("/lifecycle", "/coupons", "/consent", "/results/x", "/lifecycle.csv"):
            answer = anonymous.get("/tp/admin" + path, follow_redirects=False)
            assert answer.status_code == 303 and "/tp/admin/signin" in answer.headers["location"]
