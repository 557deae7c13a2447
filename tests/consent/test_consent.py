"""POST /tp/v1/consent: the cookie exists only with consent, and every answer is logged."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient
from touchpoint.app import create_app

from ..conftest import PRODUCT
from ..databases import INTEGRITY_ERRORS, opened
from ..web.test_decide import counts, decide

ALL = ["marketing", "measurement", "personalisation"]


def grant(client: TestClient, granted: list[str], **extra):  # type: ignore[no-untyped-def]
    return client.post("/tp/v1/consent", json={"granted": granted, **extra})


def test_granting_sets_the_signed_recognition_cookie(client: TestClient) -> None:
    response = grant(client, ALL, method="banner-accept-all")
    assert response.status_code == 200
    assert response.json() == {"revision": 1, "granted": ALL}
    cookie = response.headers["set-cookie"]
    for attribute in ("HttpOnly", "Max-Age=34128000", "Path=/", "SameSite=lax"):
        assert attribute in cookie
    assert "Secure" not in cookie  # plain http in this test; https gets Secure (below)
    body = decide(client).json()
    assert body["consent"] == {
        "revision": 1,
        "granted": ALL,
        "prompt": False,
        "known": True,
        "mode": "builtin",
    }
    log = client.app.state.tp.reader.consent_log(  # type: ignore[attr-defined]
        client.app.state.tp.recognizer.read(client.cookies["tp_vid"])  # type: ignore[attr-defined]
    )
    assert [(e["granted"], e["denied"], e["method"]) for e in log] == [
        ('["marketing", "measurement", "personalisation"]', "[]", "banner-accept-all")
    ]


def test_cookie_is_secure_over_https(settings) -> None:  # type: ignore[no-untyped-def]
    with TestClient(create_app(settings), base_url="https://shop.example") as client:
        assert "Secure" in grant(client, ["marketing"]).headers["set-cookie"]


def test_reject_all_from_a_new_visitor_sets_no_identifier_yet_is_logged(client: TestClient) -> None:
    response = grant(client, [], method="banner-reject-all")
    assert response.status_code == 200
    # Only the revision refused, the same value for everybody (tests/consent/test_banner.py).
    assert response.headers["set-cookie"].startswith("tp_refused=1;")
    assert "tp_vid" not in client.cookies
    assert counts(client) == {"visitors": 0, "events": 0, "consent_log": 1, "campaign_state": 0}


def test_withdrawal_expires_the_cookie_and_stops_storage(client: TestClient) -> None:
    grant(client, ALL)
    assert decide(client).json()["consent"]["granted"] == ALL
    response = grant(client, [])
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert "tp_vid" not in client.cookies
    assert counts(client)["consent_log"] == 2


def test_consent_revision_bump_asks_again_and_forgets_history(settings) -> None:  # type: ignore[no-untyped-def]
    with TestClient(create_app(settings)) as client:
        grant(client, ALL)
        client.post(
            "/tp/v1/events", json={"events": [{"type": "close", "campaign": "first-order-coupon"}]}
        )
        assert decide(client).json()["popups"] == []
        cookie = client.cookies["tp_vid"]
    bumped = settings.__class__.load(
        {
            "data_dir": settings.data_dir,
            "database": settings.database,
            "rules_dir": settings.rules_dir,
            "consent_revision": 2,
        },
        environ={},
    )
    with TestClient(create_app(bumped)) as client:
        client.cookies.set("tp_vid", cookie)
        body = decide(client).json()
        assert "Accept all" in body["consent"].pop("banner")["html"]
        assert body["consent"] == {
            "revision": 2,
            "granted": [],
            "prompt": True,
            "known": True,
            "mode": "builtin",
        }
        assert body["popups"] != []  # history needs consent to the current text
        events = client.post(
            "/tp/v1/events",
            json={"events": [{"type": "impression", "campaign": "first-order-coupon"}]},
        )
        assert events.json() == {"stored": 0, "reason": "no consent"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"granted": ["marketing", "tracking"]}, "unknown consent categories: tracking"),
        ({"granted": "all"}, "granted must be a list"),
        ({}, "granted must be a list"),
        ({"granted": [], "method": "shouting"}, "method must be one of"),
    ],
)
def test_bad_consent_requests(client: TestClient, body: dict, message: str) -> None:  # type: ignore[type-arg]
    response = client.post("/tp/v1/consent", json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert counts(client)["consent_log"] == 0


def test_consent_log_is_append_only(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    grant(client, ALL)
    with (
        opened(settings.database_url) as conn,
        pytest.raises(INTEGRITY_ERRORS, match="append-only"),
    ):
        conn.execute("UPDATE consent_log SET granted = '[]'")


def test_decide_on_a_product_page_after_consent(client: TestClient) -> None:
    grant(client, ["measurement"])
    body = client.post("/tp/v1/decide", json={"page": {"path": PRODUCT}}).json()
    assert body["consent"]["granted"] == ["measurement"]
    assert body["popups"][0]["campaign"] == "first-order-coupon"


def test_measurement_consent_alone_keeps_popups_anonymous(client: TestClient) -> None:
    grant(client, ["measurement"])
    client.post(
        "/tp/v1/events", json={"events": [{"type": "close", "campaign": "first-order-coupon"}]}
    )
    assert decide(client).json()["popups"] != []  # nothing remembered without marketing
