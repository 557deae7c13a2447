"""The seeds' lead-scoring example over HTTP, end to end: page views, a popup form with the
e-mail, events pushed through the server API, and the webhooks a real receiver on 127.0.0.1
gets for it: the visitor identified, the stage changed, the form submitted, and at 150 points
the sales webhook with the full profile."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from touchpoint.app import create_app
from touchpoint.settings import Settings

from ..api.test_api import ALL, new_key
from ..conftest import ROOT, with_sales_webhook
from ..webhooks.test_delivery import FAST, SECRET, Receiver, receiver, verified, wait_until

__all__ = ["receiver"]  # the fixture

DAY = 86400


@pytest.fixture
def journey(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, list[int], dict[str, str]]]:
    """The example rules with endpoints `sales` (threshold actions only) and `crm` (every
    other event) pointing at the receiver; a clock the test moves; an API key."""
    rules_dir = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules_dir)
    with_sales_webhook(rules_dir)  # what the example's comment says to do with the endpoint
    site = (rules_dir / "site.yaml").read_text()
    (rules_dir / "site.yaml").write_text(
        site + "webhooks:\n"
        f"  sales: {{url: '{receiver.url}', secret_env: HOOK_SECRET}}\n"
        f"  crm: {{url: '{receiver.url}', secret_env: HOOK_SECRET,"
        " events: [visitor.identified, stage.changed, form.submitted]}\n"
    )
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    settings = Settings.load(
        {
            "data_dir": str(tmp_path / "data"),
            "rules_dir": str(rules_dir),
            "data_depth": "full",
            **FAST,
        },
        environ={},
    )
    # Three days ago: the outbox's rows are due by the real clock the deliverer reads.
    clock = [int(time.time()) - 3 * DAY]
    with TestClient(create_app(settings)) as client:
        client.app.state.tp.now = lambda: clock[0]  # type: ignore[attr-defined]
        yield client, clock, {"Authorization": f"Bearer {new_key(settings)}"}


def received(receiver: Receiver) -> list[dict[str, Any]]:
    with receiver.lock:
        return [json.loads(r["body"]) | {"request": r} for r in receiver.requests]


def test_the_seeds_lead_journey_ends_with_the_sales_webhook(
    journey: tuple[TestClient, list[int], dict[str, str]], receiver: Receiver
) -> None:
    client, clock, auth = journey
    client.post("/tp/v1/consent", json={"granted": ALL})
    query = "?utm_source=facebook&utm_medium=social&utm_campaign=spring-workshop"
    page = {"path": "/demo/", "query": query, "referrer": "https://www.facebook.com/"}
    client.post("/tp/v1/decide", json={"page": page})  # a consented first visit: +5
    clock[0] += 2 * DAY
    client.post("/tp/v1/decide", json={"page": {"path": "/demo/"}})  # a return visit: +5
    # The workshop popup's form: the e-mail identifies, the signup is a form_submit (+20).
    client.post("/tp/v1/identify", json={"email": "ada@example.com", "first_name": "Ada"})
    sent = client.post(
        "/tp/v1/events",
        json={
            "events": [
                {
                    "type": "form_submit",
                    "name": "workshop",
                    "props": {"seats": "2"},
                    "path": "/demo/",
                }
            ]
        },
    )
    assert sent.status_code == 202 and sent.json() == {"stored": 1}
    ref = {"email": "ada@example.com"}
    pushed = [{"type": "webinar", "name": "trail-running-101", **ref}]  # +10
    pushed += [{"type": "newsletter_open", **ref}] * 6  # +30
    pushed += [{"type": "email_click", "url": "https://shop.example/w", **ref}] * 7  # +70
    assert (
        client.post("/tp/v1/api/events", json={"events": pushed}, headers=auth).status_code == 202
    )
    profile = client.get("/tp/v1/api/visitors/email:ada@example.com", headers=auth).json()
    assert (profile["score"], profile["stage"]) == (140, "lead")
    last = {"type": "email_click", "url": "https://shop.example/w", **ref}  # 150
    assert client.post("/tp/v1/api/events", json=last, headers=auth).status_code == 202

    wait_until(lambda: any(r["event"] == "score.threshold" for r in received(receiver)))
    wait_until(lambda: len(received(receiver)) >= 4)
    deliveries = received(receiver)
    for delivery in deliveries:
        assert verified(delivery["request"])["id"] == delivery["request"]["delivery"]
    by_event = {d["event"]: d["data"] for d in deliveries}
    assert set(by_event) == {
        "visitor.identified",
        "stage.changed",
        "form.submitted",
        "score.threshold",
    }
    who = [{"kind": "email", "value": "ada@example.com"}]
    assert by_event["visitor.identified"]["identifiers"] == who
    assert by_event["visitor.identified"]["first_name"] == "Ada"
    assert (by_event["stage.changed"]["before"], by_event["stage.changed"]["after"]) == (
        "visitor",
        "lead",
    )
    assert by_event["form.submitted"]["form"] == "workshop"
    assert by_event["form.submitted"]["fields"] == {"seats": "2"}
    sales = by_event["score.threshold"]
    assert sales["threshold"] == "sales-ready" and sales["score"] == 150
    assert sales["identifiers"] == who
    full = sales["profile"]
    assert full["first_touch"]["channel"] == "organic_social"
    assert full["first_touch"]["utm"]["campaign"] == "spring-workshop"
    assert full["visits"] == 2 and full["first_name"] == "Ada"
    assert full["attributes"] == {"sales_ready": True}
    # Both endpoints got what they asked for: sales only the threshold it is named in.
    threshold_deliveries = [d for d in deliveries if d["event"] == "score.threshold"]
    assert len(threshold_deliveries) == 1
