"""The database: migrations, hot-path reads and the single group-committing writer."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from touchpoint import store
from touchpoint.profiles.model import advance
from touchpoint.profiles.rules import ProfileRules
from touchpoint.store.activity import Effects
from touchpoint.store.records import PageViewUpdate, Profile, Touch

RULES = ProfileRules()  # the built-in stages, no points


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "t.db"
    store.migrate(path)
    return path


def test_migrations_apply_once(tmp_path: Path) -> None:
    path = tmp_path / "new" / "t.db"
    assert store.migrate(path) == [
        "m001_initial",
        "m002_profiles",
        "m003_activity",
        "m004_webhooks",
        "m005_identity",
        "m006_coupons",
        "m007_privacy",
        "m008_retention",
        "m009_health",
        "m010_verified_identity",
        "m011_rollups",
        "m012_first_counts",
        "m013_admin_users",
        "m014_admin_audit",
        "m015_seen_hour",
        "m016_compact_events",
    ]
    assert store.migrate(path) == []
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_reader_returns_visitor_with_campaign_history(db_path: Path) -> None:
    async def scenario() -> None:
        writer = store.Writer(db_path)
        try:
            await writer.write(
                lambda c: store.record_consent(
                    c, "v1", at=10, revision=1, granted={"marketing"}, denied=set(), method="api"
                )
            )
            await writer.write(
                lambda c: store.record_events(
                    c,
                    "v1",
                    [
                        store.Event("impression", "spring", "a", "/"),
                        store.Event("impression", "spring", "a", "/p"),
                        store.Event("close", "spring", "a", "/p"),
                    ],
                    at=20,
                    visit_start=20 - 1800 + 1,
                )
            )
        finally:
            writer.close()

    asyncio.run(scenario())
    reader = store.Reader(db_path)
    record = reader.visitor("v1")
    assert record is not None
    assert record.consent_granted == {"marketing"}
    assert record.campaigns == {
        "spring": store.CampaignHistory(
            2, 20, 20, None, session_impressions=2, variant="a", version=1
        )
    }
    assert reader.visitor("nobody") is None
    assert [e["type"] for e in reader.events("v1")] == ["impression", "impression", "close"]


def test_writer_groups_commits_and_isolates_failures(db_path: Path) -> None:
    def insert(n: int):  # type: ignore[no-untyped-def]
        def work(conn: sqlite3.Connection) -> int:
            if n == 13:
                conn.execute("INSERT INTO visitors (id, created_at) VALUES ('x', 1)")
                raise ValueError("unlucky")
            conn.execute("INSERT INTO visitors (id, created_at) VALUES (?, ?)", (f"v{n}", n))
            return n

        return work

    async def scenario() -> list[object]:
        writer = store.Writer(db_path)
        try:
            return await asyncio.gather(
                *(writer.write(insert(n)) for n in range(50)), return_exceptions=True
            )
        finally:
            writer.close()

    results = asyncio.run(scenario())
    assert isinstance(results[13], ValueError)
    assert [r for i, r in enumerate(results) if i != 13] == [n for n in range(50) if n != 13]
    reader = store.Reader(db_path)
    assert reader.count("visitors") == 49  # the failing unit's own insert was rolled back


def test_close_flushes_everything_queued(db_path: Path) -> None:
    async def scenario() -> None:
        writer = store.Writer(db_path)
        futures = [
            asyncio.ensure_future(
                writer.write(
                    lambda c, n=n: c.execute(
                        "INSERT INTO visitors (id, created_at) VALUES (?, 1)", (f"v{n}",)
                    )
                )
            )
            for n in range(100)
        ]
        await asyncio.sleep(0)
        writer.close()
        await asyncio.gather(*futures)

    asyncio.run(scenario())
    assert store.Reader(db_path).count("visitors") == 100


def test_writers_take_turns_by_a_lock_that_wakes_the_next_at_once(db_path: Path) -> None:
    # SQLite's busy handler sleeps 1, 2, 5 ... ms between tries: two workers' writers stored
    # fewer events than one. The writers of every worker queue for this lock instead.
    import fcntl
    import os

    async def scenario(turn: int) -> None:
        writer = store.Writer(db_path)
        fcntl.flock(turn, fcntl.LOCK_EX)  # another worker's writer has its turn
        try:
            unit = writer.write(lambda c: c.execute("INSERT INTO health VALUES (1, 1)"))
            waiting = asyncio.ensure_future(unit)
            await asyncio.sleep(0.2)
            assert not waiting.done()
            fcntl.flock(turn, fcntl.LOCK_UN)
            await asyncio.wait_for(waiting, 2)
        finally:
            writer.close()

    turn = os.open(f"{db_path}-writer.lock", os.O_RDWR | os.O_CREAT)
    try:
        asyncio.run(scenario(turn))
    finally:
        os.close(turn)


def test_refusal_creates_no_profile(db_path: Path) -> None:
    async def scenario() -> None:
        writer = store.Writer(db_path)
        await writer.write(
            lambda c: store.record_consent(
                c, "v9", at=1, revision=1, granted=set(), denied={"marketing"}, method="api"
            )
        )
        writer.close()

    asyncio.run(scenario())
    reader = store.Reader(db_path)
    assert reader.count("visitors") == 0
    assert [e["denied"] for e in reader.consent_log("v9")] == ['["marketing"]']


def test_reader_is_read_only(db_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError):
        store.Reader(db_path).conn.execute("DELETE FROM visitors")


def test_page_views_move_the_profile_on(db_path: Path) -> None:
    conn = store.connect(db_path)
    store.record_consent(
        conn, "v1", at=0, revision=1, granted={"personalisation"}, denied=set(), method="api"
    )
    search = Touch("search", "google.com", {})
    views = [
        PageViewUpdate(100, search, ("running",), category="Running"),
        PageViewUpdate(200, None, ("running",), product="Trail Runner"),
        PageViewUpdate(200 + 1800, Touch("email", "", {"source": "news"})),
        PageViewUpdate(200 + 1800 + 60, None),
    ]
    for view in views:
        assert store.record_page_view(conn, "v1", view, session_idle=1800, rules=RULES)
    assert not store.record_page_view(conn, "nobody", views[0], session_idle=1800, rules=RULES)
    conn.close()
    reader = store.Reader(db_path)
    record = reader.visitor("v1")
    reader.close()
    assert record is not None
    assert record.profile == Profile(
        first_seen_at=100,
        last_seen_at=2060,
        visits=2,
        page_views=4,
        session_started_at=2000,
        session_page_views=2,
        first_touch=search,
        last_touch=Touch("email", "", {"source": "news"}),
        interests={"running": 2},
        last_category="Running",
        last_product="Trail Runner",
    )
    assert record.profile.returning and record.profile.top_interest == "running"


def test_a_precomputed_page_view_never_overwrites_a_newer_one(db_path: Path) -> None:
    conn = store.connect(db_path)
    store.record_consent(
        conn, "v1", at=0, revision=1, granted={"personalisation"}, denied=set(), method="api"
    )
    read = Profile()
    first, second = PageViewUpdate(100, None), PageViewUpdate(101, None)
    # Two tabs read the same profile; both computed their result from it.
    results = [advance(read, view, session_idle=1800) for view in (first, second)]
    for view, result in zip((first, second), results, strict=True):
        store.record_page_view(
            conn,
            "v1",
            view,
            session_idle=1800,
            rules=RULES,
            read=read,
            result=(result, Effects()),
        )
    row = conn.execute("SELECT page_views, session_page_views FROM visitors").fetchone()
    conn.close()
    assert row == (2, 2)  # the second write saw the row had moved on and counted on top of it


def test_withdrawing_a_category_drops_what_it_allowed(db_path: Path) -> None:
    conn = store.connect(db_path)
    everything = {"personalisation", "marketing"}
    store.record_consent(
        conn, "v1", at=0, revision=1, granted=everything, denied=set(), method="api"
    )
    store.record_page_view(
        conn,
        "v1",
        PageViewUpdate(5, Touch("search", "google.com")),
        session_idle=1800,
        rules=RULES,
    )
    store.record_events(conn, "v1", [store.Event("impression", "c", "a", "/")], at=6, visit_start=5)
    store.record_consent(
        conn,
        "v1",
        at=7,
        revision=1,
        granted={"marketing"},
        denied={"personalisation"},
        method="api",
    )
    assert conn.execute("SELECT visits, session_started_at, data FROM visitors").fetchone() == (
        0,
        None,
        "{}",
    )
    assert conn.execute("SELECT count(*) FROM campaign_state").fetchone() == (1,)
    store.record_consent(
        conn, "v1", at=8, revision=1, granted=set(), denied=everything, method="api"
    )
    assert conn.execute("SELECT count(*) FROM campaign_state").fetchone() == (0,)
    conn.close()


def test_a_scored_page_view_is_written_in_one_statement(db_path: Path) -> None:
    from touchpoint.rules import ruleset as rules_module

    rules = rules_module.load(Path(__file__).parent.parent.parent / "rules").profile
    conn = store.connect(db_path)
    store.record_consent(
        conn, "v1", at=0, revision=1, granted={"personalisation"}, denied=set(), method="api"
    )
    reader = store.Reader(db_path)
    social = Touch("organic_social", "facebook.com", {})  # first-visit points need social media
    for at in (100, 5000, 5060):  # a first visit, a return visit, a second page
        record = reader.visitor("v1")
        assert record is not None
        view = PageViewUpdate(at, social if at == 100 else None, path="/")
        result = rules.page_view(record.profile, view, session_idle=1800, visitor_id="v1")
        statements: list[str] = []
        conn.set_trace_callback(statements.append)
        effects = store.record_page_view(
            conn, "v1", view, session_idle=1800, rules=rules, read=record.profile, result=result
        )
        conn.set_trace_callback(None)
        assert effects is result[1]
        # Only the event log's next id is looked up (on its primary key), never the visitor.
        assert not [s for s in statements if s.lstrip().startswith("SELECT") and "visitors" in s]
    record = reader.visitor("v1")
    assert record is not None and record.profile.score == 10
    assert [e["type"] for e in reader.events("v1")] == ["page_view"] * 3


def test_the_reader_lists_a_visitors_stage_changes(db_path: Path) -> None:
    from touchpoint.profiles.rules import ProfileRules
    from touchpoint.store.activity import Activity

    conn = store.connect(db_path)
    store.record_consent(
        conn, "v1", at=0, revision=1, granted={"personalisation"}, denied=set(), method="api"
    )
    store.record_activities(conn, "v1", [Activity("identify", 5)], rules=ProfileRules(), now=5)
    assert store.Reader(db_path).stage_history("v1") == [
        {
            "at": 5,
            "before": "visitor",
            "after": "lead",
            "reason": "lead: (identified is true) or (stage is lead)",
        }
    ]


def test_a_scrub_a_reader_kept_busy_is_reported(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A command's erasure says when a reader of an older snapshot kept the write-ahead log
    from being truncated (store/wal.py), rather than staying silent."""
    import sys

    from touchpoint.store import wal

    migrations = sys.modules["touchpoint.store.migrations"]  # the module, not store.migrations

    conn = store.connect(db_path)
    reader = store.connect(db_path)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM visitors").fetchone()  # holds the snapshot
    monkeypatch.setattr(migrations, "scrub_waiting", lambda c: wal.scrub(c))  # no waiting
    with caplog.at_level("WARNING", logger="touchpoint.store"):
        with store.immediate(conn):
            conn.execute("INSERT INTO health (id, checked_at) VALUES (1, 0)")
            store.scrub_after_commit(conn)
    assert "stay in the write-ahead log" in caplog.text
    reader.execute("COMMIT")
    assert wal.scrub(conn)  # once the reader is done, the log is truncated
    conn.close()
    reader.close()
