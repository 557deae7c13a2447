"""Every state-changing console request needs the session's CSRF token and the console's own
origin; every view states the role it needs; sign-out and a new password end sessions."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.testclient import TestClient
from touchpoint import store
from touchpoint.admin import routes
from touchpoint.admin.guard import require
from touchpoint.admin.layout import Page
from touchpoint.admin.sessions import Session
from touchpoint.app import create_app
from touchpoint.settings import Settings

from .helpers import add_user, csrf_of, sign_in


@require("editor")
async def edit(request: Request, session: Session) -> Response:
    return PlainTextResponse(f"edited by {session.name}")


@pytest.fixture
def client(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setattr(routes, "PAGES", [*routes.PAGES, Page("/edit", edit, ("GET", "POST"))])
    add_user(settings.database_url, "ana", role="editor")
    add_user(settings.database_url, "vic", role="viewer")
    with TestClient(create_app(settings)) as client:
        yield client


def token(client: TestClient) -> str:
    return csrf_of(client.get("/tp/admin/results").text)


def test_a_post_without_the_csrf_token_is_refused_with_a_page(client: TestClient) -> None:
    sign_in(client)
    for data in ({}, {"csrf": "0" * 64}, {"csrf": ""}):
        refused = client.post("/tp/admin/edit", data=data)
        assert refused.status_code == 403
        assert "This form has expired or was sent from another site" in refused.text
        assert refused.headers["content-type"].startswith("text/html")
    assert client.post("/tp/admin/edit", data={"csrf": token(client)}).text == "edited by ana"
    # the console's scripts send it as a header
    sent = client.post("/tp/admin/edit", headers={"X-CSRF-Token": token(client)})
    assert sent.text == "edited by ana"


def test_the_token_belongs_to_one_session(client: TestClient) -> None:
    sign_in(client)
    first = token(client)
    client.cookies.clear()
    sign_in(client, "vic")
    assert token(client) != first
    assert client.post("/tp/admin/signout", data={"csrf": first}).status_code == 403


def test_a_post_from_another_site_is_refused_even_with_the_token(client: TestClient) -> None:
    sign_in(client)
    csrf = token(client)
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
        refused = client.post("/tp/admin/edit", data={"csrf": csrf}, headers=headers)
        assert refused.status_code == 403 and "other sites are refused" in refused.text
    refused = client.post(
        "/tp/admin/signin",
        data={"name": "ana", "password": "x"},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert refused.status_code == 403


def test_a_viewer_is_refused_an_editors_page(client: TestClient) -> None:
    sign_in(client, "vic")
    refused = client.get("/tp/admin/edit")
    assert refused.status_code == 403
    assert "This needs the editor role; you are signed in as viewer." in refused.text
    posted = client.post("/tp/admin/edit", data={"csrf": token(client)})
    assert posted.status_code == 403 and "editor role" in posted.text


def test_signing_out_ends_the_session_everywhere(client: TestClient) -> None:
    sign_in(client)
    copied = client.cookies["tp_admin"]
    out = client.post("/tp/admin/signout", data={"csrf": token(client)}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/tp/admin/signin?signed_out=1"
    assert 'tp_admin=""' in out.headers["set-cookie"]
    client.cookies.set("tp_admin", copied, path="/tp/admin")  # a copy of the cookie
    assert client.get("/tp/admin/results", follow_redirects=False).status_code == 303


def test_a_new_password_or_removing_the_user_ends_their_sessions(
    client: TestClient, settings: Settings
) -> None:
    sign_in(client)
    conn = store.connect(settings.database_url)
    with store.immediate(conn):
        store.set_admin_password(conn, "ana", password_hash="$argon2id$new", now=1)
    assert client.get("/tp/admin/results", follow_redirects=False).status_code == 303
    client.cookies.clear()
    sign_in(client, "vic")
    with store.immediate(conn):
        store.remove_admin_user(conn, "vic")
    conn.close()
    assert client.get("/tp/admin/results", follow_redirects=False).status_code == 303


def test_a_removed_users_cookie_does_not_open_a_new_user_of_the_same_name(
    client: TestClient, settings: Settings
) -> None:
    """Removing and adding a user again is how an operator resets an account: the cookies of
    the removed one (a viewer, say) must not come back as the new one's (an editor)."""
    sign_in(client, "vic")
    copied = client.cookies["tp_admin"]
    conn = store.connect(settings.database_url)
    with store.immediate(conn):
        store.remove_admin_user(conn, "vic")
    conn.close()
    add_user(settings.database_url, "vic", role="editor")
    client.cookies.set("tp_admin", copied, path="/tp/admin")
    assert client.get("/tp/admin/visitors", follow_redirects=False).status_code == 303


def test_with_its_own_host_the_console_answers_no_other(settings: Settings) -> None:
    """admin_host: the console on its own origin, out of reach of the shop's scripts."""
    add_user(settings.database_url)
    own = Settings.load(
        {
            "data_dir": settings.data_dir,
            "database": settings.database,
            "rules_dir": settings.rules_dir,
            "admin_host": "console.shop.example",
        },
        environ={},
    )
    with TestClient(create_app(own), base_url="http://shop.example") as shop:
        assert shop.get("/tp/admin/signin").status_code == 404
        assert shop.get("/tp/healthz").status_code == 200  # the rest is served as ever
    for base in ("http://console.shop.example", "http://Console.Shop.Example:8443"):
        with TestClient(create_app(own), base_url=base) as console:
            assert console.get("/tp/admin/signin").status_code == 200
            assert sign_in(console).status_code == 303


def test_an_unknown_console_path_is_the_consoles_404_page_with_its_headers(
    client: TestClient,
) -> None:
    for method in ("GET", "POST"):
        answer = client.request(method, "/tp/admin/no-such-page")
        assert answer.status_code == 404
        assert "There is no such page in the console." in answer.text
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert answer.headers["cache-control"] == "no-store"


def test_every_console_page_has_a_strict_content_security_policy(client: TestClient) -> None:
    sign_in(client)
    for path in ("/tp/admin/signin", "/tp/admin/results", "/tp/admin/edit"):
        response = client.get(path)
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "'unsafe-inline'" not in csp
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"
        # scripts only from files (the charts' on the results page), none inline
        assert re.findall(r"<script(?![^>]*\bsrc=)", response.text) == []
        assert "style=" not in response.text
    css = client.get(
        client.get("/tp/admin/signin").text.split('stylesheet" href="')[1].split('"')[0]
    )
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "immutable" in css.headers["cache-control"]
    assert client.get("/tp/admin/assets/nothing.css").status_code == 404


def test_every_view_must_state_a_role() -> None:
    with pytest.raises(ValueError, match="unknown role"):
        require("admin")
