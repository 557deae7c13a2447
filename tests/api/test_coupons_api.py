"""The coupon routes of the server API: loading codes (JSON or CSV), the stock, redemptions
(replays, conflicts, expiry, attribution, the coupon.redeemed webhook)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from touchpoint import store
from touchpoint.api import keys as apikeys
from touchpoint.app import create_app
from touchpoint.rules.couponfiles import load_pools
from touchpoint.settings import Settings
from touchpoint.store import eventlog

from .test_api import problem

API = "/tp/v1/api"
ROOT = Path(__file__).parent.parent.parent
SITE = (
    "webhooks:\n  shop: {url: 'https://shop.example/hook', secret_env: SHOP_SECRET,"
    " events: [coupon.redeemed, coupon.low_stock]}\n"
)


@pytest.fixture
def client(rules_dir: Path, settings: Settings) -> Iterator[TestClient]:
    """The app with the example pools and a webhook endpoint for coupon events."""
    shutil.copy(ROOT / "rules" / "coupons.yaml", rules_dir)
    (rules_dir / "site.yaml").write_text(SITE)
    with TestClient(create_app(settings)) as client:
        yield client


def key(settings: Settings, *scopes: str) -> dict[str, str]:
    name = "-".join(scope.replace(":", "_") for scope in scopes)
    token = apikeys.ApiKeys(settings.api_keys_path).create(name, list(scopes), now=1)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def auth(settings: Settings) -> dict[str, str]:
    return key(settings, "coupons:read", "coupons:write", "coupons:redeem")


@pytest.fixture
def db(settings: Settings, client: TestClient) -> Iterator[sqlite3.Connection]:
    conn = store.connect(settings.database_url)
    yield conn
    conn.close()


def claim(db: sqlite3.Connection, rules_dir: Path, pool: str, visitor: str, now: int) -> str:
    pools, _ = load_pools(rules_dir)
    with store.immediate(db):
        got = store.claim_coupon(db, pools[pool], visitor, "first-order-coupon", "ten-percent", now)
    assert got is not None
    return got.code


def webhooks(db: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = db.execute("SELECT event, body FROM webhook_outbox ORDER BY id").fetchall()
    return [{"event": event, **json.loads(body)["data"]} for event, body in rows]


# --- loading codes ----------------------------------------------------------------------------


def test_codes_as_json_with_a_report_by_index(client: TestClient, auth: dict[str, str]) -> None:
    body = {"codes": ["S-1", " S-2 ", "S-1", "", "S 3"]}
    response = client.post(f"{API}/coupons/spring/codes", json=body, headers=auth)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "added": 2,
        "duplicates": 1,
        "already_stored": 0,
        "invalid": 2,
        "unlisted": 0,
        "problems": [
            {"index": 2, "code": "S-1", "problem": "repeats line 1"},
            {"index": 3, "code": "", "problem": "empty"},
            {"index": 4, "code": "S 3", "problem": "contains a space"},
        ],
    }
    again = client.post(f"{API}/coupons/spring/codes", json={"codes": ["S-2"]}, headers=auth)
    assert again.json()["already_stored"] == 1


def test_codes_as_csv_with_a_report_by_line(client: TestClient, auth: dict[str, str]) -> None:
    csv = "order,code\n1,C-1\n2,C-2\n3,C-1\n"
    response = client.post(
        f"{API}/coupons/spring/codes",
        content=csv.encode(),
        headers={**auth, "Content-Type": "text/csv"},
    )
    assert response.json()["added"] == 2
    assert response.json()["problems"] == [{"line": 4, "code": "C-1", "problem": "repeats line 2"}]
    bad = client.post(
        f"{API}/coupons/spring/codes",
        content=b"\xff\xfe",
        headers={**auth, "Content-Type": "text/csv; charset=utf-8"},
    )
    assert "not UTF-8" in problem(bad, 400)["detail"]


def test_codes_only_for_an_imported_pool_of_the_rules(
    client: TestClient, auth: dict[str, str]
) -> None:
    url = f"{API}/coupons/{{}}/codes"
    assert (
        "no pool 'nope'"
        in problem(client.post(url.format("nope"), json={"codes": ["A"]}, headers=auth), 404)[
            "detail"
        ]
    )
    assert (
        "welcome has generated codes"
        in problem(client.post(url.format("welcome"), json={"codes": ["A"]}, headers=auth), 422)[
            "detail"
        ]
    )
    problem(client.post(url.format("spring"), json={"codes": ["A", 1]}, headers=auth), 422)
    problem(client.post(url.format("spring"), json={"code": "A"}, headers=auth), 400)


def test_codes_need_their_scope_and_fit_the_body_limit(
    client: TestClient, settings: Settings
) -> None:
    url = f"{API}/coupons/spring/codes"
    problem(client.post(url, json={"codes": ["A"]}), 401)
    redeemer = key(settings, "coupons:redeem")
    assert (
        "coupons:write"
        in problem(client.post(url, json={"codes": ["A"]}, headers=redeemer), 403)["detail"]
    )
    writer = key(settings, "coupons:write")
    big = {"codes": ["X" * 60] * (settings.api_max_body_bytes // 60)}
    problem(client.post(url, json=big, headers=writer), 413)


# --- the stock --------------------------------------------------------------------------------


def test_the_stock_per_pool(
    client: TestClient, auth: dict[str, str], db: sqlite3.Connection, rules_dir: Path
) -> None:
    client.post(f"{API}/coupons/spring/codes", json={"codes": ["S-1", "S-2"]}, headers=auth)
    claim(db, rules_dir, "spring", "v1", 1_800_000_000)
    response = client.get(f"{API}/coupons", headers=auth)
    assert response.headers["cache-control"] == "no-store"
    pools = {p["pool"]: p for p in response.json()["pools"]}
    assert set(pools) == {"cart5", "spring", "welcome"}
    assert pools["spring"] == {
        "pool": "spring",
        "codes": "imported",
        "free": 1,
        "assigned": 1,
        "redeemed": 0,
        "generated": 0,
        "limit": None,
        "remaining": 1,
        "low_stock": 100,
        "low": True,
    }
    assert pools["welcome"]["remaining"] is None


# --- redemption -------------------------------------------------------------------------------


def redeem(client: TestClient, auth: dict[str, str], **body: Any) -> Any:
    return client.post(f"{API}/coupons/redeem", json=body, headers=auth)


def test_a_redemption_credits_the_campaign_and_sends_one_webhook(
    client: TestClient, auth: dict[str, str], db: sqlite3.Connection, rules_dir: Path
) -> None:
    code = claim(db, rules_dir, "welcome", "v1", client.app.state.tp.now())  # type: ignore[attr-defined]
    order = {"code": code, "order_id": "O-1", "value": 59.9, "currency": "EUR"}
    first = redeem(client, auth, **order)
    assert first.status_code == 200, first.text
    body = first.json()
    assert {k: body[k] for k in ("code", "pool", "visitor_id", "campaign", "variant", "value")} == {
        "code": code,
        "pool": "welcome",
        "visitor_id": "v1",
        "campaign": "first-order-coupon",
        "variant": "ten-percent",
        "value": 59.9,
    }
    assert "idempotent-replayed" not in first.headers
    replay = redeem(client, auth, **order)
    assert replay.status_code == 200 and replay.json() == body
    assert replay.headers["idempotent-replayed"] == "true"
    (hook,) = webhooks(db)
    assert hook["event"] == "coupon.redeemed" and hook["order_id"] == "O-1"
    assert hook["visitor_id"] == "v1" and hook["identifiers"] == []
    assert hook["campaign"] == "first-order-coupon" and hook["value"] == 59.9


def test_redemption_errors(
    client: TestClient, auth: dict[str, str], db: sqlite3.Connection, rules_dir: Path
) -> None:
    now = client.app.state.tp.now()  # type: ignore[attr-defined]
    code = claim(db, rules_dir, "welcome", "v1", now)
    redeem(client, auth, code=code, order_id="O-1")
    taken = problem(redeem(client, auth, code=code, order_id="O-2"), 409)
    assert f"{code} was redeemed by order O-1" in taken["detail"]
    assert (
        "already redeemed the code"
        in problem(redeem(client, auth, code="OTHER", order_id="O-1"), 409)["detail"]
    )
    assert (
        "no coupon code NOPE"
        in problem(redeem(client, auth, code="NOPE", order_id="O-3"), 404)["detail"]
    )
    old = claim(db, rules_dir, "welcome", "v2", now - 15 * 86400)  # valid for 14 days
    assert "expired on" in problem(redeem(client, auth, code=old, order_id="O-4"), 422)["detail"]
    invalid = problem(redeem(client, auth, code=code, order_id="O-5", currency="euro"), 422)
    assert invalid["errors"] == [
        {"field": "currency", "message": "must be a three-letter ISO 4217 code such as EUR"}
    ]
    problem(redeem(client, auth, order_id="O-6"), 422)
    problem(redeem(client, auth, code=code, order_id="O-7", coupon="x"), 422)
    assert [h["order_id"] for h in webhooks(db)] == ["O-1"]


def test_a_shared_code_credits_the_visitor_the_shop_names(
    client: TestClient, auth: dict[str, str], db: sqlite3.Connection, rules_dir: Path
) -> None:
    db.execute(
        "INSERT INTO visitors (id, created_at, consent_granted) VALUES ('v1', 1, '[\"marketing\"]')"
    )
    claim(db, rules_dir, "cart5", "v1", client.app.state.tp.now())  # type: ignore[attr-defined]
    named = redeem(client, auth, code="CART5-OFF", order_id="O-1", visitor_id="v1").json()
    assert (named["visitor_id"], named["campaign"]) == ("v1", "first-order-coupon")
    unknown = redeem(client, auth, code="CART5-OFF", order_id="O-2", visitor_id="nobody").json()
    assert (unknown["visitor_id"], unknown["campaign"]) == (None, None)
    events = db.execute(
        f"SELECT type, campaign, name FROM events WHERE {eventlog.of_visitor()}", ("v1",)
    )
    assert events.fetchall() == [("redeem", "first-order-coupon", "O-1")]


def test_redeeming_needs_its_scope(client: TestClient, settings: Settings) -> None:
    reader = key(settings, "coupons:read")
    problem(redeem(client, reader, code="A", order_id="O-1"), 403)
