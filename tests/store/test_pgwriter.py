"""The writer on PostgreSQL: group commit with the same answers as SQLite's writer, units that
lose a deadlock to another node run again, a lost connection is a 503 and the next group
connects again."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import psycopg
import pytest
from touchpoint import store
from touchpoint.errors import StorageUnavailable
from touchpoint.store.pgwriter import PgWriter


def lease(name: str, owner: str) -> Any:
    def unit(conn: Any) -> str:
        conn.execute(
            "INSERT INTO leases (name, owner, until) VALUES (?, ?, 0)"
            " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner",
            (name, owner),
        )
        return owner

    return unit


def owners(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT name, owner FROM leases").fetchall())


def test_a_group_is_committed_and_each_unit_answered(pg_url: str) -> None:
    async def scenario() -> list[Any]:
        writer = PgWriter(pg_url)
        try:
            return await asyncio.gather(*(writer.write(lease(f"l{i}", f"o{i}")) for i in range(50)))
        finally:
            writer.close()

    assert asyncio.run(scenario()) == [f"o{i}" for i in range(50)]
    assert owners(pg_url) == {f"l{i}": f"o{i}" for i in range(50)}


def test_a_failing_unit_is_rolled_back_alone(pg_url: str) -> None:
    def broken(conn: Any) -> None:
        conn.execute("INSERT INTO leases (name, owner, until) VALUES ('half', 'x', 0)")
        conn.execute("INSERT INTO no_such_table VALUES (1)")

    async def scenario() -> None:
        writer = PgWriter(pg_url)
        try:
            results = await asyncio.gather(
                writer.write(lease("a", "1")),
                writer.write(broken),
                writer.write(lease("b", "2")),
                return_exceptions=True,
            )
        finally:
            writer.close()
        assert results[0] == "1" and results[2] == "2"
        assert isinstance(results[1], psycopg.errors.UndefinedTable)

    asyncio.run(scenario())
    assert owners(pg_url) == {"a": "1", "b": "2"}


def test_a_unit_that_loses_a_deadlock_to_another_node_runs_again(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO leases VALUES ('x', '-', 0), ('y', '-', 0)")
    both_locked_one = threading.Barrier(2, timeout=10)
    runs = {"xy": 0, "yx": 0}

    def crosswise(first: str, second: str) -> Any:
        def unit(conn: Any) -> str:
            runs[first + second] += 1
            conn.execute("UPDATE leases SET owner = ? WHERE name = ?", (first + second, first))
            if runs[first + second] == 1:
                both_locked_one.wait()
            conn.execute("UPDATE leases SET owner = ? WHERE name = ?", (first + second, second))
            return first + second

        return unit

    async def node(first: str, second: str) -> str:
        writer = PgWriter(pg_url)
        try:
            return await writer.write(crosswise(first, second))
        finally:
            writer.close()

    async def scenario() -> list[str]:
        return await asyncio.gather(node("x", "y"), node("y", "x"))

    assert sorted(asyncio.run(scenario())) == ["xy", "yx"]
    assert sorted(runs.values()) == [1, 2]  # one of them lost the deadlock and ran again
    assert len(set(owners(pg_url).values())) == 1  # the second to commit wrote both rows


def test_a_lost_connection_is_refused_then_the_writer_connects_again(pg_url: str) -> None:
    async def scenario() -> None:
        writer = PgWriter(pg_url)
        try:
            pid = await writer.write(lambda c: c.execute("SELECT pg_backend_pid()").fetchone()[0])
            with psycopg.connect(pg_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            with pytest.raises(StorageUnavailable):
                await writer.write(lease("lost", "1"))
            assert writer.failing
            assert await writer.write(lease("kept", "2")) == "2"
            assert writer.failing is None
            assert await writer.probe() is None
        finally:
            writer.close()

    asyncio.run(scenario())
    assert owners(pg_url) == {"kept": "2"}


def test_the_reader_connects_again_after_its_connection_broke(pg_url: str) -> None:
    reader = store.Reader(pg_url)
    try:
        pid = reader.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg.OperationalError):
            reader.ping()  # the read that finds out fails, as the health check says
        reader.ping()
        assert reader.visitor("nobody") is None
    finally:
        reader.close()


def test_two_nodes_claiming_webhooks_at_once_lease_each_row_once(pg_url: str) -> None:
    first, second = store.connect(pg_url), store.connect(pg_url)
    for n in range(4):
        store.queue_webhook(first, endpoint="crm", event="e", key=f"k{n}", body="{}", now=1)
    claim = dict(endpoints=["crm"], now=10.0, lease_until=40.0, limit=2)
    first.execute("BEGIN")
    mine = store.claim_webhooks(first, owner="a", **claim)  # type: ignore[arg-type]
    theirs: list[Any] = []
    other = threading.Thread(
        target=lambda: theirs.extend(store.claim_webhooks(second, owner="b", **claim))  # type: ignore[arg-type]
    )
    other.start()
    other.join(timeout=2)
    first.execute("COMMIT")
    other.join(timeout=5)
    assert len(mine) == len(theirs) == 2
    assert not {row.id for row in mine} & {row.id for row in theirs}
    first.close()
    second.close()


def test_a_page_view_count_waits_for_its_commit_once_the_writer_is_behind(pg_url: str) -> None:
    """Backpressure: decide counts page views without waiting, until more than BACKLOG units
    wait for the writer; then it waits for its own, so that the queue stays bounded."""
    gate = threading.Event()

    async def scenario() -> None:
        writer = PgWriter(pg_url)
        writer.BACKLOG = 2
        try:
            blocker = asyncio.ensure_future(writer.write(lambda conn: gate.wait(5)))
            await asyncio.sleep(0.1)  # the thread is in the blocker's group
            await asyncio.wait_for(writer.submit_paced(lease("early", "x")), 0.5)  # not behind
            for n in range(3):
                writer.submit(lease(f"queued-{n}", "x"))
            paced = asyncio.ensure_future(writer.submit_paced(lease("paced", "y")))
            await asyncio.sleep(0.2)
            assert not paced.done()  # it waits: the writer is behind
            gate.set()
            await asyncio.wait_for(paced, 5)
            assert owners(pg_url)["paced"] == "y"  # committed when it returned
            await blocker
        finally:
            gate.set()
            writer.close()

    asyncio.run(scenario())
