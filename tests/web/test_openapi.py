"""The OpenAPI document of the public routes (docs/openapi-public.json): valid, committed as
generated, naming every public route, and agreeing with the routes' own validators, since both
come from one declaration per body (syntax/shapes.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate
from starlette.testclient import TestClient
from touchpoint.web.openapi import public_openapi

DOCS = Path(__file__).parent.parent.parent / "docs"
BASE = "/tp/v1"
CAMPAIGN = "first-order-coupon"


def test_the_public_document_is_valid_and_committed() -> None:
    document = public_openapi()
    validate(document)
    committed = json.loads((DOCS / "openapi-public.json").read_text())
    assert document == committed, "run: touchpoint schema openapi-public > docs/openapi-public.json"


def test_every_public_route_is_documented(client: TestClient) -> None:
    routes = {
        (route.path, method.lower())  # type: ignore[attr-defined]
        for route in client.app.routes  # type: ignore[attr-defined]
        if route.path.startswith(BASE + "/") and not route.path.startswith(BASE + "/api")  # type: ignore[attr-defined]
        for method in route.methods - {"HEAD"}  # type: ignore[attr-defined]
    }
    documented = {(path, m) for path, ops in public_openapi()["paths"].items() for m in ops}
    assert routes == documented


def body_schema(path: str) -> dict[str, Any]:
    operation = public_openapi()["paths"][BASE + path]["post"]
    schema: dict[str, Any] = operation["requestBody"]["content"]["application/json"]["schema"]
    return schema


PAGE = {"path": "/demo/"}
BODIES = [
    ("/decide", {"page": PAGE}),
    (
        "/decide",
        {"page": PAGE, "slots": ["hero"], "count": False, "context": {"cart": 12.5}, "lang": "de"},
    ),
    ("/decide", {}),
    ("/decide", {"page": {"path": "demo"}}),
    ("/decide", {"page": {"path": "/", "title": ["x"]}}),
    ("/decide", {"page": PAGE, "slots": ["Hero!"]}),
    ("/decide", {"page": PAGE, "slots": ["s"] * 21}),
    ("/decide", {"page": PAGE, "count": "yes"}),
    ("/decide", {"page": PAGE, "context": {"bad key": 1}}),
    ("/decide", {"page": PAGE, "context": {"k": "x" * 257}}),
    ("/decide", {"page": {"path": "/" + "x" * 2048}}),
    ("/events", {"events": [{"type": "dwell", "value": 42, "path": "/demo/"}]}),
    ("/events", {"events": [{"type": "click", "name": ""}, {"type": "scroll", "value": 100}]}),
    ("/events", {"events": [{"type": "custom", "name": "x", "props": {"a": 1}}]}),
    ("/events", {"events": []}),
    ("/events", {"events": [{"type": "dwell", "value": 86401}]}),
    ("/events", {"events": [{"type": "dwell", "value": 5, "name": "x"}]}),
    ("/events", {"events": [{"type": "custom"}]}),
    ("/events", {"events": [{"type": "click", "name": "x", "path": "x"}]}),
    ("/events", {"events": [{"type": "explode"}]}),
    ("/events", {"events": [{"type": "close", "campaign": 7}]}),
    ("/events", {"events": [{"type": "custom", "name": "x", "props": {"a": [1]}}]}),
    ("/consent", {"granted": ["measurement"]}),
    ("/consent", {"granted": [], "method": "banner-reject-all"}),
    ("/consent", {}),
    ("/consent", {"granted": ["tracking"]}),
    ("/consent", {"granted": [], "method": "shouting"}),
    ("/eligible", {"campaign": CAMPAIGN}),
    ("/eligible", {}),
    ("/eligible", {"campaign": 5}),
    ("/identify", {"email": 5}),
    ("/identify", {"first_name": "x" * 101}),
    ("/coupons/reveal", {"campaign": 5, "variant": "a"}),
    ("/coupons/reveal", {"campaign": CAMPAIGN}),
]


@pytest.mark.parametrize(("path", "body"), BODIES)
def test_the_documented_schema_and_the_route_agree(
    client: TestClient, path: str, body: dict[str, Any]
) -> None:
    """A body the document refuses gets a 400 naming the field; one it accepts gets no 400."""
    try:
        jsonschema.validate(body, body_schema(path))
        documented_ok = True
    except jsonschema.ValidationError:
        documented_ok = False
    response = client.post(BASE + path, json=body)
    assert (response.status_code != 400) == documented_ok, response.text
    if not documented_ok:
        assert response.json()["error"]
