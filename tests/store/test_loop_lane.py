"""The writer's loop lane: page view counts committed on the event loop's thread (store/writer.py),
never blocking the loop, in order with the writes somebody waits for, checkpointed by the thread."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from touchpoint import store
from touchpoint.store import writer as writer_module


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "t.db"
    store.migrate(path)
    return path


def insert(visitor_id: str, seen: list[int] | None = None) -> Callable[[sqlite3.Connection], None]:
    def unit(conn: sqlite3.Connection) -> None:
        if seen is not None:
            seen.append(threading.get_ident())
        conn.execute("INSERT INTO visitors (id, created_at) VALUES (?, 1)", (visitor_id,))

    return unit


def stored(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT id FROM visitors")}
    finally:
        conn.close()


async def until(condition: Callable[[], bool], seconds: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "not within the time"
        await asyncio.sleep(0.005)


def test_page_views_are_committed_on_the_loops_thread_in_groups(db_path: Path) -> None:
    seen: list[int] = []

    async def scenario() -> None:
        writer = store.Writer(db_path)
        try:
            for n in range(20):
                writer.submit(insert(f"v{n}", seen))
            await until(lambda: len(stored(db_path)) == 20)
        finally:
            writer.close()

    asyncio.run(scenario())
    assert set(seen) == {threading.get_ident()}


def test_a_write_waited_for_comes_after_the_page_views_queued_before_it(db_path: Path) -> None:
    async def scenario() -> int:
        writer = store.Writer(db_path, linger=5.0)  # the lane would hold them for 5 s
        try:
            writer.submit(insert("v1"))
            writer.submit(insert("v2"))
            return await writer.write(  # type: ignore[no-any-return]
                lambda c: c.execute("SELECT count(*) FROM visitors").fetchone()[0]
            )
        finally:
            writer.close()

    assert asyncio.run(scenario()) == 2


def test_close_commits_what_the_lane_holds(db_path: Path) -> None:
    async def scenario() -> None:
        writer = store.Writer(db_path, linger=5.0)
        for n in range(300):  # more than one group of max_batch
            writer.submit(insert(f"v{n}"))
        writer.close()

    asyncio.run(scenario())
    assert len(stored(db_path)) == 300


def test_another_writers_turn_never_blocks_the_loop(db_path: Path) -> None:
    turn = os.open(f"{db_path}-writer.lock", os.O_RDWR | os.O_CREAT)

    async def scenario() -> None:
        writer = store.Writer(db_path)
        fcntl.flock(turn, fcntl.LOCK_EX)  # another worker's writer has its turn
        try:
            writer.submit(insert("v1"))
            ticks = 0
            for _ in range(20):  # the loop keeps turning meanwhile
                await asyncio.sleep(0.01)
                ticks += 1
            assert ticks == 20
            assert stored(db_path) == set()
            fcntl.flock(turn, fcntl.LOCK_UN)
            await until(lambda: stored(db_path) == {"v1"}, seconds=1.0)
        finally:
            writer.close()

    try:
        asyncio.run(scenario())
    finally:
        os.close(turn)


def test_sqlites_lock_held_by_a_command_is_waited_for_without_blocking(db_path: Path) -> None:
    command = sqlite3.connect(db_path, isolation_level=None)

    async def scenario() -> None:
        writer = store.Writer(db_path)
        command.execute("BEGIN IMMEDIATE")  # a command beside the server, without the turns
        try:
            writer.submit(insert("v1"))
            started = asyncio.get_running_loop().time()
            await asyncio.sleep(0.1)
            assert asyncio.get_running_loop().time() - started < 0.2
            assert stored(db_path) == set()
            command.execute("COMMIT")
            await until(lambda: stored(db_path) == {"v1"}, seconds=1.0)
        finally:
            writer.close()

    try:
        asyncio.run(scenario())
    finally:
        command.close()


def test_a_lock_held_too_long_fails_the_group_as_the_thread_would(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(writer_module._LoopLane, "BUSY_SECONDS", 0.1)
    command = sqlite3.connect(db_path, isolation_level=None)

    async def scenario() -> None:
        writer = store.Writer(db_path)
        command.execute("BEGIN IMMEDIATE")
        try:
            writer.submit(insert("v1"))
            await asyncio.sleep(0.3)
            command.execute("COMMIT")
            writer.submit(insert("v2"))  # the next group is stored
            await until(lambda: stored(db_path) == {"v2"})
        finally:
            writer.close()

    try:
        with caplog.at_level(logging.ERROR, logger="touchpoint.store"):
            asyncio.run(scenario())
    finally:
        command.close()
    assert any("failed" in r.getMessage() and r.exc_info for r in caplog.records)
    assert stored(db_path) == {"v2"}


def test_the_thread_checkpoints_what_the_lane_commits(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The lane's connection leaves checkpoints to the thread: without them the -wal would hold
    # every group ever committed.
    monkeypatch.setattr(writer_module._LoopLane, "CHECKPOINT_SECONDS", 0.0)
    groups = 120

    async def scenario() -> int:
        writer = store.Writer(db_path, linger=0.0)
        try:
            for n in range(groups):
                writer.submit(insert(f"v{n}"))
                await until(lambda n=n: f"v{n}" in stored(db_path))  # one group each
            # The -wal is written from its start again after a checkpoint: its size is the
            # most it held (the last connection's close checkpoints and deletes it).
            return os.path.getsize(f"{db_path}-wal")
        finally:
            writer.close()

    wal_bytes = asyncio.run(scenario())
    assert len(stored(db_path)) == groups
    frames = wal_bytes // (4096 + 24)  # without checkpoints: a frame or more per group
    assert frames < groups / 2


def test_a_small_write_is_committed_on_the_loop_and_answers_its_caller(db_path: Path) -> None:
    seen: list[int] = []

    def failing(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO visitors (id, created_at) VALUES ('half', 1)")
        raise ValueError("about the data")

    async def scenario() -> None:
        writer = store.Writer(db_path, linger=5.0)
        try:
            writer.submit(insert("v1", seen))  # queued before: in the same group
            count = await writer.write(
                lambda c: c.execute("SELECT count(*) FROM visitors").fetchone()[0], small=True
            )
            assert count == 1
            with pytest.raises(ValueError, match="about the data"):
                await writer.write(failing, small=True)
        finally:
            writer.close()

    asyncio.run(scenario())
    assert seen == [threading.get_ident()]
    assert stored(db_path) == {"v1"}  # the failing unit's own insert was rolled back


def test_an_erasure_on_the_loop_is_scrubbed_out_of_the_wal_by_the_thread(db_path: Path) -> None:
    def erase(conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM visitors WHERE id = 'v1'")
        store.scrub_after_commit(conn)

    async def scenario() -> None:
        writer = store.Writer(db_path)
        try:
            await writer.write(insert("v1"), small=True)
            await writer.write(erase, small=True)
            await until(lambda: os.path.getsize(f"{db_path}-wal") == 0)
        finally:
            writer.close()

    asyncio.run(scenario())


def test_reads_on_the_loop_use_the_lanes_connection_and_see_only_what_is_committed(
    db_path: Path,
) -> None:
    async def scenario() -> None:
        writer = store.Writer(db_path)
        reader = store.Reader(db_path)
        try:
            await writer.write(insert("v1"), small=True)
            conn = writer.loop_reads()
            assert conn is not None and conn is writer._lane.conn  # type: ignore[union-attr]
            assert reader.visitor("v1", conn=conn) is not None
            # A transaction a failed rollback left open: its rows are nobody's to read.
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO visitors (id, created_at) VALUES ('half', 1)")
            assert writer.loop_reads() is None
            assert reader.visitor("half", conn=writer.loop_reads()) is None
            conn.execute("ROLLBACK")
        finally:
            writer.close()
            reader.close()
        assert writer.loop_reads() is None  # closed: never a closed connection

    asyncio.run(scenario())


def test_the_wal_is_written_from_its_start_again_under_a_load_without_pauses(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A checkpoint beside writes that never pause copies all but the frames committed while it
    # ran, and SQLite writes the -wal from its start again only after a checkpoint that copied
    # everything: under a steady load it grew by every commit (a gigabyte in minutes of the
    # bench). Past a size, the thread's checkpoint finishes in the writers' turn.
    monkeypatch.setattr(writer_module._LoopLane, "CHECKPOINT_SECONDS", 0.0)
    monkeypatch.setattr(writer_module.Writer, "WAL_RESTART_FRAMES", 200)
    # The file system's sync before the turn takes a tenth of a second or more under this
    # load, which writes 50,000 frames a second: without it the bound below is tight.
    monkeypatch.setattr(writer_module, "_sync_file_system", lambda fd: None)
    conn = sqlite3.connect(db_path)
    with conn:
        conn.executemany(
            "INSERT INTO visitors (id, created_at, data) VALUES (?, 1, ?)",
            ((f"v{n:05}", "x" * 200) for n in range(20_000)),
        )
    conn.close()
    wal = f"{db_path}-wal"

    def visit(n: int) -> Callable[[sqlite3.Connection], None]:
        def unit(conn: sqlite3.Connection) -> None:  # rows all over the table: a page each
            for k in range(4):
                row = f"v{(n * 7919 + k * 4999) % 20_000:05}"
                conn.execute("UPDATE visitors SET page_views = page_views + 1 WHERE id = ?", (row,))

        return unit

    async def scenario() -> int:
        writer = store.Writer(db_path, linger=0.0)
        largest = 0

        async def visitor(first: int) -> None:  # one request after the other, as wrk sends them
            nonlocal largest
            deadline = asyncio.get_running_loop().time() + 2.0
            n = first
            while asyncio.get_running_loop().time() < deadline:
                await writer.write(visit(n), small=True)
                largest = max(largest, os.path.getsize(wal))
                n += 8

        try:
            await asyncio.gather(*(visitor(first) for first in range(8)))
            return largest
        finally:
            writer.close()

    largest = asyncio.run(scenario())
    assert largest // (4096 + 24) < 200 * 20  # without: 110,000 in the 2 s, and growing


def test_the_checkpoint_that_restarts_the_wal_keeps_the_workers_hold_on_the_database(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite's locks on the database file belong to the process: closing any descriptor of the
    # file drops them all, and another process closing its last connection then takes itself
    # for the last user and deletes the -wal under this one's commits.
    def elsewhere() -> set[str]:  # what another process reads, after which it closes
        code = (
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]);"
            " print(' '.join(sorted(r[0] for r in c.execute('SELECT id FROM visitors'))));"
            " c.close()"
        )
        run = subprocess.run([sys.executable, "-c", code, str(db_path)], capture_output=True)
        return set(run.stdout.decode().split())

    # The thread's own checkpoints stay away: this test runs the restart on its connection.
    monkeypatch.setattr(writer_module._LoopLane, "CHECKPOINT_SECONDS", float("inf"))
    writer = store.Writer(db_path, linger=0.0)
    try:

        async def commit(visitor: str) -> None:
            await writer.write(insert(visitor), small=True)

        asyncio.run(commit("v1"))
        writer._restart_wal(writer._conn, 1)  # what the thread does past WAL_RESTART_FRAMES
        assert elsewhere() == {"v1"}
        asyncio.run(commit("v2"))
        assert os.path.exists(f"{db_path}-wal")
        assert elsewhere() == {"v1", "v2"}
    finally:
        writer.close()
