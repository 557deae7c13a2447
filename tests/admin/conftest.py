"""Cheap password hashes for the console's HTTP tests: argon2id with its default parameters
costs a third of a second per hash on a small machine (tests/admin/test_users.py keeps them);
and a client signed in as a viewer, for the modules that do not make their own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient
from touchpoint.admin import users
from touchpoint.app import create_app
from touchpoint.settings import Settings

from .helpers import add_user, sign_in


@pytest.fixture(autouse=True)
def cheap_hashes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.module.__name__.endswith("test_users"):
        return
    cheap = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    monkeypatch.setattr(users, "_hasher", cheap)
    monkeypatch.setattr(users, "_DUMMY", cheap.hash("touchpoint: no such user"))


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    add_user(settings.database_url, role="viewer")
    with TestClient(create_app(settings)) as client:
        sign_in(client)
        yield client
