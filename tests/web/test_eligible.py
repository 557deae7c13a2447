"""POST /tp/v1/eligible: the recheck just before a delayed popup shows."""

from __future__ import annotations

from starlette.testclient import TestClient

from ..consent.test_consent import ALL, grant
from .test_events import CAMPAIGN, at, send


def eligible(client: TestClient, campaign: str = CAMPAIGN):  # type: ignore[no-untyped-def]
    return client.post("/tp/v1/eligible", json={"campaign": campaign})


def test_a_popup_closed_since_the_decision_is_no_longer_eligible(client: TestClient) -> None:
    at(client, 1_000_000)
    grant(client, ALL)
    response = eligible(client)
    assert response.status_code == 200
    assert response.json() == {"eligible": True}
    assert response.headers["cache-control"] == "no-store"
    send(client, {"type": "close", "campaign": CAMPAIGN})  # in another tab
    assert eligible(client).json() == {"eligible": False}
    at(client, 1_000_000 + 7 * 86400)  # the example's after_close: 7d is over
    assert eligible(client).json() == {"eligible": True}


def test_a_conversion_since_the_decision_stops_it(client: TestClient) -> None:
    grant(client, ALL)
    send(client, {"type": "convert", "campaign": CAMPAIGN})
    assert eligible(client).json() == {"eligible": False}


def test_without_marketing_consent_the_decision_stands(client: TestClient) -> None:
    assert eligible(client).json() == {"eligible": True}
    grant(client, ["measurement"])
    assert eligible(client).json() == {"eligible": True}


def test_bad_requests(client: TestClient) -> None:
    assert client.post("/tp/v1/eligible", json={}).status_code == 400
    response = eligible(client, "no-such-campaign")
    assert response.status_code == 422
    assert "no-such-campaign" in response.json()["error"]
