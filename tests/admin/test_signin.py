"""Signing in to the console: the cookie, wrong passwords, the rate limit, expiry, forged
cookies, and the console turned off."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher
from itsdangerous import URLSafeSerializer
from starlette.testclient import TestClient
from touchpoint import store
from touchpoint.admin import signin
from touchpoint.admin.sessions import COOKIE, SALT
from touchpoint.app import create_app
from touchpoint.settings import Settings

from .helpers import PASSWORD, add_user, sign_in


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    add_user(settings.database_url)
    with TestClient(create_app(settings)) as client:
        yield client


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_signing_in_sets_a_strict_http_only_cookie_for_the_console_only(
    client: TestClient,
) -> None:
    response = sign_in(client)
    assert response.status_code == 303
    assert response.headers["location"] == "/tp/admin/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(COOKIE + "=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/tp/admin" in cookie
    assert "Secure" not in cookie  # plain http; https marks it Secure (below)
    page = client.get("/tp/admin/", follow_redirects=True)
    assert page.status_code == 200 and page.url.path == "/tp/admin/results"
    assert "Signed in as ana (editor)" in page.text


def test_over_https_the_cookie_is_secure(settings: Settings) -> None:
    add_user(settings.database_url)
    with TestClient(create_app(settings), base_url="https://shop.example") as client:
        assert "Secure" in sign_in(client).headers["set-cookie"]


def test_the_page_asked_for_comes_after_signing_in_but_never_another_site(
    client: TestClient,
) -> None:
    first = client.get("/tp/admin/results?since=2026-01-01", follow_redirects=False)
    location = first.headers["location"]
    assert location == "/tp/admin/signin?next=/tp/admin/results%3Fsince%3D2026-01-01"
    page = client.get(location)
    assert 'name="next" value="/tp/admin/results?since=2026-01-01"' in page.text
    back = sign_in(client, next="/tp/admin/results?since=2026-01-01")
    assert back.headers["location"] == "/tp/admin/results?since=2026-01-01"
    client.cookies.clear()
    assert sign_in(client, next="https://evil.example/").headers["location"] == "/tp/admin/"
    client.cookies.clear()
    assert sign_in(client, next="/tp/admin//evil.example").headers["location"] == "/tp/admin/"
    for outside in ("/tp/admin/../../x", "/tp/admin/./../x", "/tp/admin/results/.."):
        client.cookies.clear()
        assert sign_in(client, next=outside).headers["location"] == "/tp/admin/"


def test_a_wrong_password_is_refused_and_logged_without_the_password(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="touchpoint.admin")
    wrong = sign_in(client, password="not the password at all")
    unknown = sign_in(client, name="zed", password=PASSWORD)
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "The user name or the password is wrong." in response.text
        assert COOKIE not in response.headers.get("set-cookie", "")
    assert "sign-in failed for user 'ana' from testclient" in caplog.text
    assert "sign-in failed for user 'zed' from testclient" in caplog.text
    assert "not the password at all" not in caplog.text and PASSWORD not in caplog.text
    assert client.get("/tp/admin/results", follow_redirects=False).status_code == 303


def test_without_users_the_sign_in_page_says_how_to_add_one(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        page = client.get("/tp/admin/signin")
        assert "touchpoint admin user add NAME --role editor" in page.text
    add_user(settings.database_url)
    with TestClient(create_app(settings)) as client:
        assert "touchpoint admin user add" not in client.get("/tp/admin/signin").text


def test_sign_in_attempts_are_limited_per_address_and_per_name(settings: Settings) -> None:
    add_user(settings.database_url)
    limited = Settings.load({**_values(settings), "admin_login_per_minute": 3}, environ={})
    with TestClient(create_app(limited)) as client:
        for _ in range(3):
            assert sign_in(client, password="wrong password!").status_code == 401
        refused = sign_in(client)  # the right password, too late
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert "Too many attempts" in refused.text
        console = client.app.state.console  # type: ignore[attr-defined]
        # From other addresses a stranger needs ten times as many tries to lock a name out.
        for n in range(27):
            console.by_address.buckets.clear()  # as if from another address
            assert sign_in(client, password="wrong password!").status_code == 401, n
        console.by_address.buckets.clear()
        assert sign_in(client).status_code == 429  # now the name is limited
        console.by_name.buckets.clear()
        assert sign_in(client).status_code == 303


def test_sign_in_attempts_are_limited_in_all_however_many_addresses(settings: Settings) -> None:
    """Sixty times the per-address limit in all: each try costs argon2's memory and CPU."""
    add_user(settings.database_url)
    limited = Settings.load({**_values(settings), "admin_login_per_minute": 1}, environ={})
    with TestClient(create_app(limited)) as client:
        console = client.app.state.console  # type: ignore[attr-defined]
        answers = []
        for n in range(61):
            console.by_address.buckets.clear()
            answers.append(sign_in(client, name=f"user{n}", password="wrong password!").status_code)
        assert answers[:60] == [401] * 60 and answers[60] == 429


@pytest.mark.parametrize(
    ("address", "counted"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("", ""),
    ],
)
def test_an_ipv6_client_is_limited_by_its_64(address: str, counted: str) -> None:
    assert signin._network(address) == counted


def test_a_tampered_cookie_or_one_of_another_key_leads_to_the_sign_in_page(
    client: TestClient,
) -> None:
    sign_in(client)
    good = client.cookies[COOKIE]
    forged = [
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        URLSafeSerializer("another key", salt=SALT).dumps({"u": "ana", "g": 0, "s": 1, "a": 1}),
        "not-a-cookie",
        URLSafeSerializer(
            client.app.state.tp.settings.resolve_secret_key(),  # type: ignore[attr-defined]
            salt=SALT,
        ).dumps({"u": "ana"}),  # signed right, missing fields
    ]
    for value in forged:
        client.cookies.clear()
        client.cookies.set(COOKIE, value, path="/tp/admin")
        response = client.get("/tp/admin/results", follow_redirects=False)
        assert response.status_code == 303, value
        assert response.headers["location"].startswith("/tp/admin/signin?expired=1")


def test_a_visitor_cookie_is_no_session(client: TestClient) -> None:
    client.post("/tp/v1/consent", json={"granted": ["marketing"]})
    client.cookies.set(COOKIE, client.cookies["tp_vid"], path="/tp/admin")
    assert client.get("/tp/admin/results", follow_redirects=False).status_code == 303


def test_a_session_ends_when_idle_and_after_its_longest_life(client: TestClient) -> None:
    console = client.app.state.console  # type: ignore[attr-defined]
    clock = console.clock = Clock(1_800_000_000.0)
    sign_in(client)
    for _ in range(28):  # a request every 25 minutes keeps it alive ...
        clock.now += 25 * 60
        assert client.get("/tp/admin/results", follow_redirects=False).status_code == 200
    clock.now += 25 * 60  # ... but not past 12 hours after signing in (29 * 25 min)
    ended = client.get("/tp/admin/results", follow_redirects=False)
    assert ended.headers["location"].startswith("/tp/admin/signin?expired=1")
    assert "Your session has ended" in client.get(ended.headers["location"]).text
    sign_in(client)
    clock.now += 31 * 60  # idle for longer than 30 minutes
    assert client.get("/tp/admin/results", follow_redirects=False).status_code == 303


def test_the_console_can_be_turned_off(settings: Settings) -> None:
    off = Settings.load({**_values(settings), "admin_console": False}, environ={})
    with TestClient(create_app(off)) as client:
        for path in ("/tp/admin/", "/tp/admin/signin", "/tp/admin/results"):
            assert client.get(path).status_code == 404
        assert client.post("/tp/admin/signin", data={"name": "a"}).status_code == 404


def _values(settings: Settings) -> dict[str, object]:
    return {
        "data_dir": settings.data_dir,
        "database": settings.database,
        "rules_dir": settings.rules_dir,
    }


def test_a_hash_with_older_parameters_is_replaced_at_sign_in(
    client: TestClient, settings: Settings
) -> None:
    older = PasswordHasher(time_cost=1, memory_cost=32, parallelism=1).hash(PASSWORD)
    conn = store.connect(settings.database_url)
    generation = store.admin_user(conn, "ana").sessions  # type: ignore[union-attr]
    with store.immediate(conn):
        store.rehash_admin_password(
            conn,
            "ana",
            old_hash=store.admin_user(conn, "ana").password_hash,
            password_hash=older,  # type: ignore[union-attr]
        )
    assert sign_in(client).status_code == 303
    renewed = store.admin_user(conn, "ana")
    conn.close()
    assert renewed is not None and renewed.password_hash != older
    assert renewed.sessions == generation  # the session just started stays valid
    assert client.get("/tp/admin/results").status_code == 200
