"""Cheap password hashes for the console's HTTP tests: argon2id with its default parameters
costs a third of a second per hash on a small machine (tests/admin/test_users.py keeps them)."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from touchpoint.admin import users


@pytest.fixture(autouse=True)
def cheap_hashes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.module.__name__.endswith("test_users"):
        return
    cheap = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    monkeypatch.setattr(users, "_hasher", cheap)
    monkeypatch.setattr(users, "_DUMMY", cheap.hash("touchpoint: no such user"))
