"""The server API under /tp/v1/api/: bearer keys and scopes, pushed events (all or nothing,
idempotent purchases), attributes, profiles, problem bodies and the OpenAPI document."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate
from starlette.testclient import TestClient
from touchpoint import cli
from touchpoint.api import keys as apikeys
from touchpoint.api import openapi as apispec
from touchpoint.settings import Settings

from ..conftest import PRODUCT, ROOT
from ..web.test_decide import decide

API = "/tp/v1/api"
DOCS = Path(__file__).parent.parent.parent / "docs"
ALL = ["marketing", "measurement", "personalisation"]


def new_key(
    settings: Settings, name: str = "shop", scopes: tuple[str, ...] = apikeys.SCOPES
) -> str:
    return apikeys.ApiKeys(settings.api_keys_path).create(name, list(scopes), now=1)


@pytest.fixture
def auth(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {new_key(settings)}"}


@pytest.fixture
def ada(client: TestClient) -> str:
    """A visitor who consented to everything and identified as ada@example.com / C-1."""
    client.post("/tp/v1/consent", json={"granted": ALL})
    client.post("/tp/v1/identify", json={"email": "ada@example.com", "customer_id": "C-1"})
    tp = client.app.state.tp  # type: ignore[attr-defined]
    return str(tp.recognizer.read(client.cookies["tp_vid"]))


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == "about:blank" and body["status"] == status
    assert body["title"] and body["detail"]
    return body


def push(client: TestClient, auth: dict[str, str], body: Any):  # type: ignore[no-untyped-def]
    return client.post(f"{API}/events", json=body, headers=auth)


def events(client: TestClient, visitor_id: str) -> list[dict[str, Any]]:
    """The events pushed through the server API (not the page views and identification)."""
    history = client.app.state.tp.reader.history(visitor_id)  # type: ignore[attr-defined]
    return [event for event in history["events"] if event["source"] == "api"]


# --- keys -------------------------------------------------------------------------------------


def test_keys_file_holds_only_hashes_and_is_private(settings: Settings) -> None:
    token = new_key(settings)
    path = settings.api_keys_path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    text = path.read_text()
    assert token not in text and apikeys.token_hash(token) in text
    assert token.startswith("tp_") and len(token) > 40


def test_missing_or_unknown_key_is_401_with_www_authenticate(client: TestClient, ada) -> None:  # type: ignore[no-untyped-def]
    body = problem(client.get(f"{API}/visitors/{ada}"), 401)
    assert "Bearer" in body["detail"]
    response = client.get(f"{API}/visitors/{ada}", headers={"Authorization": "Bearer tp_nope"})
    problem(response, 401)
    invalid = 'Bearer realm="touchpoint", error="invalid_token"'
    assert response.headers["www-authenticate"] == invalid
    basic = client.get(f"{API}/visitors/{ada}", headers={"Authorization": "Basic eDp5"})
    assert problem(basic, 401) and basic.headers["www-authenticate"] == 'Bearer realm="touchpoint"'


def test_a_key_without_the_scope_is_403(client: TestClient, settings: Settings, ada) -> None:  # type: ignore[no-untyped-def]
    token = new_key(settings, "reader", ("profiles:read",))
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"{API}/visitors/{ada}", headers=headers).status_code == 200
    response = push(client, headers, {"type": "webinar", "name": "x", "visitor_id": ada})
    problem(response, 403)
    assert 'scope="events:write"' in response.headers["www-authenticate"]
    assert events(client, ada) == []


def test_revoked_key_is_401_at_once(client: TestClient, settings: Settings, auth, ada) -> None:  # type: ignore[no-untyped-def]
    assert client.get(f"{API}/visitors/{ada}", headers=auth).status_code == 200
    apikeys.ApiKeys(settings.api_keys_path).revoke("shop")
    problem(client.get(f"{API}/visitors/{ada}", headers=auth), 401)


def test_keys_are_compared_in_constant_time(settings: Settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    new_key(settings, "a")
    token = new_key(settings, "b")
    compared: list[tuple[str, str]] = []
    real = apikeys.hmac.compare_digest
    monkeypatch.setattr(
        apikeys.hmac, "compare_digest", lambda x, y: compared.append((x, y)) or real(x, y)
    )
    keys = apikeys.ApiKeys(settings.api_keys_path)
    assert keys.authenticate(token).name == "b"  # type: ignore[union-attr]
    assert len(compared) == 2  # every key compared, no early exit, no ==
    assert keys.authenticate("tp_wrong") is None


def test_cli_creates_lists_and_revokes_keys(settings: Settings, capsys) -> None:  # type: ignore[no-untyped-def]
    flags = ["--data-dir", settings.data_dir]
    os.makedirs(settings.data_dir)  # the server's data folder (docs/api.md#keys)
    assert cli.main(["apikey", *flags, "create", "crm", "--scope", "profiles:read"]) == 0
    token = capsys.readouterr().out.strip()
    assert apikeys.ApiKeys(settings.api_keys_path).authenticate(token) is not None
    assert cli.main(["apikey", *flags, "list"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("crm\tprofiles:read\t") and token not in out
    assert cli.main(["apikey", *flags, "create", "crm", "--scope", "profiles:read"]) == 1
    assert cli.main(["apikey", *flags, "revoke", "crm"]) == 0
    assert apikeys.ApiKeys(settings.api_keys_path).keys() == ()
    assert cli.main(["apikey", *flags, "revoke", "crm"]) == 1


# --- events -----------------------------------------------------------------------------------


def test_single_events_by_id_email_and_customer_id(client: TestClient, auth, ada) -> None:  # type: ignore[no-untyped-def]
    for body in (
        {"type": "newsletter_open", "email": " ADA@example.com", "name": "december"},
        {"type": "email_click", "customer_id": "C-1", "url": "https://shop.example/x"},
        {"type": "webinar", "visitor_id": ada, "name": "trail-running", "at": 1000},
        {"type": "custom", "email": "ada@example.com", "name": "review", "props": {"stars": 5}},
    ):
        response = push(client, auth, body)
        assert response.status_code == 202, response.text
        assert response.json() == {"stored": 1, "duplicates": []}
    stored = events(client, ada)  # in time order: the webinar is dated back
    assert [e["type"] for e in stored] == ["webinar", "newsletter_open", "email_click", "custom"]
    assert stored[0]["at"] == 1000 and stored[0]["source"] == "api"
    assert json.loads(stored[2]["props"]) == {"url": "https://shop.example/x"}


def test_purchases_are_idempotent_by_order_id(client: TestClient, auth, ada) -> None:  # type: ignore[no-untyped-def]
    order = {
        "type": "purchase",
        "customer_id": "C-1",
        "order_id": "O-1",
        "value": 59.9,
        "currency": "EUR",
        "items": [{"sku": "TR-1", "quantity": 1}],
    }
    assert push(client, auth, order).json() == {"stored": 1, "duplicates": []}
    assert push(client, auth, order).json() == {"stored": 0, "duplicates": [0]}
    again = {**order, "order_id": "O-2"}
    batch = push(client, auth, {"events": [again, again]})
    assert batch.json() == {"stored": 1, "duplicates": [1]}
    assert [e["type"] for e in events(client, ada)] == ["purchase", "purchase"]
    body = client.get(f"{API}/visitors/customer:C-1", headers=auth).json()
    assert [o["order_id"] for o in body["orders"]] == ["O-1", "O-2"]
    assert body["orders"][0]["items"] == [{"sku": "TR-1", "quantity": 1}]


def test_a_batch_with_one_bad_event_stores_none(client: TestClient, auth, ada) -> None:  # type: ignore[no-untyped-def]
    good = {"type": "webinar", "visitor_id": ada, "name": "w"}
    response = push(
        client,
        auth,
        {
            "events": [
                good,
                {"type": "purchase", "visitor_id": ada},
                good,
                {"type": "email_click", "visitor_id": ada, "url": "javascript:alert(1)"},
                {"type": "holiday", "visitor_id": ada},
            ]
        },
    )
    body = problem(response, 422)
    assert body["errors"] == [
        {"index": 1, "field": "order_id", "message": "is required for a purchase event"},
        {"index": 3, "field": "url", "message": "must be an http(s) URL"},
        {
            "index": 4,
            "field": "type",
            "message": "must be one of purchase, newsletter_open, email_click, webinar, custom",
        },
    ]
    assert events(client, ada) == []


def test_a_path_with_two_operations_names_both_in_allow(client: TestClient) -> None:
    """Issue 15: OPTIONS on /subjects/{ref} answered Allow without DELETE."""
    response = client.options(f"{API}/subjects/x")
    assert response.status_code == 405
    assert {"GET", "DELETE"} <= set(response.headers["allow"].replace(" ", "").split(","))
    assert client.head(f"{API}/subjects/x").status_code == 401  # as GET: a key is needed


def test_malformed_events_are_422_naming_the_field(client: TestClient, auth, ada) -> None:  # type: ignore[no-untyped-def]
    """A type that is no string was a 500 (issue 15); a NUL character was stored."""
    for event, field in [
        ({"type": {}, "visitor_id": ada}, "type"),
        ({"type": [], "visitor_id": ada}, "type"),
        ({"type": "webinar", "visitor_id": ada, "name": "w\x00"}, "name"),
    ]:
        body = problem(push(client, auth, event), 422)
        assert [e["field"] for e in body["errors"]] == [field]
    assert events(client, ada) == []


def test_unknown_visitors_are_404_naming_the_items(client: TestClient, auth, ada) -> None:  # type: ignore[no-untyped-def]
    response = push(
        client,
        auth,
        {
            "events": [
                {"type": "webinar", "visitor_id": ada, "name": "w"},
                {"type": "webinar", "email": "nobody@example.com", "name": "w"},
            ]
        },
    )
    body = problem(response, 404)
    assert body["errors"] == [
        {"index": 1, "field": "email", "message": "no visitor with a profile"}
    ]
    assert events(client, ada) == []
    single = push(client, auth, {"type": "webinar", "customer_id": "C-9", "name": "w"})
    assert problem(single, 404)["errors"] == [
        {"field": "customer_id", "message": "no visitor with a profile"}
    ]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"type": "webinar", "name": "w"}, 422, "visitor_id"),
        ({"type": "webinar", "name": "w", "email": "nope"}, 422, "email"),
        ({"type": "webinar", "name": "w", "visitor_id": "v", "colour": 1}, 422, "colour"),
        ({"type": "custom", "name": "x", "visitor_id": "v", "props": {"a": [1]}}, 422, "props.a"),
        (
            {"type": "purchase", "order_id": "1", "visitor_id": "v", "currency": "euro"},
            422,
            "currency",
        ),
        ({"type": "webinar", "name": "w", "visitor_id": "v", "at": 9_999_999_999}, 422, "at"),
    ],
)
def test_invalid_single_events_name_the_field(  # type: ignore[no-untyped-def]
    client: TestClient, auth, body, status, field
) -> None:
    assert problem(push(client, auth, body), status)["errors"][0]["field"] == field


def test_malformed_bodies_and_limits(client: TestClient, auth, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    raw = client.post(f"{API}/events", content=b"{nope", headers=auth)
    assert "malformed JSON" in problem(raw, 400)["detail"]
    problem(push(client, auth, {"events": []}), 400)
    problem(push(client, auth, {"events": [{}] * (apispec.MAX_BATCH + 1)}), 422)
    big = b"{" + b" " * settings.api_max_body_bytes + b"}"
    problem(client.post(f"{API}/events", content=big, headers=auth), 413)


def test_api_is_not_subject_to_the_cross_site_guard(client: TestClient, auth, ada) -> None:  # type: ignore[no-untyped-def]
    headers = {**auth, "Sec-Fetch-Site": "cross-site", "Origin": "https://crm.example"}
    response = client.post(
        f"{API}/events", json={"type": "webinar", "visitor_id": ada, "name": "w"}, headers=headers
    )
    assert response.status_code == 202


# --- attributes and profiles ------------------------------------------------------------------


@pytest.fixture
def coupons(rules_dir: Path) -> None:
    """The first-order coupon as shipped: with its code, so coupons.yaml's exclude applies."""
    for name in ("first-order-coupon.yaml", "coupons.yaml"):
        shutil.copy(ROOT / "rules" / name, rules_dir)


def test_attributes_steer_targeting(coupons, client: TestClient, auth, ada) -> None:  # type: ignore[no-untyped-def]
    assert decide(client).json()["popups"]  # the first-order coupon
    response = client.put(
        f"{API}/visitors/email:ada@example.com/attributes",
        headers=auth,
        json={"late_payer": True, "plan": "pro", "seats": 3},
    )
    assert response.json() == {"attributes": {"late_payer": True, "plan": "pro", "seats": 3}}
    assert decide(client).json()["popups"] == []  # excluded: late payer
    cleared = client.put(
        f"{API}/visitors/{ada}/attributes", headers=auth, json={"late_payer": None}
    )
    assert cleared.json() == {"attributes": {"plan": "pro", "seats": 3}}
    assert decide(client).json()["popups"]
    deleted = client.delete(f"{API}/visitors/customer:C-1/attributes/plan", headers=auth)
    assert deleted.status_code == 204
    body = client.get(f"{API}/visitors/{ada}", headers=auth).json()
    assert body["profile"]["attributes"] == {"seats": 3}


@pytest.mark.parametrize("body", [{}, {"a b": 1}, {"x": [1]}, {"x": {"y": 1}}, {"x": "y" * 300}])
def test_invalid_attributes_are_422(client: TestClient, auth, ada, body) -> None:  # type: ignore[no-untyped-def]
    problem(client.put(f"{API}/visitors/{ada}/attributes", headers=auth, json=body), 422)


def test_unknown_refs_are_404(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    for ref in ("nobody", "email:nobody@example.com", "customer:C-404"):
        problem(client.get(f"{API}/visitors/{ref}", headers=auth), 404)
        problem(client.put(f"{API}/visitors/{ref}/attributes", headers=auth, json={"a": 1}), 404)
        problem(client.delete(f"{API}/visitors/{ref}/attributes/a", headers=auth), 404)
    problem(client.get(f"{API}/visitors/phone:123", headers=auth), 422)


def test_visitor_without_personalisation_consent_is_404(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    client.post("/tp/v1/consent", json={"granted": ["marketing"]})
    vid = client.app.state.tp.recognizer.read(client.cookies["tp_vid"])  # type: ignore[attr-defined]
    problem(client.get(f"{API}/visitors/{vid}", headers=auth), 404)


def test_profile_with_history(client: TestClient, auth, ada) -> None:  # type: ignore[no-untyped-def]
    decide(client, PRODUCT)
    client.post(
        "/tp/v1/events",
        json={
            "events": [
                {"type": "close", "campaign": "first-order-coupon", "variant": "ten-percent"}
            ]
        },
    )
    push(client, auth, {"type": "webinar", "visitor_id": ada, "name": "w"})
    body = client.get(f"{API}/visitors/email:ada@example.com", headers=auth).json()
    assert body["id"] == ada and body["identified"] is True
    assert [i["kind"] for i in body["identifiers"]] == ["customer", "email"]
    assert all("value" not in i for i in body["identifiers"])  # data_depth standard
    assert (body["stage"], body["score"]) == ("lead", 0)  # identified: a lead (lifecycle.yaml)
    assert body["profile"]["page_views"] == 1
    assert body["campaigns"]["first-order-coupon"]["last_closed_at"] is not None
    assert [e["type"] for e in body["events"]] == ["identify", "page_view", "close", "webinar"]
    assert [e["method"] for e in body["consent_log"]] == ["api"]
    assert body["consent"] == {"revision": 1, "granted": ALL}
    assert set(body) == set(apispec.VISITOR_FIELDS)


# --- OpenAPI ----------------------------------------------------------------------------------


def test_openapi_document_is_valid_served_and_committed(client: TestClient) -> None:
    served = client.get(f"{API}/openapi.json").json()
    validate(served)
    committed = json.loads((DOCS / "openapi.json").read_text())
    assert served == committed, "run: touchpoint schema openapi > docs/openapi.json"


def test_every_api_route_and_field_is_in_the_openapi_document(client: TestClient) -> None:
    document = apispec.openapi()
    routes = {
        (route.path, method.lower())  # type: ignore[attr-defined]
        for route in client.app.routes  # type: ignore[attr-defined]
        if route.path.startswith(API)  # type: ignore[attr-defined]
        for method in route.methods - {"HEAD"}  # type: ignore[attr-defined]
    }
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert routes == documented
    schemas = document["components"]["schemas"]
    for kind, fields in apispec.EVENT_FIELDS.items():
        properties = schemas[f"{apispec._title(kind)}Event"]["properties"]
        assert {f.name for f in fields} <= set(properties)


def test_api_docs_name_every_operation_and_event_type() -> None:
    text = (DOCS / "api.md").read_text()
    for op in apispec.OPERATIONS:
        assert f"`{op.method.upper()} /tp/v1/api{op.path}`" in text, op.id
    for kind, fields in apispec.EVENT_FIELDS.items():
        assert f"`{kind}`" in text
        for f in fields:
            assert f"`{f.name}`" in text
