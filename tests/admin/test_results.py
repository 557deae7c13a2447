"""The results overview in the console: the table, the range form and its errors, the CSV, the
chart's data, and the page in German."""

from __future__ import annotations

import html
import json

from starlette.testclient import TestClient
from touchpoint.settings import Settings


def shown(client: TestClient) -> None:
    """One visitor who consented and saw the first-order popup."""
    client.post("/tp/v1/consent", json={"granted": ["marketing", "measurement"]})
    client.post(
        "/tp/v1/events",
        json={
            "events": [
                {"type": "impression", "campaign": "first-order-coupon", "variant": "ten-percent"}
            ]
        },
    )


def test_the_overview_lists_every_campaign_in_an_accessible_table(client: TestClient) -> None:
    shown(client)
    page = client.get("/tp/admin/results")
    assert page.status_code == 200
    assert '<a href="/tp/admin/results" aria-current="page">Results</a>' in page.text
    assert "<caption" in page.text and '<th scope="col"' in page.text
    assert '<th scope="row"><a href="/tp/admin/results/first-order-coupon?' in page.text
    assert '<label for="since">From</label>' in page.text
    series = page.text.split('data-series="')[1].split('"')[0]
    data = json.loads(html.unescape(series))
    # charts.js's shape: a daily series over all campaigns (campaigns are not a time axis)
    assert len(data["x"]) == 30 and data["y"] == "conversions"
    assert [s["label"] for s in data["series"]] == ["Exposures", "Converted"]
    assert sum(data["series"][0]["values"]) == 1
    assert all(len(s["values"]) == 30 for s in data["series"])
    assert '<a href="/tp/admin/results/first-order-coupon?since=' in page.text
    assert 'src="/tp/admin/static/charts.js"' in page.text


def test_the_range_form_shows_its_errors_beside_the_fields(client: TestClient) -> None:
    page = client.get("/tp/admin/results?since=2026-13-01&until=2026-01-01")
    assert page.status_code == 200
    assert 'aria-invalid="true" aria-describedby="since-error"' in page.text
    assert "Write the date as YYYY-MM-DD." in page.text
    backwards = client.get("/tp/admin/results?since=2026-02-01&until=2026-01-01")
    assert 'id="until-error">The end must not be before the start.' in backwards.text
    long = client.get("/tp/admin/results?since=2020-01-01&until=2026-01-01")
    assert "At most 731 days in one report." in long.text
    assert "<table" not in long.text


def test_the_overview_downloads_as_csv(client: TestClient) -> None:
    shown(client)
    page = client.get("/tp/admin/results?since=2026-01-01&until=2026-12-31")
    assert 'href="/tp/admin/results.csv?since=2026-01-01&amp;until=2026-12-31"' in page.text
    response = client.get("/tp/admin/results.csv?since=2026-01-01&until=2026-12-31")
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "campaigns-2026-01-01-2026-12-31.csv" in response.headers["content-disposition"]
    header, *rows = response.text.splitlines()
    assert header.startswith("campaign,kind,armed,exposures,unique_exposed")
    assert rows[0].startswith("first-order-coupon,popup,")
    assert client.get("/tp/admin/results.csv?since=nope").status_code == 400


def test_the_console_speaks_german_when_the_browser_asks_and_switches_on_request(
    client: TestClient,
) -> None:
    shown(client)
    german = client.get("/tp/admin/results", headers={"Accept-Language": "de-AT,de;q=0.9"})
    assert '<html lang="de">' in german.text and "Kampagnenergebnisse" in german.text
    assert "0,0\u00a0%" in german.text  # a German decimal comma
    assert "Angemeldet als ana (Betrachter)" in german.text
    assert (
        "Campaign results"
        in client.get(
            "/tp/admin/results", headers={"Accept-Language": "fr, en;q=0.5, de;q=0.1"}
        ).text
    )
    switched = client.post(
        "/tp/admin/language",
        data={"lang": "de", "next": "/tp/admin/results"},
        follow_redirects=False,
    )
    assert switched.headers["location"] == "/tp/admin/results"
    assert "Kampagnenergebnisse" in client.get("/tp/admin/results").text
    # the switch comes back to the page as it was, its range included
    page = client.get("/tp/admin/results?since=2026-01-01&until=2026-01-31")
    assert (
        'name="next" value="/tp/admin/results?since=2026-01-01&amp;until=2026-01-31"' in page.text
    )


def test_what_the_data_says_is_escaped(client: TestClient, settings: Settings) -> None:
    page = client.get("/tp/admin/results?since=<script>")
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text
