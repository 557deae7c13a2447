"""Every route of both OpenAPI documents (the server API's and the public routes') fuzzed with
bodies built from its request schema with any node replaced, now and then, by anything JSON can
hold: no answer is a server error, and every answer's status is one the document lists for
that operation.

A property-based fuzzer in the manner of schemathesis, bounded in examples so it stays inside
`make test`'s time."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient
from touchpoint.api import keys as apikeys
from touchpoint.api.openapi import openapi
from touchpoint.app import create_app
from touchpoint.settings import Settings
from touchpoint.web.openapi import public_openapi

from .conftest import ROOT

EXAMPLES = 100  # per operation


def _collect(schema: Any, names: set[str], constants: set[Any]) -> None:
    """Every property name and every enum or const value anywhere in ``schema``."""
    if isinstance(schema, dict):
        names.update(schema.get("properties", {}))
        constants.update(v for v in schema.get("enum", []) if isinstance(v, str))
        if isinstance(schema.get("const"), str):
            constants.add(schema["const"])
        for value in schema.values():
            _collect(value, names, constants)
    elif isinstance(schema, list):
        for value in schema:
            _collect(value, names, constants)


DOCUMENTS = {"api": openapi(), "public": public_openapi()}


def _operations() -> list[tuple[str, str, str, set[str]]]:
    """(document, method, path, documented statuses) of both documents."""
    found = []
    for kind, document in DOCUMENTS.items():
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                found.append((kind, method, path, set(operation["responses"])))
    return found


def _body_schema(document: str, method: str, path: str) -> Any:
    operation = DOCUMENTS[document]["paths"][path][method]
    content = operation.get("requestBody", {}).get("content", {})
    return content.get("application/json", {}).get("schema")


NAMES: set[str] = set()
CONSTANTS: set[Any] = set()
for doc in (openapi(), public_openapi()):
    _collect(doc, NAMES, CONSTANTS)
CONSTANTS |= {"/", "/demo/", "first-order-coupon", "ten-percent", "email:a@b.example", "EUR"}

leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(sorted(CONSTANTS, key=str))
)
keys = st.sampled_from(sorted(NAMES)) | st.text(max_size=6)
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=12,
)
anything = st.dictionaries(keys, values, max_size=6) | values


def guided(schema: Any, components: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Mostly what ``schema`` describes, any node of it now and then something else."""
    if not isinstance(schema, dict) or depth > 6:
        return values
    if "$ref" in schema:
        return guided(components[schema["$ref"].rsplit("/", 1)[-1]], components, depth + 1)
    options: list[st.SearchStrategy[Any]] = []
    for key in ("oneOf", "anyOf"):
        options += [guided(s, components, depth + 1) for s in schema.get(key, [])]
    if "enum" in schema:
        options.append(st.sampled_from(schema["enum"]))
    if "const" in schema:
        options.append(st.just(schema["const"]))
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        properties = {
            name: guided(sub, components, depth + 1)
            for name, sub in schema.get("properties", {}).items()
        }
        options.append(st.fixed_dictionaries({}, optional=properties))
    elif kind == "array":
        item = guided(schema.get("items", {}), components, depth + 1)
        options.append(st.lists(item, max_size=3))
    elif kind == "string":
        options.append(st.text(max_size=20) | st.sampled_from(sorted(CONSTANTS, key=str)))
    elif kind in ("number", "integer"):
        options.append(st.integers(-5, 200_000) | st.floats(allow_nan=False, allow_infinity=False))
    elif kind == "boolean":
        options.append(st.booleans())
    if not options:
        return values
    return st.one_of(*options, *options, *options, values)  # one time in four: anything


segments = st.sampled_from(["x", "email:a@b.example", "customer:C-1", "welcome", "%00", "a b"])


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    rules = tmp / "rules"
    shutil.copytree(ROOT / "rules", rules)
    config = Settings.load(
        {"data_dir": str(tmp / "data"), "rules_dir": str(rules), "rate_limit_per_minute": "0"},
        environ={},
    )
    token = apikeys.ApiKeys(config.api_keys_path).create("fuzz", list(apikeys.SCOPES), now=1)
    with TestClient(create_app(config), raise_server_exceptions=False) as client:
        yield client, token


@pytest.mark.slow
@pytest.mark.parametrize(("document", "method", "path", "statuses"), _operations())
def test_no_server_error_and_no_undocumented_status(
    fuzz_client: tuple[TestClient, str],
    document: str,
    method: str,
    path: str,
    statuses: set[str],
) -> None:
    client, token = fuzz_client
    headers = {"Authorization": f"Bearer {token}"} if document == "api" else {}
    schema = _body_schema(document, method, path)
    components = DOCUMENTS[document].get("components", {}).get("schemas", {})
    bodies = anything if schema is None else guided(schema, components) | anything

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(body=bodies, segment=segments)
    def check(body: Any, segment: str) -> None:
        url = path.replace("{ref}", segment).replace("{name}", segment).replace("{pool}", segment)
        if method in ("get", "delete"):
            response = client.request(method.upper(), url, headers=headers)
        else:
            response = client.request(method.upper(), url, json=body, headers=headers)
        assert response.status_code < 500, (url, body, response.text)
        assert str(response.status_code) in statuses, (
            url,
            body,
            response.status_code,
            response.text,
        )

    check()


def test_the_fuzzer_reaches_every_operation() -> None:
    """Both documents are fuzzed: the public routes and the server API."""
    documents = {document for document, *_ in _operations()}
    assert documents == {"api", "public"}
    assert len(_operations()) >= 20
    assert Path(ROOT / "docs" / "openapi-public.json").exists()
