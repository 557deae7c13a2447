"""The rollups: counted with what they count, each visitor once per campaign version, per day in
the site's time zone, at every data depth, untouched by the purge and by an erasure."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlite_utils
from touchpoint import store
from touchpoint.coupons.pools import Pool
from touchpoint.profiles.rules import ProfileRules
from touchpoint.profiles.scoring import ScoringRules
from touchpoint.store.activity import Activity, Effects, StageChange
from touchpoint.store.identities import _merge_visitor
from touchpoint.store.migrations import roll_up_history
from touchpoint.store.records import PageViewUpdate, Touch
from touchpoint.store.retention import Cutoffs, purge_events
from touchpoint.store.subjects import erase
from touchpoint.syntax.matchers import compile_globs

BERLIN = ZoneInfo("Europe/Berlin")
NOON = int(datetime(2026, 12, 4, 12, tzinfo=UTC).timestamp())
DAY = 86_400


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    path = tmp_path / "t.db"
    store.migrate(path)
    return store.connect(path)


def consent(conn: sqlite3.Connection, visitor: str, at: int = NOON - DAY) -> None:
    everything = {"measurement", "personalisation", "marketing"}
    store.record_consent(
        conn, visitor, at=at, revision=1, granted=everything, denied=set(), method="api"
    )


def events(
    conn: sqlite3.Connection,
    visitor: str,
    *kinds: str,
    at: int = NOON,
    variant: str = "a",
    version: int = 1,
    depth: str = "standard",
) -> None:
    batch = [store.Event(kind, "spring", variant, "/", version=version) for kind in kinds]
    store.record_events(conn, visitor, batch, at=at, visit_start=at, depth=depth, tz=BERLIN)


def campaign_rows(conn: sqlite3.Connection) -> dict[tuple[str, str, int], dict[str, int]]:
    rows = conn.execute(
        f"SELECT day, variant, version, {', '.join(store.CAMPAIGN_COUNTS)} FROM rollup_campaigns"
        " WHERE campaign = 'spring' ORDER BY 1, 2, 3"
    ).fetchall()
    return {
        (day, variant, version): {
            name: value for name, value in zip(store.CAMPAIGN_COUNTS, counts, strict=True) if value
        }
        for day, variant, version, *counts in rows
    }


def totals(conn: sqlite3.Connection) -> dict[str, int]:
    sums = ", ".join(f"total({name})" for name in store.CAMPAIGN_COUNTS)
    row = conn.execute(f"SELECT {sums} FROM rollup_campaigns").fetchone()
    return {name: int(value) for name, value in zip(store.CAMPAIGN_COUNTS, row, strict=True)}


def test_each_visitor_counts_once_per_version(conn: sqlite3.Connection) -> None:
    consent(conn, "v1")
    events(conn, "v1", "impression", "impression", "close")
    events(conn, "v1", "impression", "convert", "convert", at=NOON + 60)
    assert campaign_rows(conn) == {
        ("2026-12-04", "a", 1): {
            "exposures": 3,
            "closes": 1,
            "conversions": 2,
            "unique_exposed": 1,
            "unique_converted": 1,
        }
    }
    # The marketer raises the version (re-bucketing everybody): the visitor counts again.
    events(conn, "v1", "impression", "convert", at=NOON + DAY, variant="b", version=2)
    assert campaign_rows(conn)[("2026-12-05", "b", 2)] == {
        "exposures": 1,
        "conversions": 1,
        "unique_exposed": 1,
        "unique_converted": 1,
    }


def test_a_control_visitors_exposure_counts_like_an_impression(conn: sqlite3.Connection) -> None:
    consent(conn, "v1")
    events(conn, "v1", "exposure", variant="holdout")
    assert campaign_rows(conn) == {
        ("2026-12-04", "holdout", 1): {"exposures": 1, "unique_exposed": 1}
    }


def test_a_conversion_is_credited_to_the_variant_the_visitor_was_exposed_to(
    conn: sqlite3.Connection,
) -> None:
    consent(conn, "v1")
    events(conn, "v1", "impression", variant="b")
    events(conn, "v1", "convert", at=NOON + DAY, variant="b")
    assert campaign_rows(conn)[("2026-12-05", "b", 1)] == {"conversions": 1, "unique_converted": 1}
    # A conversion without any exposure (say its state row was lost) is counted, not its visitor.
    consent(conn, "v2")
    events(conn, "v2", "convert")
    assert totals(conn)["unique_converted"] == 1
    assert totals(conn)["conversions"] == 2


def test_days_are_the_sites_days(conn: sqlite3.Connection) -> None:
    late = int(datetime(2026, 12, 4, 23, 30, tzinfo=UTC).timestamp())  # 00:30 in Berlin
    consent(conn, "v1")
    events(conn, "v1", "impression", at=late)
    assert list(campaign_rows(conn)) == [("2026-12-05", "a", 1)]


def test_rollups_are_written_at_the_minimal_data_depth(conn: sqlite3.Connection) -> None:
    consent(conn, "v1")
    events(conn, "v1", "impression", "convert", depth="minimal")
    assert conn.execute("SELECT count(*) FROM events").fetchone() == (0,)
    assert totals(conn)["exposures"] == 1
    assert totals(conn)["unique_converted"] == 1


def test_nothing_is_counted_for_a_visitor_erased_meanwhile(conn: sqlite3.Connection) -> None:
    events(conn, "gone", "impression")
    assert totals(conn)["exposures"] == 0


def test_the_purge_and_an_erasure_leave_the_rollups_as_they_were(
    conn: sqlite3.Connection,
) -> None:
    for visitor in ("v1", "v2", "v3"):
        consent(conn, visitor)
        events(conn, visitor, "impression", "convert")
    store.count_effects(
        conn,
        Effects(stage_changes=[StageChange("visitor", "lead", "score", NOON)], crossed=["hot"]),
        at=NOON,
        tz=BERLIN,
    )
    dump = {t: rows(conn, t) for t in ROLLUPS}
    purge_events(conn, Cutoffs(NOON + DAY, None, None, 0), limit=1000)
    assert conn.execute("SELECT count(*) FROM events").fetchone() == (0,)
    assert erase(conn, ("id", "v2"), key=b"k" * 32, at=NOON + DAY, via="cli") is not None
    assert {t: rows(conn, t) for t in ROLLUPS} == dump
    assert dump["rollup_stages"] == [("2026-12-04", "visitor", "lead", 1)]
    assert dump["rollup_thresholds"] == [("2026-12-04", "hot", 1)]
    for table in ROLLUPS:  # nothing in them names a visitor
        text = repr(rows(conn, table))
        assert not any(visitor in text for visitor in ("v1", "v2", "v3"))


ROLLUPS = (
    "rollup_campaigns",
    "rollup_campaign_months",
    "rollup_revenue",
    "rollup_stages",
    "rollup_thresholds",
)


def rows(conn: sqlite3.Connection, table: str) -> list[tuple[object, ...]]:
    return conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3").fetchall()


def page_view(conn: sqlite3.Connection, visitor: str, at: int) -> None:
    rules = ProfileRules(ScoringRules(timezone=BERLIN))
    update = PageViewUpdate(at, Touch("direct", ""), path="/")
    store.record_page_view(conn, visitor, update, session_idle=1800, rules=rules)


def test_a_profile_enters_the_lifecycle_at_its_first_page_view(conn: sqlite3.Connection) -> None:
    consent(conn, "v1")
    page_view(conn, "v1", NOON)
    page_view(conn, "v1", NOON + 60)
    assert rows(conn, "rollup_stages") == [("2026-12-04", "", "visitor", 1)]


def test_reveals_and_redemptions_with_their_revenue(conn: sqlite3.Connection) -> None:
    pool = Pool("welcome", "generated", pattern="W-XXXXXXXX")
    for visitor, value in (("v1", 80.0), ("v2", 120.0)):
        consent(conn, visitor)
        events(conn, visitor, "impression")
        claim = store.claim_coupon(conn, pool, visitor, "spring", "a", NOON)
        assert claim is not None
        store.count_campaign(conn, "2026-12-04", "spring", "a", 1, reveals=1)
        done = store.redeem_coupon(
            conn, {"welcome": pool}, claim.code, f"order-{visitor}", value, "EUR", NOON + 60
        )
        store.count_redemption(conn, done, "2026-12-04", 1)
    assert campaign_rows(conn)[("2026-12-04", "a", 1)] == {
        "exposures": 2,
        "reveals": 2,
        "redemptions": 2,
        "unique_exposed": 2,
        "unique_converted": 2,
    }
    assert rows(conn, "rollup_revenue") == [
        ("2026-12-04", "spring", "a", 1, "EUR", 2, 200.0, 80.0**2 + 120.0**2)
    ]


def test_the_history_is_rolled_up_once_by_the_migration(conn: sqlite3.Connection) -> None:
    """What a database held before the upgrade: the events (UTC days), the codes handed out
    and redeemed, the stage history."""
    for visitor in ("v1", "v2"):
        consent(conn, visitor)
        events(conn, visitor, "impression", "impression")
    events(conn, "v1", "convert", at=NOON + DAY)
    page_view(conn, "v1", NOON)
    events(conn, "v2", "close")
    conn.execute(
        "INSERT INTO stage_history (visitor_id, at, before, after, reason)"
        " VALUES ('v1', ?, 'visitor', 'lead', 'score')",
        (NOON,),
    )
    pool = Pool("welcome", "generated", pattern="W-XXXXXXXX")
    claim = store.claim_coupon(conn, pool, "v1", "spring", "a", NOON)
    assert claim is not None
    store.redeem_coupon(conn, {"welcome": pool}, claim.code, "o-1", 50.0, "EUR", NOON)
    live = totals(conn)
    for table in ROLLUPS:
        conn.execute(f"DELETE FROM {table}")
    conn.execute("UPDATE campaign_state SET exposed_version = NULL, converted_version = NULL")

    roll_up_history(sqlite_utils.Database(conn))

    assert totals(conn) == {**live, "reveals": 1, "redemptions": 1}
    assert rows(conn, "rollup_stages") == [
        ("2026-12-04", "", "visitor", 1),
        ("2026-12-04", "visitor", "lead", 1),
    ]
    assert rows(conn, "rollup_revenue") == [
        ("2026-12-04", "spring", "a", 1, "EUR", 1, 50.0, 2500.0)
    ]
    # ... and counting goes on from there without counting anybody twice.
    events(conn, "v1", "impression", "convert", at=NOON + 2 * DAY)
    assert totals(conn)["unique_exposed"] == 2
    assert totals(conn)["unique_converted"] == 1


PURCHASE = store.Goal("purchase", within=7 * DAY)


def bought(conn: sqlite3.Connection, visitor: str, at: int) -> None:
    activity = Activity("purchase", at, name="order-1", value=50.0)
    store.count_goals(conn, visitor, [activity], {"spring": PURCHASE}, BERLIN)


def test_a_goal_converts_the_holdout_too_within_its_window(conn: sqlite3.Connection) -> None:
    for visitor in ("shown", "held", "late", "never"):
        consent(conn, visitor)
    events(conn, "shown", "impression", variant="a")
    events(conn, "held", "exposure", variant="holdout")
    events(conn, "late", "exposure", variant="holdout")
    bought(conn, "shown", NOON + DAY)
    bought(conn, "shown", NOON + 2 * DAY)  # once per visitor
    bought(conn, "held", NOON + 7 * DAY)  # the window's last second
    bought(conn, "late", NOON + 7 * DAY + 1)  # past it
    bought(conn, "never", NOON)  # never exposed
    converted = {
        variant: counts.get("unique_converted", 0)
        for (_, variant, _), counts in campaign_rows(conn).items()
    }
    assert converted == {"a": 1, "holdout": 1}


def test_with_a_goal_the_popups_own_conversion_does_not_convert(conn: sqlite3.Connection) -> None:
    consent(conn, "v1")
    batch = [store.Event(kind, "spring", "a", "/") for kind in ("impression", "convert")]
    store.record_events(conn, "v1", batch, at=NOON, visit_start=NOON, tz=BERLIN, goals={"spring"})
    assert totals(conn)["conversions"] == 1
    assert totals(conn)["unique_converted"] == 0
    bought(conn, "v1", NOON + 60)
    assert totals(conn)["unique_converted"] == 1


@pytest.mark.parametrize(
    ("goal", "activity", "reached"),
    [
        (store.Goal("form_submit", name="signup"), Activity("form_submit", 0, name="signup"), True),
        (store.Goal("form_submit", name="signup"), Activity("form_submit", 0, name="quiz"), False),
        (store.Goal("form_submit"), Activity("form_submit", 0, name="quiz"), True),
        (store.Goal("custom"), Activity("click", 0, name="x"), False),
        (
            store.Goal("page_view", path=compile_globs(["/checkout/done*"], segments=True)),
            Activity("page_view", 0, path="/checkout/done.html"),
            True,
        ),
        (
            store.Goal("page_view", path=compile_globs(["/checkout/done*"], segments=True)),
            Activity("page_view", 0, path="/checkout/cart"),
            False,
        ),
    ],
)
def test_what_reaches_a_goal(goal: store.Goal, activity: Activity, reached: bool) -> None:
    assert goal.reached_by(activity) is reached


def test_a_merged_person_is_not_counted_again(conn: sqlite3.Connection) -> None:
    """The anonymous visitor seen on one device, identified as a known profile: its markers
    move with its campaign history, so the next exposure of the one person is not a new one."""
    for visitor in ("anonymous", "known"):
        consent(conn, visitor)
    events(conn, "anonymous", "impression", "convert")
    _merge_visitor(conn, "anonymous", "known", now=NOON + 60, rules=ProfileRules())
    events(conn, "known", "impression", "convert", at=NOON + 120)
    assert totals(conn)["unique_exposed"] == 1
    assert totals(conn)["unique_converted"] == 1
