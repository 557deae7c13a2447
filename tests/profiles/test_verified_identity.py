"""Claimed and verified identity (issue 15, docs/security.md): an address typed into a form
never opens someone else's profile; only the shop's signature joins a browser to the profile
that holds the address."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from touchpoint.app import create_app

from .test_identity import (  # noqa: F401 (site_rules: a fixture)
    ALL,
    SECRET,
    grant,
    identify,
    make_settings,
    record,
    signed,
    visitor_id,
)

VERA = "vera@example.com"


@pytest.fixture
def app(tmp_path: Path, rules_dir: Path):  # type: ignore[no-untyped-def]
    return create_app(make_settings(tmp_path, rules_dir))


@pytest.fixture
def vera(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """Vera on her laptop: consented, signed up in a popup with her address and first name."""
    with TestClient(app) as client:
        grant(client)
        assert identify(client, email=VERA, first_name="Vera").status_code == 200
        yield client


def another_browser(app) -> TestClient:  # type: ignore[no-untyped-def]
    client = TestClient(app)
    grant(client)
    return client


def consent_log(client: TestClient, vid: str) -> list[Any]:
    return list(client.app.state.tp.reader.consent_log(vid))  # type: ignore[attr-defined]


def test_a_typed_address_does_not_take_over_the_profile(app, vera: TestClient) -> None:  # type: ignore[no-untyped-def]
    victim = visitor_id(vera)
    before = consent_log(vera, victim)
    attacker = another_browser(app)
    mine = visitor_id(attacker)
    answer = identify(attacker, email=VERA)
    # The answer is the one an unknown address gets: it tells nobody the address is known.
    stranger = identify(another_browser(app), email="nobody-knows@example.com")
    assert (answer.status_code, answer.json()) == (stranger.status_code, stranger.json())
    assert answer.json() == {"identified": True, "merged": False}
    assert "set-cookie" not in answer.headers
    # The attacker's cookie still names the attacker's own visitor: nothing of Vera's shows.
    assert visitor_id(attacker) == mine != victim
    assert record(attacker).profile.first_name is None
    assert record(vera, victim).profile.first_name == "Vera"
    # Withdrawing everything erases the attacker's own visitor, not Vera's profile or consent.
    assert attacker.post("/tp/v1/consent", json={"granted": []}).status_code == 200
    assert record(vera, mine) is None
    assert record(vera, victim) is not None
    assert consent_log(vera, victim) == before


def test_a_claim_of_two_peoples_identifiers_is_no_409(app, vera: TestClient) -> None:  # type: ignore[no-untyped-def]
    other = another_browser(app)
    identify(other, customer_id="C-2")
    probe = another_browser(app)
    answer = identify(probe, email=VERA, customer_id="C-2")
    assert (answer.status_code, answer.json()) == (200, {"identified": True, "merged": False})


def test_a_verified_login_on_a_second_device_joins_the_profile(app) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app) as laptop:
        grant(laptop)
        assert identify(laptop, **signed(email=VERA), first_name="Vera").status_code == 200
        known = visitor_id(laptop)
        phone = another_browser(app)
        answer = identify(phone, **signed(email=" Vera@Example.com"))
        assert answer.json() == {"identified": True, "merged": True}
        assert visitor_id(phone) == known
        assert record(phone).profile.first_name == "Vera"


def test_a_verified_login_takes_the_address_from_a_mere_claim(app, vera: TestClient) -> None:  # type: ignore[no-untyped-def]
    """Someone typed Vera's address first (the claim holder); Vera's verified login does not
    join that browser's profile: the address moves to her."""
    claimant = visitor_id(vera)
    phone = another_browser(app)
    answer = identify(phone, **signed(email=VERA))
    assert answer.json() == {"identified": True, "merged": False}
    assert visitor_id(phone) != claimant
    holder = phone.app.state.tp.reader.conn.execute(  # type: ignore[attr-defined]
        "SELECT visitor_id, verified FROM identities"
    ).fetchall()
    assert holder == [(visitor_id(phone), 1)]


@pytest.mark.parametrize(
    ("token", "status", "message"),
    [
        (lambda: signed(secret="not-the-shops-secret", email=VERA), 403, "does not match"),
        (lambda: {**signed(email=VERA), "email": "mallory@example.com"}, 403, "does not match"),
        (lambda: signed(email=VERA, expires=int(time.time()) - 1), 403, "expired"),
        (lambda: signed(email=VERA, expires=int(time.time()) + 2 * 86400), 400, "24 hours"),
        (lambda: {"email": VERA, "verification": {"expires": 1}}, 400, "signature is required"),
        (lambda: {"email": VERA, "verification": "abc"}, 400, "must be an object"),
    ],
)
def test_a_forged_expired_or_malformed_token_is_refused(  # type: ignore[no-untyped-def]
    app, vera: TestClient, token, status: int, message: str
) -> None:
    phone = another_browser(app)
    mine = visitor_id(phone)
    response = identify(phone, **token())
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert visitor_id(phone) == mine


def test_a_token_without_a_secret_on_the_server_is_refused(tmp_path: Path, rules_dir: Path) -> None:
    app = create_app(make_settings(tmp_path, rules_dir, identity_secret=""))
    with TestClient(app) as client:
        grant(client, ALL)
        response = identify(client, **signed(SECRET, email=VERA))
        assert response.status_code == 403
        assert "identity_secret" in response.json()["error"]
