"""The console's users: names, passwords, argon2id hashes, roles; and their rows."""

from __future__ import annotations

import sqlite3

import argon2
import pytest
from touchpoint import store
from touchpoint.admin import users
from touchpoint.errors import ConfigError

from ..databases import INTEGRITY_ERRORS


def test_a_password_is_hashed_with_argon2id_and_verified() -> None:
    hashed = users.hash_password("a-long-password-1")
    assert hashed.startswith("$argon2id$")
    assert "a-long-password-1" not in hashed
    user = store.AdminUser("ana", "editor", hashed, 0, 0, 0)
    assert users.verify(user, "a-long-password-1")
    assert not users.verify(user, "a-long-password-2")
    assert not users.verify(None, "a-long-password-1")  # an unknown name
    assert not users.verify(user, "a-long-password-1" + "x" * 2000)  # too long: never right
    assert not users.needs_rehash(hashed)
    parameters = argon2.extract_parameters(hashed)  # RFC 9106's second recommendation
    assert (parameters.memory_cost, parameters.time_cost) == (65536, 3)
    weaker = argon2.PasswordHasher(time_cost=1, memory_cost=64, parallelism=1).hash("x" * 12)
    assert users.needs_rehash(weaker)  # replaced at the next sign-in


def test_a_broken_hash_refuses_rather_than_failing() -> None:
    assert not users.verify(store.AdminUser("ana", "editor", "not a hash", 0, 0, 0), "whatever")


@pytest.mark.parametrize("name", ["", "Ana", "-ana", "a b", "a" * 65, "ana/../x"])
def test_names_are_checked(name: str) -> None:
    with pytest.raises(ConfigError, match="user name"):
        users.check_name(name)


def test_passwords_are_at_least_twelve_characters() -> None:
    with pytest.raises(ConfigError, match="at least 12"):
        users.check_password("eleven-char")
    assert users.check_password("twelve-chars") == "twelve-chars"


def test_an_editor_may_do_what_a_viewer_may_but_not_the_reverse() -> None:
    assert users.allows("editor", "viewer") and users.allows("editor", "editor")
    assert users.allows("viewer", "viewer") and not users.allows("viewer", "editor")
    assert not users.allows("nobody", "viewer")


def test_users_are_stored_and_a_new_password_ends_their_sessions(
    fresh_db: sqlite3.Connection,
) -> None:
    assert not store.has_admin_users(fresh_db)
    assert store.add_admin_user(fresh_db, "ana", role="editor", password_hash="h1", now=10)
    assert not store.add_admin_user(fresh_db, "ana", role="viewer", password_hash="h2", now=11)
    assert store.has_admin_users(fresh_db)
    first = store.admin_user(fresh_db, "ana").sessions  # type: ignore[union-attr]
    assert store.set_admin_password(fresh_db, "ana", password_hash="h3", now=20)
    ana = store.admin_user(fresh_db, "ana")
    assert ana == store.AdminUser("ana", "editor", "h3", 10, 20, first + 1)
    store.end_admin_sessions(fresh_db, "ana")
    assert store.admin_user(fresh_db, "ana").sessions == first + 2  # type: ignore[union-attr]
    assert not store.set_admin_password(fresh_db, "bob", password_hash="x", now=1)
    with pytest.raises(INTEGRITY_ERRORS):
        store.add_admin_user(fresh_db, "bob", role="admin", password_hash="x", now=1)
    assert store.remove_admin_user(fresh_db, "ana")
    assert store.admin_users(fresh_db) == []
