"""Identification: e-mail normalisation, keyed hashes, merging an anonymous history into a known
profile, second devices, shared computers and logout (POST /tp/v1/identify, /tp/v1/reset)."""

from __future__ import annotations

import dataclasses
import hmac
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient
from touchpoint import store
from touchpoint.app import create_app
from touchpoint.errors import RequestError
from touchpoint.profiles import identity
from touchpoint.profiles.model import merge
from touchpoint.profiles.rules import ProfileRules
from touchpoint.settings import Settings
from touchpoint.store import eventlog
from touchpoint.store.records import Identity, Profile, Touch

from ..conftest import ROOT
from ..web.test_decide import decide

ALL = ["marketing", "measurement", "personalisation"]
RUNNING = "/demo/category/running.html"

RULES = ProfileRules()  # the built-in stages, no points


@pytest.fixture
def site_rules(rules_dir: Path) -> Path:
    shutil.copy(ROOT / "rules" / "site.yaml", rules_dir)  # interests: running, hiking
    return rules_dir


SECRET = "the-shops-identity-secret"


def make_settings(tmp_path: Path, rules_dir: Path, **extra: Any) -> Settings:
    return Settings.load(
        {
            "data_dir": str(tmp_path / "data"),
            "rules_dir": str(rules_dir),
            "identity_secret": SECRET,
            **extra,
        },
        environ={},
    )


def signed(secret: str = SECRET, expires: int | None = None, **who: str) -> dict[str, Any]:
    """``who`` as a logged-in customer's page passes it: signed by the shop's backend, as
    docs/security.md shows (HMAC-SHA256 of the email, the customer id and the expiry)."""
    expires = int(time.time()) + 600 if expires is None else expires
    message = (
        f"touchpoint-identity\n{who.get('email', '')}\n{who.get('customer_id', '')}\n{expires}"
    )
    signature = hmac.new(secret.encode(), message.encode(), "sha256").hexdigest()
    return {**who, "verification": {"expires": expires, "signature": signature}}


def vouched(who: Identity) -> Identity:
    return dataclasses.replace(who, verified=True)


@pytest.fixture
def app(tmp_path: Path, site_rules: Path):  # type: ignore[no-untyped-def]
    return create_app(make_settings(tmp_path, site_rules))


@pytest.fixture
def device_a(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as client:
        yield client


@pytest.fixture
def device_b(app, device_a) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    # Another browser: its own cookie jar, the same server (the app is already started).
    client = TestClient(app)
    yield client


def visitor_id(client: TestClient) -> str:
    tp = client.app.state.tp  # type: ignore[attr-defined]
    vid = tp.recognizer.read(client.cookies.get("tp_vid"))
    assert vid
    return str(vid)


def record(client: TestClient, vid: str | None = None):  # type: ignore[no-untyped-def]
    tp = client.app.state.tp  # type: ignore[attr-defined]
    return tp.reader.visitor(vid or visitor_id(client))


def grant(client: TestClient, granted: list[str] = ALL) -> None:
    assert client.post("/tp/v1/consent", json={"granted": granted}).status_code == 200


def identify(client: TestClient, **who: Any):  # type: ignore[no-untyped-def]
    return client.post("/tp/v1/identify", json=who)


def count(client: TestClient, table: str) -> int:
    return int(client.app.state.tp.reader.count(table))  # type: ignore[attr-defined]


# --- normalisation and hashing ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("  Ada@Example.COM ", "ada@example.com"),
        ("first.last+news@gmail.com", "first.last+news@gmail.com"),  # dots and tags are kept
        ("jörg@Bücher.example", "jörg@xn--bcher-kva.example"),
        ("a@b.example.", "a@b.example"),
    ],
)
def test_email_normalisation(raw: str, normal: str) -> None:
    assert identity.normalise_email(raw) == normal


@pytest.mark.parametrize(
    "raw", ["", "ada", "@example.com", "ada@", "ada@localhost", "a b@example.com", "a@-x.com"]
)
def test_invalid_emails_are_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        identity.normalise_email(raw)


def test_hashes_are_keyed_and_kind_prefixed() -> None:
    key = identity.identity_key("k" * 40)
    email = identity.identifier_hash(key, "email", "ada@example.com")
    assert email != identity.identifier_hash(
        identity.identity_key("x" * 40), "email", "ada@example.com"
    )
    assert email != identity.identifier_hash(key, "customer", "ada@example.com")
    assert len(email) == 64 and "ada" not in email


@given(
    st.builds(
        Profile,
        visits=st.integers(0, 9),
        page_views=st.integers(0, 99),
        first_seen_at=st.none() | st.integers(0, 10**6),
        interests=st.dictionaries(st.sampled_from("abc"), st.integers(1, 5)),
    ),
    st.builds(
        Profile,
        visits=st.integers(0, 9),
        page_views=st.integers(0, 99),
        first_seen_at=st.none() | st.integers(0, 10**6),
        interests=st.dictionaries(st.sampled_from("abc"), st.integers(1, 5)),
    ),
)
def test_merge_sums_counts_and_keeps_the_earliest_first_visit(
    known: Profile, anon: Profile
) -> None:
    merged = merge(known, anon)
    assert merged.visits == known.visits + anon.visits
    assert merged.page_views == known.page_views + anon.page_views
    assert sum(merged.interests.values()) == sum(known.interests.values()) + sum(
        anon.interests.values()
    )
    firsts = [t for t in (known.first_seen_at, anon.first_seen_at) if t is not None]
    assert merged.first_seen_at == (min(firsts) if firsts else None)
    assert merged.identified


def test_merge_keeps_the_earlier_first_touch_and_the_known_attributes() -> None:
    known = Profile(
        first_seen_at=100,
        last_seen_at=200,
        stage="customer",
        score=40,
        first_touch=Touch("social", "facebook.com"),
        attributes={"plan": "pro", "tier": "gold"},
    )
    anon = Profile(
        first_seen_at=50,
        last_seen_at=300,
        stage="lead",
        score=5,
        first_touch=Touch("search", "google.com"),
        attributes={"plan": "free", "x": 1},
    )
    merged = merge(known, anon)
    assert merged.first_touch == Touch("search", "google.com")
    assert merged.attributes == {"plan": "pro", "tier": "gold", "x": 1}
    assert (merged.stage, merged.score) == ("customer", 45)
    assert merge(Profile(stage="visitor"), Profile(stage="lead")).stage == "lead"


# --- over HTTP --------------------------------------------------------------------------------


def test_identify_needs_the_personalisation_consent(device_a: TestClient) -> None:
    response = identify(device_a, email="ada@example.com")
    assert response.status_code == 202
    assert response.json() == {"identified": False, "reason": "no consent"}
    grant(device_a, ["marketing", "measurement"])
    assert identify(device_a, email="ada@example.com").json()["identified"] is False
    assert count(device_a, "identities") == 0


def test_identify_validates_its_body(device_a: TestClient) -> None:
    grant(device_a)
    assert identify(device_a).status_code == 400
    response = identify(device_a, email="not an address")
    assert response.status_code == 422
    assert response.json()["error"].startswith("email:")
    assert device_a.post("/tp/v1/identify", json={"email": 5}).status_code == 400
    cross = device_a.post(
        "/tp/v1/identify", json={"email": "a@b.example"}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert cross.status_code == 403
    assert count(device_a, "identities") == 0


def test_identify_stores_hashes_and_the_first_name_by_default(device_a: TestClient) -> None:
    grant(device_a)
    response = identify(device_a, email="Ada@Example.com", customer_id="C-1", first_name="Ada")
    assert response.status_code == 200
    assert response.json() == {"identified": True, "merged": False}
    assert "set-cookie" not in response.headers  # the same visitor: the cookie stays
    profile = record(device_a).profile
    assert (profile.identified, profile.first_name) == (True, "Ada")
    rows = device_a.app.state.tp.reader.rows(  # type: ignore[attr-defined]
        "SELECT kind, hash, value FROM identities ORDER BY kind", ()
    )
    assert [r["kind"] for r in rows] == ["customer", "email"]
    # Nothing in clear: the value column empty, the hash a keyed SHA-256 in hex (checking it for
    # "ada" failed whenever a digest happened to hold those three hex digits).
    assert all(r["value"] is None and re.fullmatch("[0-9a-f]{64}", r["hash"]) for r in rows)


@pytest.mark.parametrize(
    ("depth", "first_name", "clear"),
    [
        ("minimal", None, None),
        ("full", "Ada", "ada@example.com"),
    ],
)
def test_data_depth_decides_what_is_kept_in_clear(  # type: ignore[no-untyped-def]
    tmp_path, site_rules, depth, first_name, clear
) -> None:
    with TestClient(create_app(make_settings(tmp_path, site_rules, data_depth=depth))) as client:
        grant(client)
        identify(client, email="ada@example.com", first_name="Ada")
        assert record(client).profile.first_name == first_name
        reader = client.app.state.tp.reader  # type: ignore[attr-defined]
        rows = reader.rows("SELECT value FROM identities", ())
        assert rows == [{"value": clear}]


def test_second_device_joins_the_same_profile_with_its_history(
    device_a: TestClient, device_b: TestClient
) -> None:
    grant(device_a)
    decide(device_a)
    identify(device_a, **signed(email="ada@example.com", first_name="Ada"))
    known = visitor_id(device_a)
    # On the phone: anonymous browsing first, a popup closed, then the newsletter signup.
    grant(device_b)
    decide(device_b, RUNNING)
    decide(device_b, RUNNING)
    anonymous = visitor_id(device_b)
    device_b.post(
        "/tp/v1/events",
        json={
            "events": [
                {"type": "impression", "campaign": "first-order-coupon", "variant": "ten-percent"},
                {"type": "close", "campaign": "first-order-coupon", "variant": "ten-percent"},
            ]
        },
    )
    response = identify(device_b, **signed(email="  ADA@example.com"))
    assert response.json() == {"identified": True, "merged": True}
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Max-Age=" in cookie
    assert visitor_id(device_b) == known  # the phone now carries the known profile's cookie
    merged = record(device_b)
    assert merged.profile.page_views == 3  # 1 on the laptop + 2 on the phone
    assert merged.profile.interests == {"running": 3}  # the trail runner page is "running" too
    assert merged.profile.first_name == "Ada"
    state = merged.campaigns["first-order-coupon"]
    assert state.impressions == 1 and state.last_closed_at is not None
    events = device_b.app.state.tp.reader.events(known)  # type: ignore[attr-defined]
    assert [e["type"] for e in events if e["campaign"]] == ["impression", "close"]
    assert [e["type"] for e in events].count("page_view") == 3
    assert record(device_b, anonymous) is None  # merged away
    assert count(device_b, "merges") == 1
    # The closed popup stays closed on the laptop too: the history is the person's.
    assert decide(device_a).json()["popups"] == []


def test_the_surviving_profile_takes_this_browsers_consent(
    device_a: TestClient, device_b: TestClient
) -> None:
    grant(device_a)
    identify(device_a, **signed(email="ada@example.com"))
    known = visitor_id(device_a)
    grant(device_b, ["personalisation"])
    identify(device_b, **signed(email="ada@example.com"))
    assert record(device_b).consent_granted == {"personalisation"}
    log = device_b.app.state.tp.reader.consent_log(known)  # type: ignore[attr-defined]
    assert log[-1]["method"] == "identify"
    assert log[-1]["granted"] == '["personalisation"]'


def test_a_shared_computer_does_not_merge_two_people(device_a: TestClient) -> None:
    grant(device_a)
    identify(device_a, email="ada@example.com")
    ada = visitor_id(device_a)
    decide(device_a)
    # Grace logs in on the same browser without Ada logging out first.
    response = identify(device_a, email="grace@example.com")
    assert response.json() == {"identified": True, "merged": False}
    grace = visitor_id(device_a)
    assert grace != ada
    assert record(device_a, grace).profile.page_views == 0  # nothing of Ada's carried over
    assert record(device_a, ada).profile.page_views == 1
    assert record(device_a, grace).consent_granted == set(ALL)


def test_a_known_browser_switches_to_another_known_person_without_merging(
    device_a: TestClient, device_b: TestClient
) -> None:
    grant(device_a)
    identify(device_a, **signed(email="ada@example.com"))
    ada = visitor_id(device_a)
    grant(device_b)
    identify(device_b, **signed(email="grace@example.com"))
    grace = visitor_id(device_b)
    decide(device_b)
    identify(device_b, **signed(email="ada@example.com"))
    assert visitor_id(device_b) == ada
    assert record(device_b, grace).profile.page_views == 1
    assert record(device_b, ada).profile.page_views == 0


def test_identifiers_of_two_people_are_refused(device_a: TestClient, device_b: TestClient) -> None:
    grant(device_a)
    identify(device_a, **signed(email="ada@example.com"))
    grant(device_b)
    identify(device_b, **signed(customer_id="C-2"))
    response = identify(device_b, **signed(email="ada@example.com", customer_id="C-2"))
    assert response.status_code == 409


def test_a_customer_id_joins_the_email_profile(device_a: TestClient) -> None:
    grant(device_a)
    identify(device_a, email="ada@example.com")
    first = visitor_id(device_a)
    identify(device_a, customer_id="C-1")
    assert visitor_id(device_a) == first
    assert count(device_a, "identities") == 2


def test_reset_gives_a_fresh_anonymous_visitor_with_the_same_consent(
    device_a: TestClient,
) -> None:
    grant(device_a, ["personalisation", "marketing"])
    identify(device_a, email="ada@example.com", first_name="Ada")
    decide(device_a)
    ada = visitor_id(device_a)
    response = device_a.post("/tp/v1/reset", json={})
    assert response.status_code == 200 and response.json() == {"reset": True}
    fresh = visitor_id(device_a)
    assert fresh != ada
    new = record(device_a)
    assert new.consent_granted == {"personalisation", "marketing"}
    assert (new.profile.identified, new.profile.page_views, new.profile.first_name) == (
        False,
        0,
        None,
    )
    assert record(device_a, ada).profile.page_views == 1  # Ada's profile is untouched
    log = device_a.app.state.tp.reader.consent_log(fresh)  # type: ignore[attr-defined]
    assert [e["method"] for e in log] == ["reset"]
    assert decide(device_a).json()["consent"]["prompt"] is False


def test_reset_without_a_visitor_does_nothing(device_a: TestClient) -> None:
    response = device_a.post("/tp/v1/reset", json={})
    assert response.json() == {"reset": False}
    assert "set-cookie" not in response.headers


def test_withdrawing_personalisation_forgets_the_identifiers(device_a: TestClient) -> None:
    grant(device_a)
    identify(device_a, email="ada@example.com")
    grant(device_a, ["marketing"])
    assert count(device_a, "identities") == 0


def test_a_visitor_merged_away_meanwhile_is_a_409_not_a_crash(tmp_path: Path) -> None:
    # Two tabs: the first identify merged the visitor away before the second one's write ran.
    path = tmp_path / "t.db"
    store.migrate(path)
    conn = store.connect(path)
    key = identity.identity_key("k" * 40)
    who = vouched(identity.parse({"email": "ada@example.com"}, key, depth="standard"))
    for vid in ("laptop", "phone"):
        store.record_consent(
            conn, vid, at=1, revision=1, granted={"personalisation"}, denied=set(), method="api"
        )
    assert store.identify(conn, "laptop", who, now=2, keep="standard", rules=RULES) == "laptop"
    assert store.identify(conn, "phone", who, now=3, keep="standard", rules=RULES) == "laptop"
    for again in (
        lambda: store.identify(conn, "phone", who, now=4, keep="standard", rules=RULES),
        lambda: store.reset_visitor(conn, "phone", now=4),
    ):
        with pytest.raises(RequestError, match="no longer exists") as raised:
            again()
        assert raised.value.status == 409


def test_merge_sums_purchases_and_keeps_what_either_profile_has_paid_out_or_fired() -> None:
    known = Profile(
        score=40,
        score_at=100,
        purchases=2,
        last_purchase_at=50,
        scoring={"once": ["first-visit"], "fired": ["warm"], "day": {"x": [1, 1]}},
    )
    anon = Profile(
        score=10,
        score_at=90,
        purchases=1,
        last_purchase_at=80,
        scoring={"once": ["social", "first-visit"], "fired": ["hot"]},
    )
    merged = merge(known, anon)
    assert (merged.score, merged.score_at) == (50, 100)
    assert (merged.purchases, merged.last_purchase_at) == (3, 80)
    assert merged.scoring == {
        "once": ["first-visit", "social"],
        "fired": ["warm", "hot"],
        "day": {"x": [1, 1]},
    }


def test_identify_merges_scores_as_they_stand_now_and_records_the_identification(
    tmp_path: Path,
) -> None:
    """The known profile's score decayed while it was away; the sum is taken at one moment."""
    from touchpoint.rules import ruleset as rules_module

    ruleset = rules_module.load(ROOT / "rules")
    db = tmp_path / "t.db"
    store.migrate(db)
    conn = store.connect(db)
    day = 86400
    for vid, score in (("known", 100.0), ("phone", 10.0)):
        store.record_consent(
            conn, vid, at=0, revision=1, granted={"personalisation"}, denied=(), method="api"
        )
        conn.execute(
            "UPDATE visitors SET score = ?, data = ? WHERE id = ?",
            (score, f'{{"score_at": {0 if vid == "known" else 67 * day}}}', vid),
        )
    who = vouched(
        identity.parse(
            {"email": "ada@example.com"}, identity.identity_key("s" * 32), depth="standard"
        )
    )
    store.identify(conn, "known", who, now=0, keep="standard", rules=ruleset.profile)
    conn.execute("UPDATE visitors SET score = 100, data = '{\"score_at\": 0}' WHERE id = 'known'")
    # 67 days later: 7 days without decay, then two half-lives of 30 days: 100 -> 25.
    now = 67 * day
    outcome = store.identify_visitor(
        conn, "phone", who, now=now, keep="standard", rules=ruleset.profile
    )
    assert outcome.visitor_id == "known" and outcome.merged_from == "phone"
    score, score_at = conn.execute(
        "SELECT score, json_extract(data, '$.score_at') FROM visitors WHERE id = 'known'"
    ).fetchone()
    assert (round(score, 6), score_at) == (35.0, now)
    types = [
        row[0]
        for row in conn.execute(
            f"SELECT type FROM events WHERE {eventlog.of_visitor()} ORDER BY id", ("known",)
        )
    ]
    assert types == ["identify", "identify"]
