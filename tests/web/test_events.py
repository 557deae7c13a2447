"""POST /tp/v1/events: popup impressions, closes and conversions, and the frequency they drive;
behaviour events (dwell, scroll, clicks, custom events, form submissions) and what they score."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from ..consent.test_consent import ALL, grant
from .test_decide import counts, decide

CAMPAIGN = "first-order-coupon"

# A batch as snippet/src/tracking.js sends it when the page is left.
BEHAVIOUR = [
    {"type": "click", "name": "size-guide", "path": "/demo/products/trail-runner.html"},
    {"type": "click", "name": "", "path": "/demo/"},  # an empty data-tp-track, no text
    {
        "type": "custom",
        "name": "video-played",
        "props": {"video": "trail", "seconds": 30},
        "path": "/demo/",
    },
    {"type": "dwell", "value": 75, "path": "/demo/"},
    {"type": "scroll", "value": 80, "path": "/demo/"},
]


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
    response = send(client, {"type": "dwell", "value": 12, "path": "/"})
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
        ([{"type": "page_view", "path": "/"}], 400, "events[0].type must be one of"),
        (
            [BEHAVIOUR[0], {"type": "dwell", "value": "12"}],
            400,
            "events[1].value must be a number from 0 to 86400",
        ),
        ([{"type": "scroll", "value": 101}], 400, "events[0].value must be a number from 0 to 100"),
        ([{"type": "dwell", "value": 5, "name": "x"}], 400, "events[0]: unknown key 'name'"),
        ([{"type": "custom", "props": {}}], 400, "events[0].name is required"),
        ([{"type": "custom", "name": "x" * 65}], 400, "events[0].name is longer than 64"),
        (
            [{"type": "custom", "name": "x", "props": {"a": [1]}}],
            400,
            "events[0].props.a must be a string, number or boolean",
        ),
        ([{"type": "custom", "name": "x", "props": {"a b": 1}}], 400, "events[0].props: 'a b'"),
        ([{"type": "click", "name": "x", "path": "x"}], 400, "events[0].path must start with /"),
        ([{"type": "form_submit"}], 400, "events[0].name is required"),
        # Issue 15: a type that is no string was a 500; a NUL character was stored.
        ([{"type": {}}], 400, "events[0].type must be one of"),
        ([{"type": []}], 400, "events[0].type must be one of"),
        ([{"type": "custom", "name": "a\x00b"}], 400, "events[0].name must not contain a NUL"),
        (
            [{"type": "custom", "name": "x", "props": {"a": "\x00"}}],
            400,
            "events[0].props.a must not contain a NUL",
        ),
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


def stored(client: TestClient, at_least: int) -> list[dict]:  # type: ignore[type-arg]
    """The visitor's event rows once ``at_least`` are committed (behaviour-only batches are
    answered before their commit)."""
    reader = client.app.state.tp.reader  # type: ignore[attr-defined]
    deadline = time.monotonic() + 5
    while True:
        rows = reader.conn.execute(
            "SELECT type, name, value, props, path FROM events ORDER BY id"
        ).fetchall()
        if len(rows) >= at_least or time.monotonic() > deadline:
            return [
                dict(zip(("type", "name", "value", "props", "path"), r, strict=True)) for r in rows
            ]
        time.sleep(0.01)


def profile(client: TestClient):  # type: ignore[no-untyped-def]
    tp = client.app.state.tp  # type: ignore[attr-defined]
    ((visitor,),) = tp.reader.conn.execute("SELECT id FROM visitors").fetchall()
    return tp.reader.visitor(visitor).profile


def test_behaviour_events_are_stored_with_measurement_consent_alone(client: TestClient) -> None:
    grant(client, ["measurement"])
    response = send(client, *BEHAVIOUR)
    assert response.status_code == 202
    assert response.json() == {"stored": 5}
    rows = stored(client, 5)
    assert rows[0] == {
        "type": "click",
        "name": "size-guide",
        "value": None,
        "props": None,
        "path": "/demo/products/trail-runner.html",
    }
    assert rows[2]["props"] == '{"video":"trail","seconds":30}'
    assert [(r["type"], r["value"]) for r in rows[3:]] == [("dwell", 75.0), ("scroll", 80.0)]
    assert profile(client).score == 0  # no profile without personalisation


def test_each_kind_of_event_needs_its_own_consent(client: TestClient) -> None:
    grant(client, ["measurement"])
    response = send(client, BEHAVIOUR[0], {"type": "close", "campaign": CAMPAIGN})
    assert response.json() == {"stored": 1, "dropped": 1, "reason": "no consent"}
    grant(client, ["marketing"])
    response = send(client, BEHAVIOUR[0], {"type": "close", "campaign": CAMPAIGN})
    assert response.json() == {"stored": 1, "dropped": 1, "reason": "no consent"}
    # Withdrawing measurement (the second answer grants marketing only) dropped the click.
    assert [r["type"] for r in stored(client, 1)] == ["close"]


@pytest.fixture
def scoring_rules(rules_dir: Path) -> Path:
    for name in ("scoring.yaml", "lifecycle.yaml"):
        shutil.copy(Path(__file__).parent.parent.parent / "rules" / name, rules_dir)
    return rules_dir


def test_behaviour_scores_with_personalisation(scoring_rules: Path, client: TestClient) -> None:
    at(client, 1_000_000)
    grant(client, ALL)
    page = {"path": "/", "referrer": "https://l.instagram.com/"}
    client.post("/tp/v1/decide", json={"page": page})  # a consented first visit from social: +5
    response = send(client, {"type": "form_submit", "name": "workshop", "path": "/workshop"})
    assert response.json() == {"stored": 1}  # answered after the commit
    assert profile(client).score == 25
    send(client, {"type": "dwell", "value": 61, "path": "/"})
    stored(client, 3)
    assert profile(client).score == 26
