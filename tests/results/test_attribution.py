"""Attribution through the real routes: a campaign's goal converts its shown and its holdout
visitors alike (a purchase pushed by the shop, a page view), within the window after their
exposure; without a goal the popup's own conversion counts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from touchpoint.api import keys as apikeys
from touchpoint.app import create_app
from touchpoint.settings import Settings

CONSENT_ALL = {"granted": ["measurement", "personalisation", "marketing"]}
HOLDOUT_TEST = """\
campaign: holdout-test
kind: popup
trigger: {scroll_percent: 50}
audience: {page.path: /shop/*}
frequency: {after_close: 0, after_convert: 0}
goal: {event: purchase, within: 7d}
variants:
  - {id: shown, weight: 1, template: newsletter-signup.html}
  - {id: holdout, weight: 1, control: true}
"""
THANKS_TEST = """\
campaign: thanks-test
kind: popup
trigger: {after_seconds: 1}
audience: {page.path: /shop/*}
frequency: {after_close: 0, after_convert: 0}
priority: 5
goal: {event: page_view, path: /thanks*}
variants:
  - {id: only, template: newsletter-signup.html}
"""


@pytest.fixture
def client(rules_dir: Path, settings: Settings) -> Iterator[TestClient]:
    (rules_dir / "holdout-test.yaml").write_text(HOLDOUT_TEST)
    (rules_dir / "thanks-test.yaml").write_text(THANKS_TEST)
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        yield client


def auth(settings: Settings) -> dict[str, str]:
    keys = apikeys.ApiKeys(settings.api_keys_path)
    token = keys.create("shop", ["events:write", "reports:read"], now=1)
    return {"Authorization": f"Bearer {token}"}


def exposed(client: TestClient) -> tuple[str, dict[str, str]]:
    """A new consenting visitor sees the shop page; their id and variant per campaign."""
    client.cookies.clear()
    assert client.post("/tp/v1/consent", json=CONSENT_ALL).status_code == 200
    answer = client.post("/tp/v1/decide", json={"page": {"path": "/shop/shoes"}}).json()
    variants = {p["campaign"]: p["variant"] for p in answer["popups"]}
    events = [
        {
            "type": "exposure"
            if campaign == "holdout-test" and variant == "holdout"
            else "impression",
            "campaign": campaign,
            "variant": variant,
        }
        for campaign, variant in variants.items()
    ]
    assert client.post("/tp/v1/events", json={"events": events}).status_code == 202
    return client.cookies["tp_vid"].split(".")[0], variants


def converted(client: TestClient, headers: dict[str, str], campaign: str) -> dict[str, Any]:
    report = client.get(f"/tp/v1/api/reports/campaigns/{campaign}", headers=headers).json()
    return {v["variant"]: v["unique_converted"] for v in report["variants"]}


def test_a_purchase_converts_shown_and_holdout_visitors(
    client: TestClient, settings: Settings
) -> None:
    headers = auth(settings)
    buyers: dict[str, int] = {"shown": 0, "holdout": 0}
    for i in range(40):
        visitor, variants = exposed(client)
        if i % 3 == 0:
            variant = variants["holdout-test"]
            buyers[variant] += 1
            purchase = {"type": "purchase", "visitor_id": visitor, "order_id": f"o-{i}"}
            pushed = client.post("/tp/v1/api/events", json=purchase, headers=headers)
            assert pushed.status_code == 202, pushed.text
        elif i % 3 == 1:  # the popup's own conversion: counted, but it is not the goal
            convert = {"type": "convert", "campaign": "holdout-test", "variant": "shown"}
            client.post("/tp/v1/events", json={"events": [convert]})
    assert buyers["shown"] and buyers["holdout"]
    assert converted(client, headers, "holdout-test") == buyers


def test_a_page_view_goal(client: TestClient, settings: Settings) -> None:
    headers = auth(settings)
    exposed(client)
    client.post("/tp/v1/decide", json={"page": {"path": "/thanks.html"}})
    client.post("/tp/v1/decide", json={"page": {"path": "/thanks.html"}})  # once per visitor
    exposed(client)
    client.post("/tp/v1/decide", json={"page": {"path": "/shop/more"}})  # not the goal
    assert converted(client, headers, "thanks-test") == {"only": 1}
