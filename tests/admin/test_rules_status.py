"""The rules status page and the simulator in the console: files and campaigns, the last
reload and the workers, the simulation's trace, its inline errors and who may simulate a stored
visitor."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient
from touchpoint.app import create_app
from touchpoint.rules.lastgood import LastGood, Status
from touchpoint.settings import Settings

from .helpers import add_user, csrf_of, sign_in


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    add_user(settings.database_url, role="editor")
    add_user(settings.database_url, "vic", role="viewer")
    with TestClient(create_app(settings)) as client:
        sign_in(client, "vic")
        yield client


def text_of(page: str) -> str:
    main = page[page.index("<main") :]
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", main)))


def test_the_status_lists_files_campaigns_and_the_last_reload(client: TestClient) -> None:
    page = client.get("/tp/admin/rules")
    assert page.status_code == 200
    assert '<a href="/tp/admin/rules" aria-current="page">Rules</a>' in page.text
    shown = text_of(page.text)
    assert "first-order-coupon.yaml campaign first-order-coupon popup exit_intent" in shown
    assert "templates/ebook.html template" in shown
    assert "Loaded without errors at" in shown
    assert "the accepted set" in shown  # this worker serves it
    assert "New file" not in shown  # a viewer creates nothing


def test_the_status_shows_a_refused_reload_and_a_stale_worker(
    client: TestClient, settings: Settings
) -> None:
    last_good = LastGood(settings.data_dir, settings.rules_dir)
    problem = "first-order-coupon.yaml:14:1: priority: must be a whole number (higher wins)"
    last_good.record(Status(False, "f" * 64, (problem,), 1_765_000_000.0))
    last_good.announce("e" * 64, since=1_765_000_000.0, pid=1)  # pid 1 is alive
    page = client.get("/tp/admin/rules")
    shown = text_of(page.text)
    assert "Refused at" in shown and problem in shown
    assert "eeeeeeeeeeee serves another set" in shown


def test_the_status_says_when_reloading_is_off(settings: Settings) -> None:
    options = {
        "data_dir": str(settings.data_dir),
        "database": settings.database,
        "rules_dir": str(settings.rules_dir),
    }
    quiet = Settings.load({**options, "reload_rules": False}, environ={})
    add_user(quiet.database_url)
    with TestClient(create_app(quiet)) as client:
        sign_in(client)
        shown = text_of(client.get("/tp/admin/rules").text)
    assert "Reloading is off (setting reload_rules)" in shown


def simulate(client: TestClient, **fields: str):  # type: ignore[no-untyped-def]
    token = csrf_of(client.get("/tp/admin/simulator").text)
    return client.post("/tp/admin/simulator", data={"csrf": token, **fields})


def test_the_simulator_explains_every_campaign(client: TestClient) -> None:
    page = client.get("/tp/admin/simulator")
    assert page.status_code == 200
    assert "A stored visitor" not in page.text  # viewers: no stored visitors
    answer = simulate(
        client,
        url="/demo/products/trail-runner.html",
        who="profile",
        profile='{"visits": 3}',
        trigger="exit_intent",
    )
    assert answer.status_code == 200
    shown = text_of(answer.text)
    assert "/demo/products/trail-runner.html for a what-if visitor at" in shown
    assert "Popup first-order-coupon (ten-percent) on exit_intent" in shown
    assert "When exit_intent fires: first-order-coupon" in shown
    assert "first-order-coupon 10 first-order-coupon.yaml chosen (ten-percent)" in shown
    link = re.search(r'href="(/demo/products/trail-runner.html\?tp_preview=[^"]+)"', answer.text)
    assert link  # a preview link, as touchpoint preview prints it
    elsewhere = simulate(client, url="/about")
    assert "not chosen: audience: page.path is" in text_of(elsewhere.text)


def test_the_simulator_shows_bad_input_beside_its_field(client: TestClient) -> None:
    answer = simulate(
        client, url="nowhere", context="{", at="soon", country="zz9", who="profile", profile="[1]"
    )
    assert answer.status_code == 400
    shown = text_of(answer.text)
    assert "A path starting with / or an http(s) URL." in shown
    assert "Not JSON: Expecting property name" in shown
    assert "'soon' is not a time" in shown
    assert "must be a JSON object" in shown
    for field in ("url", "context", "at", "country", "profile"):
        assert f'aria-invalid="true" aria-describedby="{field}-error"' in answer.text
    assert "Every campaign and why" not in shown


def test_only_editors_simulate_a_stored_visitor(client: TestClient) -> None:
    refused = simulate(client, who="visitor", visitor="abc")
    assert refused.status_code == 400
    assert "Only editors may simulate a stored visitor." in text_of(refused.text)
    client.post("/tp/admin/signout", data={"csrf": csrf_of(client.get("/tp/admin/rules").text)})
    sign_in(client)
    unknown = simulate(client, who="visitor", visitor="abc")
    assert "No visitor with this id." in text_of(unknown.text)
    client.post("/tp/v1/consent", json={"granted": ["marketing", "personalisation"]})
    visitor = client.cookies["tp_vid"].split(".")[0]
    known = simulate(client, who="visitor", visitor=visitor, url="/demo/products/x.html")
    assert known.status_code == 200
    assert f"for visitor {visitor} at" in text_of(known.text)
    # Reading a person's profile is audited, as a lookup is, a miss included.
    audit = client.app.state.tp.reader.conn.execute(  # type: ignore[attr-defined]
        "SELECT action, ref_kind, ref FROM admin_audit ORDER BY id"
    ).fetchall()
    assert audit == [("simulate", "id", "abc"), ("simulate", "id", visitor)]


def test_a_simulation_nested_too_deeply_is_a_field_error(client: TestClient) -> None:
    answer = simulate(client, context="[" * 50_000)
    assert answer.status_code == 400
    assert "nested too deeply" in text_of(answer.text)


def test_the_simulator_refuses_a_post_without_csrf(client: TestClient) -> None:
    answer = client.post("/tp/admin/simulator", data={"csrf": "forged", "url": "/"})
    assert answer.status_code == 403
