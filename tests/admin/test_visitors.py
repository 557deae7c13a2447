"""The visitor lookup in the console: by e-mail address, customer id and visitor id, a miss, the
audit entry written first (without the address in clear), editors only, CSRF on every form,
export and erasure with the CLI's code, a storage failure showing nothing, and retention of the
audit log."""

from __future__ import annotations

import asyncio
import html
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from touchpoint import store
from touchpoint.app import create_app
from touchpoint.privacy import retention
from touchpoint.settings import Settings

from ..conftest import ROOT
from ..privacy.test_subjects import SITE, ada_needles, everything, hashes, key, naming, visit
from ..profiles.test_identity import make_settings, signed
from .helpers import add_user, csrf_of, sign_in

ADA = "ada@example.com"


@pytest.fixture
def settings(tmp_path: Path, rules_dir: Path) -> Settings:
    (rules_dir / "site.yaml").write_text(SITE)
    for name in ("scoring.yaml", "lifecycle.yaml"):  # points, decay and stages
        shutil.copy(ROOT / "rules" / name, rules_dir)
    return make_settings(tmp_path, rules_dir)


@pytest.fixture
def app(settings: Settings):  # type: ignore[no-untyped-def]
    add_user(settings.database_url, "ana", role="editor")
    add_user(settings.database_url, "vic", role="viewer")
    return create_app(settings)


@pytest.fixture
def editor(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as client:
        sign_in(client, "ana")
        yield client


@pytest.fixture
def people(app, editor: TestClient, settings: Settings) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Ada (verified e-mail address and customer id) and Bob, through the public endpoints."""
    auth = key(settings, "events:write", name="shop")
    ada = visit(TestClient(app), auth, **signed(email=ADA, customer_id="C-1"), first_name="Ada")
    bob = visit(TestClient(app), auth, email="bob@example.com", customer_id="C-2")
    return {"ada": [ada], "bob": [bob]}


def csrf(client: TestClient) -> str:
    return csrf_of(client.get("/tp/admin/visitors").text)


def look_up(client: TestClient, kind: str, q: str, path: str = "/tp/admin/visitors", **extra: str):  # type: ignore[no-untyped-def]
    return client.post(
        path, data={"csrf": csrf(client), "kind": kind, "q": q, **extra}, follow_redirects=False
    )


def audit(settings: Settings) -> list[tuple[Any, ...]]:
    return everything(settings.database_url)["admin_audit"]


@pytest.mark.parametrize(
    ("kind", "q"), [("email", " Ada@Example.com "), ("customer", "C-1"), ("id", "ADA")]
)
def test_a_lookup_by_each_reference_shows_the_profile(
    editor: TestClient, people: dict[str, Any], settings: Settings, kind: str, q: str
) -> None:
    ada = people["ada"][0]
    q = ada if q == "ADA" else q
    page = look_up(editor, kind, q)
    assert page.status_code == 200, page.text
    text = page.text
    assert f"<code>{ada}</code>" in text and people["bob"][0] not in text
    for heading in (
        "Profile",
        "Score decay",
        "Stage history",
        "Recent events",
        "Campaign history",
        "Consent log",
        "Coupons",
    ):
        assert f">{heading}</h2>" in text, heading
    assert "first-order-coupon" in text and "banner-accept-all" in text
    assert "<td>lead</td>" in text  # the stage history's move to lead
    # The decay chart: the contract of snippet/admin/README.md, a day a point from today.
    raw = text.split('data-series="')[1].split('"')[0]
    series = json.loads(html.unescape(raw))
    assert len(series["x"]) == 61 and series["series"][0]["label"] == "Score"
    values = series["series"][0]["values"]
    assert values[0] > 0 and values == sorted(values, reverse=True) and values[-1] < values[0]
    (entry,) = audit(settings)
    assert entry[2:4] == ("ana", "lookup")
    assert entry[4] == kind


def test_a_score_is_written_with_the_pages_decimal_mark(
    editor: TestClient, people: dict[str, Any]
) -> None:
    english = look_up(editor, "id", people["ada"][0]).text
    editor.cookies.set("tp_admin_lang", "de", path="/tp/admin")
    german = look_up(editor, "id", people["ada"][0]).text
    shown = english.split('<dd class="num">')[1].split("<")[0]
    assert "." in shown and "," not in shown
    assert german.split('<dd class="num">')[1].split("<")[0] == shown.replace(".", ",")


def test_the_audit_entry_holds_no_address_in_clear(
    editor: TestClient, people: dict[str, Any], settings: Settings
) -> None:
    look_up(editor, "email", ADA)
    look_up(editor, "customer", "C-1")
    rows = audit(settings)
    assert [row[4] for row in rows] == ["email", "customer"]
    dump = json.dumps(rows)
    assert ADA not in dump and "C-1" not in dump and "ada@" not in dump
    # The reference is stored as the identities are: the keyed hash.
    assert [row[5] for row in rows] == hashes(settings, ADA, "C-1")
    page = editor.get("/tp/admin/visitors/audit")
    assert page.status_code == 200 and rows[0][5] in page.text and ADA not in page.text
    assert "<td>ana</td>" in page.text and "E-mail address" in page.text


def test_the_audit_log_shows_the_entries_about_one_reference(
    editor: TestClient, people: dict[str, Any], settings: Settings
) -> None:
    look_up(editor, "email", ADA)
    look_up(editor, "id", people["bob"][0])
    look_up(editor, "customer", "C-1", "/tp/admin/visitors/export")
    about = look_up(editor, "email", "ADA@example.com ", "/tp/admin/visitors/audit")
    assert about.status_code == 200
    rows = about.text.split("<tbody>")[1].split("</tbody>")[0]
    assert rows.count("<tr>") == 1 and people["bob"][0] not in rows
    assert "Show every entry" in about.text
    everyone = editor.get("/tp/admin/visitors/audit").text
    assert everyone.split("<tbody>")[1].count("<tr>") == 3
    nobody = look_up(editor, "email", "nobody@example.com", "/tp/admin/visitors/audit")
    assert "No entry about this reference." in nobody.text
    bad = look_up(editor, "email", "nope", "/tp/admin/visitors/audit")
    assert bad.status_code == 400 and 'aria-invalid="true"' in bad.text
    assert len(audit(settings)) == 3  # looking in the log is not itself a lookup


def test_a_miss_is_audited_and_says_nothing_is_stored(
    editor: TestClient, settings: Settings
) -> None:
    page = look_up(editor, "email", "nobody@example.com")
    assert page.status_code == 200
    assert "Nothing is stored about this person." in page.text
    assert [row[3] for row in audit(settings)] == ["lookup"]


def test_a_bad_reference_is_shown_beside_the_field_and_not_audited(
    editor: TestClient, settings: Settings
) -> None:
    page = look_up(editor, "email", "not an address")
    assert page.status_code == 400
    assert 'aria-invalid="true"' in page.text and "This is not an e-mail address." in page.text
    assert look_up(editor, "id", "  ").status_code == 400
    assert audit(settings) == []


def test_viewers_are_refused_every_visitor_page(app, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app) as client:
        sign_in(client, "vic")
        assert client.get("/tp/admin/visitors").status_code == 403
        assert client.get("/tp/admin/visitors/audit").status_code == 403
        token = csrf_of(client.get("/tp/admin/results").text)
        for path in ("", "/export", "/erase", "/audit"):
            path = "/tp/admin/visitors" + path
            response = client.post(path, data={"csrf": token, "kind": "email", "q": ADA})
            assert response.status_code == 403, path
            assert "This needs the editor role" in response.text
        nav = client.get("/tp/admin/results").text
        assert ">Visitors</a>" not in nav
    assert audit(settings) == []


@pytest.mark.parametrize(
    "path", ["/visitors", "/visitors/export", "/visitors/erase", "/visitors/audit"]
)
def test_forms_without_the_csrf_token_are_refused(
    editor: TestClient, people: dict[str, Any], settings: Settings, path: str
) -> None:
    form = {"kind": "email", "q": ADA, "confirm": "yes"}
    for token in ({}, {"csrf": "forged"}):
        response = editor.post("/tp/admin" + path, data={**form, **token})
        assert response.status_code == 403
        assert "This form has expired" in response.text
    assert audit(settings) == []
    assert naming(settings.database_url, people["ada"]) != []


def test_export_downloads_what_the_cli_exports(
    editor: TestClient, people: dict[str, Any], settings: Settings
) -> None:
    response = look_up(editor, "customer", "C-1", "/tp/admin/visitors/export")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert "attachment" in response.headers["content-disposition"]
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    conn = store.connect(settings.database_url)
    try:
        subject = store.find_subject(conn, ("id", people["ada"][0]))
        assert subject is not None
        expected = json.loads(json.dumps(store.export_subject(conn, subject)))
    finally:
        conn.close()
    assert body["visitor_ids"] == expected["visitor_ids"]
    assert body["tables"] == expected["tables"] and "exported_at" in body
    assert [row[3] for row in audit(settings)] == ["export"]


def test_erase_asks_first_then_erases_as_the_cli_does(
    editor: TestClient, people: dict[str, Any], settings: Settings
) -> None:
    confirm = look_up(editor, "email", ADA, "/tp/admin/visitors/erase")
    assert confirm.status_code == 200
    assert "Erase this person?" in confirm.text and people["ada"][0] in confirm.text
    assert 'name="confirm" value="yes"' in confirm.text
    assert naming(settings.database_url, people["ada"]) != []  # nothing erased yet
    done = look_up(editor, "email", ADA, "/tp/admin/visitors/erase", confirm="yes")
    assert done.status_code == 303
    assert done.headers["location"].startswith("/tp/admin/visitors?erased=")
    assert "Erased (erasure record #1)" in editor.get(done.headers["location"]).text
    # The same assertions as the CLI's erasure (tests/privacy/test_subjects.py), but for the
    # audit log: it keeps who looked up and erased whom (by the address's keyed hash) until
    # admin_audit_days (docs/privacy.md#the-consoles-audit-log).
    left = naming(settings.database_url, ada_needles(settings, people))
    assert {table for table, _ in left} == {"admin_audit"}
    (record,) = everything(settings.database_url)["erasures"]
    assert record[2:4] == ("cli", "console:ana")
    assert naming(settings.database_url, people["bob"]) != []
    assert [row[3] for row in audit(settings)] == ["lookup", "erase"]
    again = look_up(editor, "email", ADA, "/tp/admin/visitors/erase", confirm="yes")
    assert again.status_code == 404 and "Nothing is stored" in again.text


def writer_read_only(client: TestClient, on: bool) -> None:
    """As tests/store/test_storage_failure.py: the writer's connection refuses to write."""
    writer = client.app.state.tp.writer  # type: ignore[attr-defined]
    writer._conn.execute(f"PRAGMA query_only = {int(on)}")


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        ("/visitors", {}),
        ("/visitors/export", {}),
        ("/visitors/erase", {}),
        ("/visitors/erase", {"confirm": "yes"}),
    ],
)
def test_without_an_audit_entry_nothing_is_shown_or_done(
    editor: TestClient, people: dict[str, Any], settings: Settings, path: str, extra: dict[str, str]
) -> None:
    token = csrf(editor)
    writer_read_only(editor, True)
    try:
        response = editor.post(
            "/tp/admin" + path, data={"csrf": token, "kind": "email", "q": ADA, **extra}
        )
    finally:
        writer_read_only(editor, False)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "30"
    assert "The audit log cannot be written" in response.text
    assert people["ada"][0] not in response.text and "first-order-coupon" not in response.text
    assert audit(settings) == []
    assert naming(settings.database_url, people["ada"]) != []


def test_the_purge_deletes_audit_entries_past_admin_audit_days(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    store.migrate(path)
    conn = store.connect(path)
    day = 86400
    now = 1_000 * day
    with store.immediate(conn):
        for age in (400, 366, 10):
            store.audit(conn, at=now - age * day, user="ana", action="lookup", ref=("id", "v"))
    settings = Settings.load({"data_dir": str(tmp_path)}, environ={})
    limits = retention.cutoffs(settings, now)
    assert store.count_due(conn, limits)["admin_audit"] == 2

    async def transact(fn):  # type: ignore[no-untyped-def]
        with store.immediate(conn):
            return fn(conn)

    async def no_sleep(seconds: float) -> None:
        return None

    tables = store.purged_tables(conn)
    deleted = asyncio.run(retention.purge(transact, tables, limits, batch_rows=1, sleep=no_sleep))
    assert deleted["admin_audit"] == 2
    assert [entry.at for entry in store.audit_entries(conn)] == [now - 10 * day]
    forever = Settings.load({"data_dir": str(tmp_path), "admin_audit_days": 0}, environ={})
    assert retention.cutoffs(forever, now).audit_before is None
    conn.close()
