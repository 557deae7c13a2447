"""POST /tp/v1/events: popup impressions, closes and conversions, and the frequency they drive."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from .test_consent import ALL, grant
from .test_decide import counts, decide

CAMPAIGN = "first-order-coupon"


def send(client: TestClient, *events: dict):  # type: ignore[no-untyped-def,type-arg]
    return client.post("/tp/v1/events", json={"events": list(events)})


def at(client: TestClient, seconds: int) -> None:
    client.app.state.tp.now = lambda: seconds  # type: ignore[attr-defined]


def test_closed_popup_is_suppressed_for_after_close_then_returns(client: TestClient) -> None:
    at(client, 1_000_000)
    grant(client, ALL)
    response = send(
        client,
        {"type": "impression", "campaign": CAMPAIGN, "variant": "ten-percent", "path": "/x"},
        {"type": "close", "campaign": CAMPAIGN, "variant": "ten-percent"},
    )
    assert response.status_code == 202
    assert response.json() == {"stored": 2}
    assert decide(client).json()["popups"] == []
    at(client, 1_000_000 + 7 * 86400 - 1)  # the example rules say after_close: 7d
    assert decide(client).json()["popups"] == []
    at(client, 1_000_000 + 7 * 86400)
    assert decide(client).json()["popups"][0]["campaign"] == CAMPAIGN


def test_converted_popup_never_returns(client: TestClient) -> None:
    at(client, 1_000_000)
    grant(client, ALL)
    send(client, {"type": "convert", "campaign": CAMPAIGN})
    at(client, 1_000_000 + 400 * 86400)
    assert decide(client).json()["popups"] == []


def test_history_is_stored_per_visitor(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    grant(client, ALL)
    send(client, {"type": "close", "campaign": CAMPAIGN})
    client.cookies.clear()
    grant(client, ALL)  # somebody else on another browser
    assert decide(client).json()["popups"][0]["campaign"] == CAMPAIGN


def test_without_consent_nothing_is_stored(client: TestClient) -> None:
    response = send(client, {"type": "close", "campaign": CAMPAIGN})
    assert response.status_code == 202
    assert response.json() == {"stored": 0, "reason": "no consent"}
    assert counts(client)["events"] == 0


def test_without_marketing_consent_nothing_is_stored(client: TestClient) -> None:
    grant(client, ["measurement"])
    assert send(client, {"type": "close", "campaign": CAMPAIGN}).json()["stored"] == 0
    assert counts(client)["events"] == 0


@pytest.mark.parametrize(
    ("events", "status", "message"),
    [
        ([], 400, "events must be a non-empty list"),
        ("close", 400, "events must be a non-empty list"),
        ([42], 400, "events[0] must be an object"),
        ([{"type": "explode", "campaign": CAMPAIGN}], 400, "events[0].type must be one of"),
        ([{"type": "close", "campaign": "no-such-thing"}], 422, "unknown campaign 'no-such-thing'"),
        ([{"type": "close", "campaign": 7}], 400, "campaign must be a string"),
        ([{"type": "close", "campaign": CAMPAIGN, "variant": {}}], 400, "variant must be a string"),
        ([{"type": "close", "campaign": CAMPAIGN}] * 51, 400, "at most 50 events"),
    ],
)
def test_bad_events_store_nothing(client: TestClient, events, status: int, message: str) -> None:  # type: ignore[no-untyped-def]
    grant(client, ALL)
    send(client, {"type": "impression", "campaign": CAMPAIGN})
    response = client.post("/tp/v1/events", json={"events": events})
    assert response.status_code == status
    assert message in response.json()["error"]
    assert counts(client)["events"] == 1  # what was stored before is still there


def test_one_bad_event_rejects_the_whole_batch(client: TestClient) -> None:
    grant(client, ALL)
    response = send(
        client, {"type": "close", "campaign": CAMPAIGN}, {"type": "close", "campaign": "gone"}
    )
    assert response.status_code == 422
    assert counts(client)["events"] == 0


def test_event_without_campaign_is_a_400(client: TestClient) -> None:
    grant(client, ALL)
    response = send(client, {"type": "close"})
    assert response.status_code == 400
    assert response.json() == {"error": "events[0].campaign is required"}


def test_an_unknown_variant_is_refused(client: TestClient) -> None:
    client.post("/tp/v1/consent", json={"granted": ["marketing"]})
    event = {"type": "impression", "campaign": CAMPAIGN, "variant": "made-up"}
    response = client.post("/tp/v1/events", json={"events": [event]})
    assert response.status_code == 422
    assert "has no variant 'made-up'" in response.json()["error"]
