"""Coupon codes in the store: claims (idempotent, one code per visitor, across processes),
low stock, redemptions, imports, merges."""

from __future__ import annotations

import dataclasses
import multiprocessing
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from touchpoint import store
from touchpoint.coupons.pools import Pool, Pools
from touchpoint.profiles import identity
from touchpoint.profiles.rules import ProfileRules

T = TypeVar("T")
NOW = 1_800_000_000
WELCOME = Pool("welcome", "generated", pattern="WELCOME-XXXX-XXXX", valid_days=14)
SPRING = Pool("spring", "imported", low_stock=3, valid_until=NOW + 86400)
CART5 = Pool("cart5", "static", code="CART5-OFF", valid_days=7)
POOLS = Pools({p.name: p for p in (WELCOME, SPRING, CART5)})

RULES = ProfileRules()  # the built-in stages, no points


@pytest.fixture
def db(fresh_db: sqlite3.Connection) -> sqlite3.Connection:
    return fresh_db


def unit(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """``fn`` in a transaction, as the writer runs it."""
    with store.immediate(conn):
        return fn(conn)


def claim(conn: sqlite3.Connection, pool: Pool, visitor: str, now: int = NOW) -> Any:
    return unit(conn, lambda c: store.claim_coupon(c, pool, visitor, "camp", "var", now))


def stock(conn: sqlite3.Connection, pool: str, codes: list[str]) -> store.ImportReport:
    rows = list(enumerate(codes, start=1))
    return unit(conn, lambda c: store.import_codes(c, pool, rows, now=NOW))


def visitor(conn: sqlite3.Connection, vid: str, granted: str = '["marketing"]') -> None:
    conn.execute(
        "INSERT INTO visitors (id, created_at, consent_granted) VALUES (?, ?, ?)",
        (vid, NOW, granted),
    )


# --- claims -----------------------------------------------------------------------------------


def test_a_claim_is_idempotent_per_pool_and_visitor(db: sqlite3.Connection) -> None:
    stock(db, "spring", ["S-1", "S-2"])
    first = claim(db, SPRING, "v1")
    assert first.new and first.code in ("S-1", "S-2") and first.expires_at == NOW + 86400
    again = claim(db, SPRING, "v1", now=NOW + 50)
    assert (again.code, again.new, again.expires_at) == (first.code, False, first.expires_at)
    other = claim(db, SPRING, "v2")
    assert other.new and {first.code, other.code} == {"S-1", "S-2"}
    row = db.execute(
        "SELECT campaign, variant, assigned_at FROM coupon_codes WHERE code = ?", (first.code,)
    ).fetchone()
    assert row == ("camp", "var", NOW)


def test_an_empty_pool_returns_none_and_keeps_earlier_claims(db: sqlite3.Connection) -> None:
    assert claim(db, SPRING, "v1") is None
    stock(db, "spring", ["S-1"])
    assert claim(db, SPRING, "v1").code == "S-1"
    assert claim(db, SPRING, "v2") is None
    assert claim(db, SPRING, "v1").code == "S-1"  # the holder still has it


def test_a_pool_past_its_end_hands_out_nothing_new(db: sqlite3.Connection) -> None:
    stock(db, "spring", ["S-1", "S-2"])
    assert claim(db, SPRING, "v1").code
    later = NOW + 86400
    assert claim(db, SPRING, "v2", now=later) is None
    assert claim(db, SPRING, "v1", now=later).new is False
    assert not store.pool_has_codes(db, SPRING, now=later)
    assert store.pool_has_codes(db, SPRING, now=NOW)


def test_generated_codes_are_made_on_demand_up_to_the_limit(db: sqlite3.Connection) -> None:
    limited = Pool("w", "generated", pattern="W-XXXXXX", limit=2, low_stock=1)
    # Nothing in stock, but codes can be made: the probe needs the Pool to know.
    assert store.pool_has_codes(db, limited) and not store.pool_has_codes(db, "w")
    a, b = claim(db, limited, "v1"), claim(db, limited, "v2")
    assert a.code != b.code and a.code.startswith("W-") and a.expires_at is None
    assert (a.low_stock, b.low_stock) == (None, 0)  # b took the last one
    assert claim(db, limited, "v3") is None
    assert not store.pool_has_codes(db, limited)
    assert store.coupon_stats(db)["w"] == store.PoolStats(free=0, assigned=2, generated=2)
    unlimited = claim(db, WELCOME, "v1")
    assert unlimited.new and unlimited.expires_at == NOW + 14 * 86400
    assert store.pool_has_codes(db, WELCOME)


def test_codes_generated_in_advance_are_handed_out_first(db: sqlite3.Connection) -> None:
    pool = Pool("w", "generated", pattern="W-XXXXXX", limit=3)
    made = unit(db, lambda c: store.add_generated(c, pool, 2, now=NOW))
    assert len(set(made)) == 2
    assert {claim(db, pool, "v1").code, claim(db, pool, "v2").code} == set(made)
    assert claim(db, pool, "v3").code not in made  # the third, on demand
    assert claim(db, pool, "v4") is None
    with pytest.raises(store.CouponError, match="3 of its limit of 3 codes: 0 more fit"):
        unit(db, lambda c: store.add_generated(c, pool, 1, now=NOW))
    with pytest.raises(store.CouponError, match="only generated pools"):
        unit(db, lambda c: store.add_generated(c, SPRING, 1, now=NOW))


def test_a_collision_draws_again(db: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    stock(db, "other", ["W-AAAAAA"])
    draws = iter(["W-AAAAAA", "W-AAAAAA", "W-BBBBBB"])
    monkeypatch.setattr(Pool, "new_code", lambda self: next(draws))
    pool = Pool("w", "generated", pattern="W-XXXXXX")
    assert claim(db, pool, "v1").code == "W-BBBBBB"
    monkeypatch.setattr(Pool, "new_code", lambda self: "W-AAAAAA")
    with pytest.raises(store.CouponError, match="nearly used up") as caught:
        claim(db, pool, "v2")
    assert caught.value.status == 503


def test_a_static_pool_records_who_was_shown_its_code(db: sqlite3.Connection) -> None:
    first = claim(db, CART5, "v1")
    assert (first.code, first.new, first.expires_at) == ("CART5-OFF", True, NOW + 7 * 86400)
    assert claim(db, CART5, "v1", now=NOW + 9).new is False
    assert claim(db, CART5, "v2").new
    assert store.coupon_stats(db)["cart5"].assigned == 2
    # A new code in the rules replaces the one shown before.
    changed = Pool("cart5", "static", code="CART6")
    assert claim(db, changed, "v1").code == "CART6"


def test_low_stock_fires_once_when_the_stock_drops_below_it(db: sqlite3.Connection) -> None:
    stock(db, "spring", [f"S-{i}" for i in range(6)])
    lows = [claim(db, SPRING, f"v{i}").low_stock for i in range(6)]
    assert lows == [None, None, None, 2, None, None]  # 6 -> 5, 4, 3, then 2 < 3
    stock(db, "spring", [f"T-{i}" for i in range(4)])  # refilled to 4, then down again
    lows = [claim(db, SPRING, f"w{i}").low_stock for i in range(4)]
    assert lows == [None, 2, None, None]
    assert claim(db, SPRING, "w0").low_stock is None  # a repeated claim takes nothing


@pytest.mark.sqlite_only("reads SQLite's query plan")
def test_the_stock_probe_and_the_claim_read_the_stock_index(db: sqlite3.Connection) -> None:
    plan = " ".join(
        row[3]
        for row in db.execute(
            "EXPLAIN QUERY PLAN SELECT 1 FROM coupon_codes WHERE pool = ?"
            " AND visitor_id IS NULL AND assigned_at IS NULL LIMIT 1",
            ("spring",),
        )
    )
    assert "USING COVERING INDEX coupon_codes_free" in plan
    assert not store.pool_has_codes(db, "spring")
    stock(db, "spring", ["S-1"])
    assert store.pool_has_codes(db, "spring") and store.pool_has_codes(db, SPRING)
    assert store.pool_has_codes(db, CART5)


# --- across processes -------------------------------------------------------------------------


def _claim_many(path: str, worker: int, visitors: int) -> list[tuple[str, str | None]]:
    conn = store.connect(path)
    out = []
    try:
        for i in range(visitors):
            vid = f"v{i % (visitors // 2)}-{worker % 2}"  # two workers share each visitor
            got = claim(conn, SPRING, vid)
            out.append((vid, got.code if got else None))
    finally:
        conn.close()
    return out


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_concurrent_processes_never_give_one_code_twice(
    request: pytest.FixtureRequest, tmp_path: Path, engine: str
) -> None:
    # On PostgreSQL the processes are as several nodes: no lock but the database's.
    path = str(tmp_path / "t.db") if engine == "sqlite" else request.getfixturevalue("pg_url")
    store.migrate(path)
    conn = store.connect(path)
    stock(conn, "spring", [f"S-{i:04d}" for i in range(300)])
    workers, each = 4, 200
    with multiprocessing.get_context("spawn").Pool(workers) as processes:
        results = processes.starmap(_claim_many, [(str(path), w, each) for w in range(workers)])
    by_visitor: dict[str, set[str | None]] = {}
    for vid, code in (pair for result in results for pair in result):
        by_visitor.setdefault(vid, set()).add(code)
    # Every visitor got one code, whichever process asked and however often.
    assert len(by_visitor) == 200 and all(len(codes) == 1 for codes in by_visitor.values())
    codes = [next(iter(c)) for c in by_visitor.values()]
    assert None not in codes and len(set(codes)) == 200
    rows = conn.execute("SELECT visitor_id, code FROM coupon_codes WHERE visitor_id IS NOT NULL")
    assert dict(rows.fetchall()) == {vid: next(iter(c)) for vid, c in by_visitor.items()}
    assert store.coupon_stats(conn)["spring"] == store.PoolStats(free=100, assigned=200)
    assert store.coupon_stats(conn, "spring") == {"spring": store.PoolStats(100, 200)}
    assert store.coupon_stats(conn, "other") == {}
    conn.close()


# --- redemption -------------------------------------------------------------------------------


def redeem(conn: sqlite3.Connection, code: str, order: str, **kw: Any) -> store.Redemption:
    now = kw.pop("now", NOW + 60)
    return unit(conn, lambda c: store.redeem_coupon(c, POOLS, code, order, 25.0, "EUR", now, **kw))


def test_a_redemption_credits_the_campaign_that_revealed_the_code(db: sqlite3.Connection) -> None:
    visitor(db, "v1")
    stock(db, "spring", ["S-1"])
    claim(db, SPRING, "v1")
    done = redeem(db, "  S-1 ", "O-1")
    assert done.as_json() == {
        "order_id": "O-1",
        "code": "S-1",
        "pool": "spring",
        "visitor_id": "v1",
        "campaign": "camp",
        "variant": "var",
        "value": 25.0,
        "currency": "EUR",
        "redeemed_at": NOW + 60,
    }
    assert not done.replay
    event = db.execute("SELECT type, campaign, variant, name, value, source FROM events")
    assert event.fetchone() == ("redeem", "camp", "var", "O-1", 25.0, "api")
    state = db.execute("SELECT last_converted_at FROM campaign_state WHERE visitor_id = 'v1'")
    assert state.fetchone() == (NOW + 60,)
    assert store.coupon_stats(db)["spring"].redeemed == 1


def test_a_replayed_redemption_gives_the_same_answer(db: sqlite3.Connection) -> None:
    stock(db, "spring", ["S-1"])
    claim(db, SPRING, "v1")
    first = redeem(db, "S-1", "O-1")
    again = redeem(db, "S-1", "O-1", now=NOW + 999)
    assert again.replay and again.as_json() == first.as_json()
    assert db.execute("SELECT count(*) FROM coupon_redemptions").fetchone() == (1,)


def test_a_code_is_redeemed_once(db: sqlite3.Connection) -> None:
    stock(db, "spring", ["S-1", "S-2"])
    redeem(db, "S-1", "O-1")
    with pytest.raises(store.CouponRedeemed, match="S-1 was redeemed by order O-1") as caught:
        redeem(db, "S-1", "O-2")
    assert caught.value.status == 409
    with pytest.raises(store.CouponRedeemed, match="order O-1 already redeemed the code S-1"):
        redeem(db, "S-2", "O-1")


def test_unknown_and_expired_codes(db: sqlite3.Connection) -> None:
    with pytest.raises(store.UnknownCoupon, match="no coupon code NOPE") as unknown:
        redeem(db, "NOPE", "O-1")
    assert unknown.value.status == 404
    stock(db, "spring", ["S-1"])
    claim(db, SPRING, "v1")
    with pytest.raises(store.CouponExpired, match="expired on 2027-01-16 08:00 UTC") as expired:
        redeem(db, "S-1", "O-1", now=NOW + 86400 + 1)
    assert expired.value.status == 422
    assert db.execute("SELECT count(*) FROM coupon_redemptions").fetchone() == (0,)


def test_a_code_redeemed_before_it_was_handed_out_leaves_the_stock(db: sqlite3.Connection) -> None:
    stock(db, "spring", ["S-1"])
    done = redeem(db, "S-1", "O-1", visitor_id="v9")
    assert (done.visitor_id, done.campaign) == ("v9", None)
    assert claim(db, SPRING, "v1") is None
    assert store.coupon_stats(db)["spring"].free == 0


def test_a_shared_code_credits_the_visitor_it_was_shown_to(db: sqlite3.Connection) -> None:
    visitor(db, "v1")
    claim(db, CART5, "v1")
    mine = redeem(db, "CART5-OFF", "O-1", visitor_id="v1")
    assert (mine.pool, mine.campaign, mine.variant) == ("cart5", "camp", "var")
    anonymous = redeem(db, "CART5-OFF", "O-2")  # a shared code is redeemed by many orders
    assert (anonymous.visitor_id, anonymous.campaign) == (None, None)
    with pytest.raises(store.CouponExpired):  # seven days after it was shown to v1
        redeem(db, "CART5-OFF", "O-3", visitor_id="v1", now=NOW + 8 * 86400)


def test_a_conversion_is_recorded_only_with_marketing_consent(db: sqlite3.Connection) -> None:
    visitor(db, "v1", granted='["measurement"]')
    stock(db, "spring", ["S-1"])
    claim(db, SPRING, "v1")
    assert redeem(db, "S-1", "O-1").campaign == "camp"
    assert db.execute("SELECT count(*) FROM events").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM campaign_state").fetchone() == (0,)


# --- imports ----------------------------------------------------------------------------------


def test_an_import_reports_duplicates_stored_codes_and_invalid_rows(db: sqlite3.Connection) -> None:
    stock(db, "other", ["TAKEN"])
    stock(db, "spring", ["MINE"])
    rows = [
        (2, "A-1"),
        (3, ""),
        (4, "A-2"),
        (5, "A-1"),
        (6, "TAKEN"),
        (7, "MINE"),
        (8, "A B"),
        (9, "X" * 65),
        (10, "A-3"),
    ]
    report = unit(db, lambda c: store.import_codes(c, "spring", rows, now=NOW, batch=3))
    assert (report.added, report.duplicates, report.stored, report.invalid) == (3, 1, 2, 3)
    assert report.problems == [
        (3, "", "empty"),
        (5, "A-1", "repeats line 2"),
        (6, "TAKEN", "already stored (pool other)"),
        (7, "MINE", "already stored"),
        (8, "A B", "contains a space"),
        (9, "X" * 65, "longer than 64 characters"),
    ]
    assert report.as_json("index")["problems"][0] == {"index": 2, "code": "", "problem": "empty"}
    assert store.coupon_stats(db)["spring"].free == 4
    # The same import again adds nothing and says why.
    again = unit(db, lambda c: store.import_codes(c, "spring", rows, now=NOW))
    assert (again.added, again.stored, again.duplicates) == (0, 5, 1)


def test_an_import_lists_the_first_problems_and_counts_the_rest(db: sqlite3.Connection) -> None:
    rows = [(i, "") for i in range(1, 151)]
    report = unit(db, lambda c: store.import_codes(c, "spring", rows, now=NOW))
    assert (report.invalid, len(report.problems), report.unlisted) == (150, 100, 50)


# --- merges -----------------------------------------------------------------------------------


def test_a_merge_moves_codes_of_pools_the_known_visitor_lacks(db: sqlite3.Connection) -> None:
    stock(db, "spring", ["S-1", "S-2"])
    anonymous = {p.name: claim(db, p, "anon").code for p in (SPRING, WELCOME, CART5)}
    known = claim(db, SPRING, "known").code
    claim(db, CART5, "known")
    redeem(db, anonymous["spring"], "O-1", visitor_id="anon")
    unit(db, lambda c: store.merge_coupons(c, "anon", "known"))
    holders = dict(db.execute("SELECT code, visitor_id FROM coupon_codes"))
    assert holders == {known: "known", anonymous["spring"]: "anon", anonymous["welcome"]: "known"}
    assert db.execute("SELECT visitor_id FROM coupon_reveals").fetchall() == [("known",)]
    assert db.execute("SELECT visitor_id FROM coupon_redemptions").fetchall() == [("known",)]
    assert claim(db, WELCOME, "known").code == anonymous["welcome"]


def test_identifying_an_anonymous_visitor_brings_their_code_along(db: sqlite3.Connection) -> None:
    for vid in ("known", "phone"):
        store.record_consent(
            db,
            vid,
            at=NOW,
            revision=1,
            granted={"personalisation", "marketing"},
            denied=(),
            method="api",
        )
    # Verified (the shop vouched for it): only then does the phone join the known profile.
    who = dataclasses.replace(
        identity.parse({"email": "ada@example.com"}, b"k" * 32, depth="standard"), verified=True
    )
    store.identify(db, "known", who, now=NOW, keep="standard", rules=RULES)
    code = claim(db, WELCOME, "phone").code
    outcome = unit(
        db, lambda c: store.identify_visitor(c, "phone", who, now=NOW, keep="standard", rules=RULES)
    )
    assert outcome.merged_from == "phone"
    again = claim(db, WELCOME, "known")
    assert (again.code, again.new) == (code, False)


def claims_at_once(pg_url: str, visitor: str, *, wait: float) -> tuple[Any, Any]:
    """A claim of visitor ``va`` in an open transaction, as one node's writer, and a claim of
    ``visitor`` meanwhile on another connection, as another node's (given ``wait`` seconds
    before the first commits): both claims."""
    first, second = store.connect(pg_url), store.connect(pg_url)
    try:
        stock(first, "spring", ["S-1", "S-2"])
        first.execute("BEGIN")
        mine = store.claim_coupon(first, SPRING, "va", "camp", "var", NOW)
        done: list[Any] = []
        other = threading.Thread(target=lambda: done.append(claim(second, SPRING, visitor)))
        other.start()
        other.join(timeout=wait)
        first.execute("COMMIT")
        other.join(timeout=5)
        assert mine is not None and done and done[0] is not None
        return mine, done[0]
    finally:
        first.close()
        second.close()


def test_two_nodes_claiming_at_once_on_postgresql_get_two_codes(pg_url: str) -> None:
    """The second passes over the code the first holds (SKIP LOCKED) instead of waiting for
    it and then taking it again."""
    mine, theirs = claims_at_once(pg_url, "vb", wait=2)
    assert {mine.code, theirs.code} == {"S-1", "S-2"}


def test_one_visitor_claiming_on_two_nodes_at_once_on_postgresql_gets_one_code(
    pg_url: str,
) -> None:
    mine, again = claims_at_once(pg_url, "va", wait=0.5)
    assert again == dataclasses.replace(mine, new=False)
