"""The rules editor in the console: opening a file, validation as JSON, saving (refused when
invalid, 422, or when the file changed on disk, 409), the history with its restore, new files,
the schema, roles, CSRF and names outside the rules folder."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from touchpoint.app import create_app
from touchpoint.settings import Settings

from .helpers import add_user, csrf_of, sign_in

FILE = "first-order-coupon.yaml"


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    add_user(settings.database_url, role="editor")
    add_user(settings.database_url, "vic", role="viewer")
    with TestClient(create_app(settings)) as client:
        sign_in(client)
        yield client


def form_of(client: TestClient, name: str = FILE) -> dict[str, str]:
    page = client.get(f"/tp/admin/rules/edit?file={name}")
    assert page.status_code == 200
    version = re.search(r'name="version" value="([^"]*)"', page.text)
    text = re.search(r"<textarea id=\"rules-text\"[^>]*>\n(.*?)</textarea>", page.text, re.S)
    assert version and text
    return {
        "csrf": csrf_of(page.text),
        "version": version.group(1),
        "text": html.unescape(text.group(1)),
        "action": "save",
    }


def test_the_editor_page_carries_the_editor_contract(client: TestClient) -> None:
    page = client.get(f"/tp/admin/rules/edit?file={FILE}")
    assert "data-editor" in page.text
    assert f'data-path="{FILE}"' in page.text
    assert 'data-schema-url="/tp/admin/rules/schema/campaign.json"' in page.text
    assert 'data-validate-url="/tp/admin/rules/validate"' in page.text
    assert f'data-csrf="{csrf_of(page.text)}"' in page.text
    assert '<script defer src="/tp/admin/static/editor.js"></script>' in page.text
    assert "campaign: first-order-coupon" in page.text


def test_a_save_writes_the_file_and_leads_back_with_a_notice(
    client: TestClient, rules_dir: Path
) -> None:
    fields = form_of(client)
    fields["text"] = fields["text"].replace("priority: 10", "priority: 11").replace("\n", "\r\n")
    saved = client.post(f"/tp/admin/rules/edit?file={FILE}", data=fields, follow_redirects=False)
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/tp/admin/rules/edit?file={FILE}&saved=2"
    assert "priority: 11\n" in (rules_dir / FILE).read_text()
    page = client.get(saved.headers["location"])
    assert "Saved as version #2: the server serves it within the reload interval" in page.text


def test_an_invalid_save_is_refused_with_its_file_line_message(
    client: TestClient, rules_dir: Path
) -> None:
    before = (rules_dir / FILE).read_text()
    fields = form_of(client)
    fields["text"] = fields["text"].replace("priority: 10", "priority: high")
    refused = client.post(f"/tp/admin/rules/edit?file={FILE}", data=fields)
    assert refused.status_code == 422
    assert "Not saved: the rules would not load with this text." in refused.text
    line = fields["text"].splitlines().index("priority: high") + 1
    assert f"<code>{FILE}:{line}:1: priority: must be a whole number" in refused.text
    assert "priority: high" in refused.text  # the text is kept
    assert (rules_dir / FILE).read_text() == before


def test_a_file_changed_on_disk_since_it_was_opened_is_a_conflict(
    client: TestClient, rules_dir: Path
) -> None:
    fields = form_of(client)
    theirs = (rules_dir / FILE).read_text().replace("priority: 10", "priority: 12")
    (rules_dir / FILE).write_text(theirs)
    fields["text"] = fields["text"].replace("priority: 10", "priority: 11")
    refused = client.post(f"/tp/admin/rules/edit?file={FILE}", data=fields)
    assert refused.status_code == 409
    assert "was changed by someone else" in refused.text
    assert "priority: 12" in refused.text and "priority: 11" in refused.text
    assert (rules_dir / FILE).read_text() == theirs
    # the form now carries their version: saving the merged text goes through
    again = dict(fields, version=re.findall(r'name="version" value="([^"]*)"', refused.text)[0])
    assert client.post(f"/tp/admin/rules/edit?file={FILE}", data=again).status_code == 200
    assert "priority: 11" in (rules_dir / FILE).read_text()


def test_validate_answers_problems_at_their_line(client: TestClient) -> None:
    fields = form_of(client)
    text = fields["text"].replace("priority: 10", "priority: high")
    answer = client.post(
        "/tp/admin/rules/validate",
        json={"text": text, "path": FILE},
        headers={"X-CSRF-Token": fields["csrf"]},
    )
    assert answer.status_code == 200
    line = text.splitlines().index("priority: high") + 1
    assert {
        "line": line,
        "column": 1,
        "message": "priority: must be a whole number (higher wins)",
        "severity": "error",
    } in answer.json()["problems"]
    clean = client.post(
        "/tp/admin/rules/validate",
        json={"text": fields["text"], "path": FILE},
        headers={"X-CSRF-Token": fields["csrf"]},
    )
    assert clean.json() == {"problems": [], "others": []}


def test_validate_needs_the_csrf_header_and_the_editor_role(client: TestClient) -> None:
    body = {"text": "campaign: x", "path": FILE}
    assert client.post("/tp/admin/rules/validate", json=body).status_code == 403
    wrong = client.post("/tp/admin/rules/validate", json=body, headers={"X-CSRF-Token": "x"})
    assert wrong.status_code == 403
    client.post("/tp/admin/signout", data={"csrf": csrf_of(client.get("/tp/admin/rules").text)})
    sign_in(client, "vic")
    token = csrf_of(client.get("/tp/admin/rules").text)
    viewer = client.post("/tp/admin/rules/validate", json=body, headers={"X-CSRF-Token": token})
    assert viewer.status_code == 403


def test_a_viewer_reads_files_but_cannot_save_or_restore(
    client: TestClient, rules_dir: Path
) -> None:
    fields = form_of(client)
    client.post(f"/tp/admin/rules/edit?file={FILE}", data=fields)  # version #1
    client.post("/tp/admin/signout", data={"csrf": fields["csrf"]})
    sign_in(client, "vic")
    page = client.get(f"/tp/admin/rules/edit?file={FILE}")
    assert page.status_code == 200
    assert "data-editor" not in page.text and "campaign: first-order-coupon" in page.text
    assert "editing needs the editor role" in page.text
    token = csrf_of(page.text)
    before = (rules_dir / FILE).read_text()
    saved = client.post(
        f"/tp/admin/rules/edit?file={FILE}", data={**fields, "csrf": token, "text": "x: 1"}
    )
    assert saved.status_code == 403
    history = client.get(f"/tp/admin/rules/history?file={FILE}")
    assert "#1" in history.text and "Restore" not in history.text
    restored = client.post(
        "/tp/admin/rules/restore", data={"csrf": token, "file": FILE, "id": "1", "version": ""}
    )
    assert restored.status_code == 403
    assert client.get("/tp/admin/rules/new").status_code == 403
    assert (rules_dir / FILE).read_text() == before


def test_a_save_without_the_csrf_token_is_refused(client: TestClient, rules_dir: Path) -> None:
    fields = form_of(client)
    before = (rules_dir / FILE).read_text()
    forged = client.post(f"/tp/admin/rules/edit?file={FILE}", data={**fields, "csrf": "forged"})
    assert forged.status_code == 403
    assert "This form has expired" in forged.text
    assert (rules_dir / FILE).read_text() == before


@pytest.mark.parametrize(
    "name", ["../settings.yaml", "/etc/passwd", "templates/../../x.html", "a/b.yaml", "x.txt"]
)
def test_names_outside_the_rules_folder_are_refused(
    client: TestClient, name: str, tmp_path: Path
) -> None:
    assert client.get("/tp/admin/rules/edit", params={"file": name}).status_code == 404
    token = csrf_of(client.get("/tp/admin/rules").text)
    posted = client.post(
        "/tp/admin/rules/edit",
        params={"file": name},
        data={"csrf": token, "text": "campaign: x", "version": "", "action": "save"},
    )
    assert posted.status_code == 404
    answer = client.post(
        "/tp/admin/rules/validate",
        json={"text": "x", "path": name},
        headers={"X-CSRF-Token": token},
    )
    assert answer.status_code == 404
    assert not (tmp_path / "x.html").exists() and not (tmp_path / "settings.yaml").exists()


def test_the_history_lists_versions_and_restores_one(client: TestClient, rules_dir: Path) -> None:
    original = (rules_dir / FILE).read_text()
    fields = form_of(client)
    client.post(f"/tp/admin/rules/edit?file={FILE}", data=fields)  # #1: as it was
    changed = form_of(client)
    changed["text"] = changed["text"].replace("priority: 10", "priority: 11")
    client.post(f"/tp/admin/rules/edit?file={FILE}", data=changed)  # #2
    history = client.get(f"/tp/admin/rules/history?file={FILE}")
    assert "<td>ana</td>" in history.text and "Restore #1" in history.text
    old = client.get(f"/tp/admin/rules/revision?file={FILE}&id=2")
    assert "Saved by ana" in old.text and "priority: 10" in old.text
    version = re.findall(r'name="version" value="([^"]*)"', history.text)[0]
    restored = client.post(
        "/tp/admin/rules/restore",
        data={"csrf": fields["csrf"], "file": FILE, "id": "1", "version": version},
        follow_redirects=False,
    )
    assert restored.status_code == 303
    assert (rules_dir / FILE).read_text() == original
    assert "restore of #1" in client.get(f"/tp/admin/rules/history?file={FILE}").text
    stale = client.post(
        "/tp/admin/rules/restore",
        data={"csrf": fields["csrf"], "file": FILE, "id": "2", "version": version},
    )
    assert stale.status_code == 409 and "Not restored" in stale.text


def test_a_new_campaign_file_starts_from_a_skeleton(client: TestClient, rules_dir: Path) -> None:
    token = csrf_of(client.get("/tp/admin/rules/new").text)
    bad = client.post(
        "/tp/admin/rules/new", data={"csrf": token, "kind": "campaign", "name": "A b"}
    )
    assert bad.status_code == 400 and 'aria-invalid="true"' in bad.text
    taken = client.post(
        "/tp/admin/rules/new",
        data={"csrf": token, "kind": "campaign", "name": "first-order-coupon"},
    )
    assert "exists already" in taken.text
    made = client.post(
        "/tp/admin/rules/new",
        data={"csrf": token, "kind": "campaign", "name": "spring"},
        follow_redirects=False,
    )
    assert made.headers["location"] == "/tp/admin/rules/edit?file=spring.yaml"
    fields = form_of(client, "spring.yaml")
    assert fields["version"] == "" and "campaign: spring" in fields["text"]
    unfinished = client.post("/tp/admin/rules/edit?file=spring.yaml", data=fields)
    assert unfinished.status_code == 422 and "spring.yaml:" in unfinished.text
    assert not (rules_dir / "spring.yaml").exists()
    fields["text"] = fields["text"].replace(
        "  - id: holdout", "  - {id: a, weight: 1, template: ebook.html}\n  - id: holdout"
    )
    saved = client.post(
        "/tp/admin/rules/edit?file=spring.yaml", data=fields, follow_redirects=False
    )
    assert saved.status_code == 303
    assert "campaign: spring" in (rules_dir / "spring.yaml").read_text()


def test_the_schema_is_served_per_kind(client: TestClient) -> None:
    answer = client.get("/tp/admin/rules/schema/campaign.json")
    assert answer.status_code == 200
    assert answer.json()["title"].startswith("Touchpoint")
    assert "trigger" in answer.json()["properties"]
    assert client.get("/tp/admin/rules/schema/coupons.json").status_code == 200
    assert client.get("/tp/admin/rules/schema/nope.json").status_code == 404


def test_simulating_the_changed_text_before_saving(client: TestClient, rules_dir: Path) -> None:
    fields = form_of(client)
    fields["text"] = fields["text"].replace('"/demo/products/*", ', "")
    before = (rules_dir / FILE).read_text()
    answer = client.post(
        f"/tp/admin/rules/edit?file={FILE}",
        data={**fields, "action": "simulate", "url": "/demo/products/trail-runner.html"},
    )
    assert answer.status_code == 200
    assert "not chosen: audience: page.path is /demo/category/*" in html.unescape(answer.text)
    assert "?tp_preview=" in answer.text  # the preview link of the campaign served
    assert (rules_dir / FILE).read_text() == before  # nothing written
