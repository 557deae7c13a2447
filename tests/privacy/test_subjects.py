"""Data subject requests: export and erasure of one person across every table that names a
visitor (merged ids followed), withdrawal on the page, proof of consent, over the server API
and the CLI."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from touchpoint import cli, store
from touchpoint.api import keys as apikeys
from touchpoint.app import create_app
from touchpoint.profiles import identity
from touchpoint.rules.couponfiles import load_pools
from touchpoint.settings import Settings
from touchpoint.store import catalog, subjects

from ..conftest import ROOT
from ..profiles.test_identity import make_settings, signed

API = "/tp/v1/api"
ALL = ["marketing", "measurement", "personalisation"]
PAGE = "/demo/products/trail-runner.html"
SITE = """
interests:
  running: ["/demo/products/trail-*"]
webhooks:
  crm:
    url: http://127.0.0.1:9/hooks
    secret_env: TOUCHPOINT_TEST_UNSET_SECRET
    events: [stage.changed, visitor.identified, form.submitted]
"""


@pytest.fixture
def site_rules(rules_dir: Path) -> Path:
    # A webhook endpoint without its secret: its rows wait in the outbox, naming the visitor.
    (rules_dir / "site.yaml").write_text(SITE)
    return rules_dir


@pytest.fixture
def settings(tmp_path: Path, site_rules: Path) -> Settings:
    return make_settings(tmp_path, site_rules)


@pytest.fixture
def app(settings: Settings):  # type: ignore[no-untyped-def]
    return create_app(settings)


@pytest.fixture
def laptop(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as client:
        yield client


def browser(app) -> TestClient:  # type: ignore[no-untyped-def]
    """Another browser of the running app: its own cookies."""
    return TestClient(app)


def key(settings: Settings, *scopes: str, name: str = "dpo") -> dict[str, str]:
    token = apikeys.ApiKeys(settings.api_keys_path).create(name, list(scopes), now=1)
    return {"Authorization": f"Bearer {token}"}


def visitor_id(client: TestClient) -> str:
    tp = client.app.state.tp  # type: ignore[attr-defined]
    vid = tp.recognizer.read(client.cookies.get("tp_vid"))
    assert vid
    return str(vid)


def visit(client: TestClient, auth: dict[str, str], **who: str) -> str:
    """A scripted visit: consent, a page view with a campaign source, campaign and behaviour
    events, identification, a purchase and a newsletter open pushed by the shop. Returns the
    visitor id the browser ends up with."""
    assert (
        client.post(
            "/tp/v1/consent", json={"granted": ALL, "method": "banner-accept-all"}
        ).status_code
        == 200
    )
    page = {
        "path": PAGE,
        "query": "?utm_source=news&utm_campaign=spring",
        "referrer": "https://www.example.org/post",
    }
    context = {"category": "Running", "product": "Trail Runner"}
    assert client.post("/tp/v1/decide", json={"page": page, "context": context}).status_code == 200
    events = [
        {
            "type": "impression",
            "campaign": "first-order-coupon",
            "variant": "ten-percent",
            "path": PAGE,
        },
        {"type": "close", "campaign": "first-order-coupon", "path": PAGE},
        {"type": "dwell", "value": 40, "path": PAGE},
        {"type": "scroll", "value": 80, "path": PAGE},
        {"type": "click", "name": "size-guide", "path": PAGE},
        {"type": "custom", "name": "video", "props": {"seconds": 30}, "path": PAGE},
        {"type": "form_submit", "name": "workshop", "props": {"level": "beginner"}, "path": PAGE},
    ]
    assert client.post("/tp/v1/events", json={"events": events}).status_code == 202
    if who:
        assert client.post("/tp/v1/identify", json=who).json()["identified"] is True
    vid = visitor_id(client)
    if "email" in who:
        pushed = [
            {
                "type": "purchase",
                "email": who["email"],
                "order_id": f"O-{vid}",
                "value": 129.0,
                "currency": "EUR",
                "items": [{"sku": "TR-1", "quantity": 1}],
            },
            {"type": "newsletter_open", "email": who["email"], "name": "december"},
        ]
        response = client.post(f"{API}/events", json={"events": pushed}, headers=auth)
        assert response.status_code == 202, response.text
    return vid


def everything(path: Path | str) -> dict[str, list[tuple[Any, ...]]]:
    conn = store.connect(path)
    try:
        return {
            name: conn.execute(f'SELECT * FROM "{name}"').fetchall()
            for name in catalog.tables(conn)
        }
    finally:
        conn.close()


def naming(path: Path | str, needles: list[str]) -> list[tuple[str, tuple[Any, ...]]]:
    """Every row of every table with a column holding one of ``needles``."""
    return [
        (table, row)
        for table, rows in everything(path).items()
        for row in rows
        if any(isinstance(v, str) and any(n in v for n in needles) for v in row)
    ]


def hashes(settings: Settings, email: str, customer: str) -> list[str]:
    k = identity.identity_key(settings.resolve_secret_key())
    return [
        identity.identifier_hash(k, "email", email),
        identity.identifier_hash(k, "customer", customer),
    ]


@pytest.fixture
def people(app, laptop: TestClient, settings: Settings) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Ada on her laptop, then on her phone (its anonymous history merged into the laptop's
    profile), and Bob, who did the same things on the same pages."""
    auth = key(settings, "events:write", name="shop")
    # Ada logs in on both: the shop vouches for her (docs/security.md#verified-identity).
    ada = visit(
        laptop, auth, **signed(email="ada@example.com", customer_id="C-1"), first_name="Ada"
    )
    phone = browser(app)
    anonymous = visit(phone, auth)
    assert visit(phone, auth, **signed(email="ada@example.com")) == ada  # merged into hers
    bob = visit(browser(app), auth, email="bob@example.com", customer_id="C-2", first_name="Bob")
    return {"ada": [ada, anonymous], "bob": [bob], "phone": phone}


def ada_needles(settings: Settings, people: dict[str, Any]) -> list[str]:
    return [*people["ada"], "ada@example.com", *hashes(settings, "ada@example.com", "C-1")]


def bob_needles(settings: Settings, people: dict[str, Any]) -> list[str]:
    return [*people["bob"], "bob@example.com", *hashes(settings, "bob@example.com", "C-2")]


# --- export -----------------------------------------------------------------------------------


def test_export_holds_every_row_naming_the_person_and_nothing_of_another(
    laptop: TestClient, settings: Settings, people: dict[str, Any]
) -> None:
    auth = key(settings, "privacy:read")
    response = laptop.get(f"{API}/subjects/email:Ada@Example.com", headers=auth)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert sorted(body["visitor_ids"]) == sorted(people["ada"])
    tables = body["tables"]
    # Every row in the database naming Ada (her ids, her hashed identifiers) is in the export.
    text = json.dumps(tables)
    for table, row in naming(settings.database_url, ada_needles(settings, people)):
        assert any(str(v) in text for v in row if isinstance(v, str)), (table, row)
        assert len(tables[table]) >= 1
    # Nothing of Bob's, although he saw the same campaign on the same page.
    assert not any(needle in json.dumps(body) for needle in bob_needles(settings, people))
    # What the DPO expects to find, table by table.
    assert [row["id"] for row in tables["visitors"]] == [people["ada"][0]]
    assert tables["visitors"][0]["data"]["first_name"] == "Ada"
    assert {row["kind"] for row in tables["identities"]} == {"email", "customer"}
    assert all(row["value"] is None for row in tables["identities"])  # standard: hashes only
    assert tables["merges"] == [
        {
            "id": 1,
            "from_id": people["ada"][1],
            "into_id": people["ada"][0],
            "at": tables["merges"][0]["at"],
        }
    ]
    types = [event["type"] for event in tables["events"]]
    # The laptop visit, and the phone visit before and after identifying.
    assert types.count("page_view") == 3 and types.count("form_submit") == 3
    assert {"purchase", "newsletter_open", "identify", "impression"} <= set(types)
    assert {row["visitor_id"] for row in tables["consent_log"]} == set(people["ada"])
    assert [row["order_id"] for row in tables["orders"]] == [f"O-{people['ada'][0]}"]
    assert tables["campaign_state"][0]["campaign"] == "first-order-coupon"
    assert tables["stage_history"][0]["after"] == "lead"
    assert {row["event"] for row in tables["webhook_outbox"]} >= {"visitor.identified"}
    assert tables["webhook_outbox"][0]["body"]["data"]["visitor_id"] == people["ada"][0]


def test_export_finds_the_person_by_a_merged_visitor_id_or_customer_id(
    laptop: TestClient, settings: Settings, people: dict[str, Any]
) -> None:
    auth = key(settings, "privacy:read")
    by_email = laptop.get(f"{API}/subjects/email:ada@example.com", headers=auth).json()
    for ref in (people["ada"][1], people["ada"][0], "customer:C-1"):
        body = laptop.get(f"{API}/subjects/{ref}", headers=auth).json()
        assert body["tables"] == by_email["tables"], ref


def test_export_of_nobody_is_404(laptop: TestClient, settings: Settings) -> None:
    auth = key(settings, "privacy:read")
    response = laptop.get(f"{API}/subjects/email:nobody@example.com", headers=auth)
    assert response.status_code == 404
    assert response.json()["detail"] == "nothing is stored about this reference"
    assert laptop.get(f"{API}/subjects/email:not-an-address", headers=auth).status_code == 422


# --- erasure ----------------------------------------------------------------------------------


def test_erasure_leaves_no_row_naming_the_person_and_the_other_untouched(
    laptop: TestClient, settings: Settings, people: dict[str, Any]
) -> None:
    path = settings.database_path
    reader = key(settings, "privacy:read", name="reader")
    bob_before = laptop.get(f"{API}/subjects/{people['bob'][0]}", headers=reader).json()
    consent_rows = len(everything(path)["consent_log"])
    response = laptop.delete(
        f"{API}/subjects/email:ada@example.com", headers=key(settings, "privacy:erase")
    )
    assert response.status_code == 200, response.text
    erased = response.json()
    assert erased["deleted"]["visitors"] == 1 and erased["deleted"]["merges"] == 1
    assert erased["deleted"]["events"] > 10 and erased["deleted"]["webhook_outbox"] >= 1
    assert {"identities", "orders", "campaign_state", "stage_history"} <= set(erased["deleted"])
    assert naming(path, ada_needles(settings, people)) == []
    # The consent log keeps every entry (proof of consent), Ada's under one pseudonym.
    k = identity.identity_key(settings.resolve_secret_key())
    pseudonym = store.erased_id(k, people["ada"][0])
    log = everything(path)["consent_log"]
    assert len(log) == consent_rows
    assert sum(row[1] == pseudonym for row in log) == erased["pseudonymised"]["consent_log"] >= 3
    # The erasure record: when, how, how many, and the same pseudonym.
    (record,) = everything(path)["erasures"]
    assert record[1:5] == (erased["at"], "api", "dpo", pseudonym)
    kept = ("deleted", "pseudonymised", "anonymised")
    assert json.loads(record[5]) == {name: erased[name] for name in kept}
    # Bob is exactly as he was.
    bob_after = laptop.get(f"{API}/subjects/{people['bob'][0]}", headers=reader).json()
    assert bob_after["tables"] == bob_before["tables"]
    # Ada's browsers are strangers now: the next page view expires their cookies.
    response = laptop.post("/tp/v1/decide", json={"page": {"path": PAGE}})
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert response.json()["consent"]["prompt"] is True


def test_erasure_is_idempotent(
    laptop: TestClient, settings: Settings, people: dict[str, Any]
) -> None:
    auth = key(settings, "privacy:erase")
    assert laptop.delete(f"{API}/subjects/{people['ada'][1]}", headers=auth).status_code == 200
    before = everything(settings.database_url)
    second = laptop.delete(f"{API}/subjects/{people['ada'][1]}", headers=auth)
    assert second.status_code == 404
    assert laptop.delete(f"{API}/subjects/customer:C-1", headers=auth).status_code == 404
    assert everything(settings.database_url) == before


def test_every_table_with_a_visitor_id_column_is_exported_and_erased(
    laptop: TestClient, settings: Settings, people: dict[str, Any]
) -> None:
    # A table added later (say by a new feature) is found from the schema.
    conn = store.connect(settings.database_url)
    conn.execute("CREATE TABLE loyalty (visitor_id TEXT, points INTEGER)")
    conn.executemany(
        "INSERT INTO loyalty VALUES (?, ?)", [(people["ada"][1], 10), (people["bob"][0], 20)]
    )
    conn.close()
    auth = key(settings, "privacy:read", "privacy:erase")
    body = laptop.get(f"{API}/subjects/email:ada@example.com", headers=auth).json()
    assert body["tables"]["loyalty"] == [{"visitor_id": people["ada"][1], "points": 10}]
    erased = laptop.delete(f"{API}/subjects/email:ada@example.com", headers=auth).json()
    assert erased["deleted"]["loyalty"] == 1
    assert everything(settings.database_url)["loyalty"] == [(people["bob"][0], 20)]


def test_erasure_keeps_coupon_codes_and_redemptions_naming_nobody(
    laptop: TestClient, settings: Settings, people: dict[str, Any]
) -> None:
    pools, problems = load_pools(ROOT / "rules")
    assert not [p for p in problems if p.severity != "warning"]
    ada, bob = people["ada"][0], people["bob"][0]
    conn = store.connect(settings.database_url)
    now = int(time.time())
    claim = store.claim_coupon(
        conn, pools["welcome"], ada, "first-order-coupon", "ten-percent", now
    )
    assert claim is not None
    store.claim_coupon(conn, pools["cart5"], ada, "cart-coupon", None, now)
    store.claim_coupon(conn, pools["welcome"], bob, "first-order-coupon", "ten-percent", now)
    store.redeem_coupon(conn, pools, claim.code, "O-77", 50.0, "EUR", now)
    auth = key(settings, "privacy:read", "privacy:erase")
    tables = laptop.get(f"{API}/subjects/{ada}", headers=auth).json()["tables"]
    assert [row["code"] for row in tables["coupon_codes"]] == [claim.code]
    assert [row["code"] for row in tables["coupon_reveals"]] == ["CART5-OFF"]
    assert [row["order_id"] for row in tables["coupon_redemptions"]] == ["O-77"]
    erased = laptop.delete(f"{API}/subjects/{ada}", headers=auth).json()
    assert erased["anonymised"] == {"coupon_codes": 1, "coupon_redemptions": 1}
    assert erased["deleted"]["coupon_reveals"] == 1
    assert naming(settings.database_url, ada_needles(settings, people)) == []
    # Ada's code stays taken and redeemed: nobody else gets it, nobody redeems it again.
    assert conn.execute(
        "SELECT visitor_id, assigned_at IS NOT NULL FROM coupon_codes WHERE code = ?", (claim.code,)
    ).fetchone() == (None, 1)
    with pytest.raises(store.CouponRedeemed):
        store.redeem_coupon(conn, pools, claim.code, "O-78", 50.0, "EUR", now)
    assert conn.execute(
        "SELECT count(*) FROM coupon_codes WHERE visitor_id = ?", (bob,)
    ).fetchone() == (1,)
    conn.close()


def test_every_table_naming_a_visitor_is_known_to_erasure(settings: Settings) -> None:
    """A table naming a visitor in a column not called visitor_id (or, by the visitor's
    number, visitor in a table of subjects.BY_NUMBER) would escape erasure."""
    store.migrate(settings.database_url)
    conn = store.connect(settings.database_url)
    columns = {
        (table, column)
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        for (column,) in conn.execute("SELECT name FROM pragma_table_info(?)", (table,))
    }
    conn.close()
    naming_otherwise = {
        (t, c)
        for t, c in columns
        if "visitor" in c or c.endswith(("from_id", "into_id")) or (t, c) == ("visitors", "id")
    } - {(t, "visitor_id") for t, _ in columns}
    by_number = {(t, "visitor") for t in subjects.BY_NUMBER}
    assert naming_otherwise == {
        ("visitors", "id"),
        ("merges", "from_id"),
        ("merges", "into_id"),
        *by_number,
    }


def test_a_write_queued_for_an_erased_visitor_stores_nothing(
    laptop: TestClient, settings: Settings, people: dict[str, Any]
) -> None:
    conn = store.connect(settings.database_url)
    k = identity.identity_key(settings.resolve_secret_key())
    assert store.erase(conn, ("id", people["ada"][0]), key=k, at=1, via="cli")
    event = store.Event("impression", "first-order-coupon", "ten-percent", PAGE)
    assert store.record_events(conn, people["ada"][0], [event], at=2, visit_start=0) == 0
    conn.close()
    assert naming(settings.database_url, people["ada"]) == []


def test_the_consent_log_is_append_only_but_for_one_pseudonymisation(
    settings: Settings, tmp_path: Path
) -> None:
    store.migrate(settings.database_url)
    conn = store.connect(settings.database_url)
    store.record_consent(conn, "v1", at=1, revision=1, granted=ALL, denied=[], method="api")
    for sql in (
        "UPDATE consent_log SET granted = '[]'",
        "UPDATE consent_log SET visitor_id = 'v2'",
        "UPDATE consent_log SET visitor_id = 'erased:x', method = 'tcf'",
    ):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(sql)
    conn.execute("UPDATE consent_log SET visitor_id = 'erased:x'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE consent_log SET visitor_id = 'erased:y'")
    conn.close()


# --- withdrawal on the page -------------------------------------------------------------------


def test_withdrawing_every_category_on_the_page_erases_the_visitor(
    laptop: TestClient, settings: Settings, people: dict[str, Any]
) -> None:
    phone: TestClient = people["phone"]  # Ada's phone, holding a cookie for her profile
    response = phone.post("/tp/v1/consent", json={"granted": [], "method": "banner-custom"})
    assert response.status_code == 200
    assert "tp_vid" not in phone.cookies
    assert naming(settings.database_url, ada_needles(settings, people)) == []
    k = identity.identity_key(settings.resolve_secret_key())
    pseudonym = store.erased_id(k, people["ada"][0])
    log = [row for row in everything(settings.database_url)["consent_log"] if row[1] == pseudonym]
    assert log[-1][4:] == ("[]", '["marketing", "measurement", "personalisation"]', "banner-custom")
    (record,) = everything(settings.database_url)["erasures"]
    assert record[2:5] == ("page", None, pseudonym)
    # Bob's profile is untouched, and the proof of Ada's consent is still there for her id.
    assert naming(settings.database_url, people["bob"]) != []
    proof = laptop.get(
        f"{API}/subjects/{people['ada'][0]}/consent", headers=key(settings, "privacy:read")
    ).json()
    assert [e["method"] for e in proof["entries"]][-1] == "banner-custom"
    assert proof["erasures"] == [{"at": record[1], "via": "page"}]


def test_withdrawing_some_categories_drops_what_they_allowed(
    laptop: TestClient, settings: Settings
) -> None:
    auth = key(settings, "events:write", name="shop")
    vid = visit(laptop, auth)
    kinds = "SELECT campaign IS NOT NULL, count(*) FROM events GROUP BY 1 ORDER BY 1"
    conn = store.connect(settings.database_url)
    assert conn.execute(kinds).fetchall() == [(0, 6), (1, 2)]  # behaviour, campaign events
    laptop.post("/tp/v1/consent", json={"granted": ["marketing"]})
    assert conn.execute(kinds).fetchall() == [(1, 2)]
    laptop.post("/tp/v1/consent", json={"granted": ["measurement"]})
    assert conn.execute(kinds).fetchall() == []
    assert conn.execute("SELECT count(*) FROM campaign_state").fetchone() == (0,)
    assert store.visitor_exists(conn, vid) and everything(settings.database_url)["erasures"] == []
    conn.close()


def test_a_refusal_from_a_new_visitor_erases_nothing(
    laptop: TestClient, settings: Settings
) -> None:
    laptop.post("/tp/v1/consent", json={"granted": [], "method": "banner-reject-all"})
    tables = everything(settings.database_url)
    assert len(tables["consent_log"]) == 1 and tables["erasures"] == []


# --- proof of consent -------------------------------------------------------------------------


def test_consent_log_of_one_person_and_the_summary(
    app, laptop: TestClient, settings: Settings, people: dict[str, Any]
) -> None:  # type: ignore[no-untyped-def]
    auth = key(settings, "privacy:read")
    log = laptop.get(f"{API}/subjects/email:ada@example.com/consent", headers=auth).json()
    methods = [entry["method"] for entry in log["entries"]]
    # The laptop's answer; the phone's two, and their copy when it joined Ada's profile.
    assert methods == ["banner-accept-all"] * 3 + ["identify"]
    assert log["entries"][0]["granted"] == ALL and log["erasures"] == []
    other = browser(app)
    other.post("/tp/v1/consent", json={"granted": [], "method": "banner-reject-all"})
    other.post("/tp/v1/consent", json={"granted": ["measurement"], "method": "banner-custom"})
    summary = laptop.get(f"{API}/consent/summary", headers=auth).json()
    assert summary == {
        "revisions": [
            {
                "revision": 1,
                "accepted": 4,
                "rejected": 1,
                "customised": 1,
                "granted": {"measurement": 5, "personalisation": 4, "marketing": 4},
                "methods": {
                    "banner-accept-all": {"accepted": 4, "rejected": 0, "customised": 0},
                    "banner-custom": {"accepted": 0, "rejected": 0, "customised": 1},
                    "banner-reject-all": {"accepted": 0, "rejected": 1, "customised": 0},
                },
            }
        ]
    }
    later = laptop.get(f"{API}/consent/summary?since=4102444800", headers=auth).json()
    assert later == {"revisions": []}
    assert laptop.get(f"{API}/consent/summary?since=yesterday", headers=auth).status_code == 400


# --- keys and scopes --------------------------------------------------------------------------


def test_subject_requests_need_their_scopes(
    laptop: TestClient, settings: Settings, people: dict[str, Any]
) -> None:
    ref = f"{API}/subjects/{people['ada'][0]}"
    assert laptop.get(ref).status_code == 401
    assert laptop.delete(ref).status_code == 401
    profiles = key(settings, "profiles:read", "profiles:write", name="crm")
    for response in (
        laptop.get(ref, headers=profiles),
        laptop.delete(ref, headers=profiles),
        laptop.get(f"{ref}/consent", headers=profiles),
        laptop.get(f"{API}/consent/summary", headers=profiles),
    ):
        assert response.status_code == 403
        assert 'scope="privacy:' in response.headers["www-authenticate"]
    reader = key(settings, "privacy:read", name="reader")
    assert laptop.delete(ref, headers=reader).status_code == 403
    assert laptop.get(ref, headers=reader).status_code == 200


# --- the CLI ----------------------------------------------------------------------------------


def run(settings: Settings, *args: str) -> int:
    return cli.main([*args, "--data-dir", settings.data_dir])


def test_cli_export_to_a_private_file(
    settings: Settings, people: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ada.json"
    assert run(settings, "export", "--email", "ada@example.com", "-o", str(out)) == 0
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    exported = json.loads(out.read_text())
    assert sorted(exported["visitor_ids"]) == sorted(people["ada"])
    assert "written to" in capsys.readouterr().err
    assert run(settings, "export", "--customer-id", "C-1") == 0
    assert json.loads(capsys.readouterr().out)["tables"] == exported["tables"]
    assert run(settings, "export", "--visitor", "nobody") == 1
    assert "nothing is stored" in capsys.readouterr().err


@pytest.mark.usefixtures("people")
def test_cli_takes_a_visitor_id_that_starts_with_a_dash(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """Visitor ids are URL-safe base64: one in 64 starts with "-", which is still an id (it
    was "expected one argument" from argparse)."""
    dashed = "-fXt6M9L2m4ELyWtUdy_zg"
    assert run(settings, "export", "--visitor", dashed) == 1
    assert "nothing is stored" in capsys.readouterr().err


def test_cli_erase_asks_first(
    settings: Settings,
    people: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    assert run(settings, "erase", "--email", "ada@example.com") == 1
    assert "nothing erased" in capsys.readouterr().err
    assert naming(settings.database_url, people["ada"]) != []
    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    assert run(settings, "erase", "--visitor", people["ada"][1]) == 0
    out = capsys.readouterr().out
    assert "erased (record #1): " in out and "visitors 1" in out
    assert "kept as proof of consent under a pseudonym: consent_log 4" in out
    assert naming(settings.database_url, ada_needles(settings, people)) == []
    assert run(settings, "erase", "--email", "ada@example.com", "--yes") == 0
    assert "nothing to erase" in capsys.readouterr().out
    (record,) = everything(settings.database_url)["erasures"]
    assert record[2:4] == ("cli", None)


def test_cli_consent_log_and_summary(
    settings: Settings, people: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(settings, "consent", "log", "--email", "bob@example.com") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["time", "(UTC)", "revision", "method", "granted", "visitor"]
    assert "banner-accept-all" in lines[1] and "marketing, measurement, personalisation" in lines[1]
    assert run(settings, "erase", "--visitor", people["bob"][0], "--yes") == 0
    capsys.readouterr()
    assert run(settings, "consent", "log", "--visitor", people["bob"][0], "--json") == 0
    proof = json.loads(capsys.readouterr().out)
    assert all(e["visitor_id"].startswith("erased:") for e in proof["entries"])
    assert [e["via"] for e in proof["erasures"]] == ["cli"]
    assert run(settings, "consent", "log", "--visitor", people["bob"][0]) == 0
    assert "(erased)" in capsys.readouterr().out
    assert run(settings, "consent", "log", "--email", "bob@example.com") == 1
    assert run(settings, "consent", "summary") == 0
    table = capsys.readouterr().out
    assert "banner-accept-all" in table and "granted: measurement 4" in table
    assert run(settings, "consent", "summary", "--json", "--since", "2100-01-01") == 0
    assert json.loads(capsys.readouterr().out) == {"revisions": []}
    assert run(settings, "consent", "summary", "--until", "soon") == 1
    assert "--until" in capsys.readouterr().err


def test_cli_without_a_database_or_key(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(settings, "export", "--visitor", "x") == 1
    assert "no database at" in capsys.readouterr().err
    store.migrate(settings.database_url)
    assert run(settings, "erase", "--email", "ada@example.com") == 1
    assert "no secret key" in capsys.readouterr().err
    assert not (Path(settings.data_dir) / "secret.key").exists()  # none made up


# --- no copy left in the files -----------------------------------------------------------------


def database_files(path: Path) -> bytes:
    """The bytes of the database file, its -wal and its -shm, as they are on disk now."""
    return b"".join(
        p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()
    )


def zelda(app, settings: Settings) -> list[str]:  # type: ignore[no-untyped-def]
    """A visitor whose every value is unique: her id, e-mail, hashes, first name, event props."""
    client = browser(app)
    assert client.post("/tp/v1/consent", json={"granted": ALL}).status_code == 200
    client.post("/tp/v1/decide", json={"page": {"path": PAGE}})
    events = [{"type": "custom", "name": "quiz", "props": {"answer": "zq-unique-answer"}}]
    assert client.post("/tp/v1/events", json={"events": events}).status_code == 202
    who = {"email": "zelda.quux@example.com", "customer_id": "ZQ-77", "first_name": "Quuxine"}
    assert client.post("/tp/v1/identify", json=who).json()["identified"] is True
    vid = visitor_id(client)
    return [
        vid,
        "zelda.quux@example.com",
        "Quuxine",
        "zq-unique-answer",
        *hashes(settings, "zelda.quux@example.com", "ZQ-77"),
    ]


@pytest.mark.parametrize("via", ["api", "cli"])
def test_an_erasure_leaves_no_copy_in_any_database_file(
    tmp_path: Path, site_rules: Path, via: str
) -> None:
    """Issue 15: right after an erasure the -wal still held the e-mail, the visitor ids, the
    event properties and the first name. Now no file of the database holds any of them, while
    the server (its reader and writer) is still running."""
    settings = make_settings(tmp_path, site_rules, data_depth="full")
    app = create_app(settings)
    with TestClient(app) as running:
        needles = zelda(app, settings)
        files = database_files(settings.database_path)
        assert all(n.encode() in files for n in needles[:4]), "the values were stored"
        if via == "api":
            auth = key(settings, "privacy:erase")
            response = running.delete(f"{API}/subjects/email:zelda.quux@example.com", headers=auth)
            assert response.status_code == 200, response.text
        else:
            assert run(settings, "erase", "--email", "zelda.quux@example.com", "--yes") == 0
        files = database_files(settings.database_path)
        assert [n for n in needles if n.encode() in files] == []
        # The server goes on working after the checkpoint.
        assert running.post("/tp/v1/decide", json={"page": {"path": PAGE}}).status_code == 200
