"""Webhooks: signatures, backoff, the outbox, and delivery to a real HTTP receiver on 127.0.0.1,
in-process and through real server processes (restart, two workers)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks
from hypothesis import given
from hypothesis import strategies as st
from touchpoint import cli, store
from touchpoint.errors import ConfigError
from touchpoint.rules import ruleset as rules
from touchpoint.rules.site import load_site
from touchpoint.settings import Settings
from touchpoint.webhooks import delivery as webhooks
from touchpoint.webhooks import signing
from touchpoint.webhooks.delivery import Endpoint

from ..conftest import LIVE_DATABASES
from ..processes import ServerProcess, free_port

# A Standard Webhooks secret (touchpoint webhooks secret), as the receivers' libraries take it.
SECRET = "whsec_3Vb0VqW2lOqJ4e8p0oNn1bKX5m9Ew7Rk6yTzq2HfJcA="
FAST = {
    "webhook_backoff_seconds": 0.02,
    "webhook_backoff_max_seconds": 0.1,
    "webhook_poll_seconds": 0.02,
    "webhook_timeout_seconds": 2,
    "webhook_max_attempts": 5,
}


class Receiver:
    """A webhook receiver on 127.0.0.1 that answers 500 to its first ``fail_first`` requests
    and 204 after that; ``stop`` and ``start`` take it down and bring it back on its port."""

    def __init__(self, *, fail_first: int = 0, delay: float = 0.0) -> None:
        self.fail_first = fail_first
        self.delay = delay
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.start()

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    failing = len(receiver.requests) < receiver.fail_first
                    receiver.requests.append(
                        {
                            "body": body,
                            "event": self.headers["Touchpoint-Event"],
                            "delivery": self.headers["webhook-id"],
                            "headers": dict(self.headers),
                            "status": 500 if failing else 204,
                        }
                    )
                time.sleep(receiver.delay)
                self.send_response(500 if failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def delivered(self) -> list[str]:
        """The webhook-ids of the requests answered with 2xx."""
        with self.lock:
            return [r["delivery"] for r in self.requests if r["status"] < 300]


def ids(*keys: str) -> list[str]:
    """The webhook-ids of outbox rows queued with these idempotency keys, sorted."""
    return sorted(signing.message_id(key) for key in keys)


def verified(request: dict[str, Any], secret: str = SECRET) -> Any:
    """What a receiver does: the official Standard Webhooks library checks the request's
    headers against its raw body (and its timestamp against the clock), and parses it."""
    return standardwebhooks.Webhook(secret).verify(request["body"], request["headers"])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def fast_settings(tmp_path: Path, **extra: Any) -> Settings:
    return Settings.load({"data_dir": str(tmp_path / "data"), **FAST, **extra}, environ={})


def endpoint(url: str, *events: str, name: str = "crm") -> Endpoint:
    return Endpoint(name, url, SECRET, frozenset(events or webhooks.EVENTS), "CRM_SECRET")


def outbox(path: Path | str) -> list[dict[str, Any]]:
    conn = store.connect(path)
    try:
        cursor = conn.execute("SELECT * FROM webhook_outbox ORDER BY id")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]
    finally:
        conn.close()


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@contextlib.asynccontextmanager
async def delivering(
    settings: Settings, endpoints: dict[str, Endpoint], *, workers: int = 1
) -> AsyncIterator[tuple[store.Writer, list[webhooks.Deliverer]]]:
    """Deliverers as server workers run them, each with its own writer and reader."""
    path = settings.database_path
    store.migrate(path)
    writers = [store.Writer(path) for _ in range(workers)]
    readers = [store.Reader(path) for _ in range(workers)]
    deliverers = [
        webhooks.Deliverer(settings, w, r, lambda: endpoints)
        for w, r in zip(writers, readers, strict=True)
    ]
    for d in deliverers:
        d.start()
    try:
        yield writers[0], deliverers
    finally:
        for d in deliverers:
            await d.stop()
        for w, r in zip(writers, readers, strict=True):
            w.close()
            r.close()


async def queue(
    writer: store.Writer,
    endpoints: dict[str, Endpoint],
    n: int = 1,
    event: str = "stage.changed",
) -> list[str]:
    """Queue ``n`` webhooks through the writer, as the code reporting a change does."""
    keys = [f"test-{i}" for i in range(n)]

    def work(conn: sqlite3.Connection) -> int:
        return sum(
            webhooks.enqueue(
                conn, endpoints, event, {"visitor_id": f"v{i}", "n": i}, now=100, key=k
            )
            for i, k in enumerate(keys)
        )

    assert await writer.write(work) == n * len(endpoints)
    return keys


# --- signatures and backoff -------------------------------------------------------------------


@given(
    attempt=st.integers(1, 500),
    base=st.floats(0.001, 3600),
    cap=st.floats(0.001, 86400),
    rand=st.floats(0, 1, exclude_max=True),
)
def test_backoff_is_full_jitter_below_a_capped_exponential(
    attempt: int, base: float, cap: float, rand: float
) -> None:
    delay = webhooks.backoff(attempt, base=base, cap=cap, rand=lambda: rand)
    bound = min(cap, base * 2.0 ** (attempt - 1))
    assert 0 <= delay <= bound
    assert delay == pytest.approx(rand * bound)


# --- the outbox -------------------------------------------------------------------------------


def test_enqueue_queues_for_subscribed_endpoints_once_per_key(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    store.migrate(path)
    conn = store.connect(path)
    endpoints = {
        "crm": endpoint("http://127.0.0.1:1/", "stage.changed", name="crm"),
        "sales": endpoint("http://127.0.0.1:2/", "score.threshold", name="sales"),
    }
    assert webhooks.enqueue(conn, endpoints, "stage.changed", {"a": 1}, now=5, key="k1") == 1
    assert webhooks.enqueue(conn, endpoints, "stage.changed", {"a": 1}, now=6, key="k1") == 0
    assert webhooks.enqueue(conn, endpoints, "coupon.claimed", {}, now=5, key="k2") == 0
    # A threshold action names its endpoint: sent whatever the endpoint's events say.
    assert webhooks.enqueue(conn, endpoints, "coupon.claimed", {}, now=5, key="k3", to="crm") == 1
    assert webhooks.enqueue(conn, endpoints, "coupon.claimed", {}, now=5, key="k4", to="nope") == 0
    with pytest.raises(ValueError):
        webhooks.enqueue(conn, endpoints, "stage.changd", {}, now=5, key="k5")
    conn.close()
    rows = outbox(path)
    assert [(r["endpoint"], r["event"], r["key"], r["state"]) for r in rows] == [
        ("crm", "stage.changed", "k1", "pending"),
        ("crm", "coupon.claimed", "k3", "pending"),
    ]
    assert json.loads(rows[0]["body"]) == {
        "id": signing.message_id("k1"),  # the webhook-id header's value
        "event": "stage.changed",
        "created_at": 5,
        "data": {"a": 1},
    }


def test_enqueue_is_undone_with_the_change_it_reports(tmp_path: Path) -> None:
    async def scenario() -> None:
        path = tmp_path / "t.db"
        store.migrate(path)
        writer = store.Writer(path)
        endpoints = {"crm": endpoint("http://127.0.0.1:1/")}

        def change_then_fail(conn: sqlite3.Connection) -> None:
            webhooks.enqueue(conn, endpoints, "stage.changed", {}, now=1, key="k")
            raise RuntimeError("the change failed")

        with pytest.raises(RuntimeError):
            await writer.write(change_then_fail)
        writer.close()
        assert outbox(path) == []

    asyncio.run(scenario())


# --- site.yaml --------------------------------------------------------------------------------


def test_endpoints_are_read_from_site_yaml_with_the_secret_from_the_environment(
    rules_dir: Path,
) -> None:
    (rules_dir / "site.yaml").write_text(
        "webhooks:\n"
        "  sales:\n"
        "    url: https://crm.example/hook\n"
        "    secret_env: SALES_SECRET\n"
        "    events: [score.threshold, stage.changed]\n"
        "  quiet:\n"
        "    url: https://other.example/\n"
        "    secret_env: QUIET_SECRET\n"
    )
    problems: list[rules.Problem] = []
    site = load_site(rules_dir / "site.yaml", problems, environ={"SALES_SECRET": SECRET})
    assert site.webhooks["sales"] == Endpoint(
        "sales",
        "https://crm.example/hook",
        SECRET,
        frozenset({"score.threshold", "stage.changed"}),
        "SALES_SECRET",
    )
    assert not site.webhooks["quiet"].ready
    assert [str(p) for p in problems] == [
        f"{rules_dir}/site.yaml:8:5: warning: webhooks.quiet.secret_env: QUIET_SECRET is not "
        "set: webhooks to quiet are queued, and sent once the server runs with QUIET_SECRET set"
    ]


def test_endpoint_mistakes_point_at_file_and_line(rules_dir: Path) -> None:
    (rules_dir / "site.yaml").write_text(
        "webhooks:\n"
        "  sales:\n"
        "    url: crm.example/hook\n"
        "    secret: hunter2\n"
        "    events: [score.treshold]\n"
    )
    problems, ruleset = rules.check(rules_dir)
    assert ruleset is None
    text = "\n".join(str(p) for p in problems)
    assert "site.yaml:3:5: webhooks.sales.url: an http:// or https:// URL" in text
    assert "site.yaml:4:5: webhooks.sales.secret: unknown key — did you mean `secret_env`?" in text
    assert "site.yaml:2:3: webhooks.sales.secret_env: the name of the environment variable" in text
    assert "site.yaml:5:5: webhooks.sales.events: a list of events from: score.threshold" in text


def test_check_reports_an_unset_secret_and_still_passes(
    rules_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SALES_SECRET", raising=False)
    (rules_dir / "site.yaml").write_text(
        "webhooks:\n  sales: {url: 'https://crm.example/', secret_env: SALES_SECRET}\n"
    )
    assert cli.main(["check", "--rules-dir", str(rules_dir)]) == 0
    err = capsys.readouterr().err
    assert "warning: webhooks.sales.secret_env: SALES_SECRET is not set" in err


# --- delivery ---------------------------------------------------------------------------------


def test_failures_are_retried_and_delivered_once_with_one_key(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.fail_first = 3
    settings = fast_settings(tmp_path)
    endpoints = {"crm": endpoint(receiver.url)}

    async def scenario() -> None:
        async with delivering(settings, endpoints) as (writer, _):
            await queue(writer, endpoints)
            await until(lambda: bool(receiver.delivered()))
            await asyncio.sleep(0.2)  # nothing more arrives

    asyncio.run(scenario())
    assert [r["status"] for r in receiver.requests] == [500, 500, 500, 204]
    assert {r["delivery"] for r in receiver.requests} == set(ids("test-0"))
    timestamps = [int(r["headers"]["webhook-timestamp"]) for r in receiver.requests]
    assert max(timestamps) - min(timestamps) <= 2 and abs(time.time() - timestamps[-1]) < 5
    assert {r["event"] for r in receiver.requests} == {"stage.changed"}
    for r in receiver.requests:
        assert verified(r)["id"] == r["delivery"]
    assert json.loads(receiver.requests[-1]["body"])["data"] == {"visitor_id": "v0", "n": 0}
    [row] = outbox(settings.database_url)
    assert (row["state"], row["attempts"], row["last_status"]) == ("delivered", 4, 204)
    assert row["lease_owner"] is None


def test_a_receiver_down_for_a_while_gets_everything_when_it_is_back(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.stop()
    settings = fast_settings(tmp_path, webhook_max_attempts=100)
    endpoints = {"crm": endpoint(receiver.url)}

    async def scenario() -> None:
        async with delivering(settings, endpoints) as (writer, _):
            keys = await queue(writer, endpoints, 3)
            await until(lambda: all(r["attempts"] >= 3 for r in outbox(settings.database_url)))
            receiver.start()
            await until(lambda: sorted(receiver.delivered()) == ids(*keys))

    asyncio.run(scenario())
    rows = outbox(settings.database_url)
    assert {r["state"] for r in rows} == {"delivered"}
    assert sorted(receiver.delivered()) == ids("test-0", "test-1", "test-2")


def test_after_max_attempts_a_webhook_is_failed_listed_and_can_be_retried(
    tmp_path: Path,
    receiver: Receiver,
    rules_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    receiver.fail_first = 3
    settings = fast_settings(tmp_path, webhook_max_attempts=3)
    endpoints = {"crm": endpoint(receiver.url)}
    data = ["--data-dir", str(settings.data_dir), "--rules-dir", str(rules_dir)]

    async def fail() -> None:
        async with delivering(settings, endpoints) as (writer, _):
            await queue(writer, endpoints)
            await until(lambda: outbox(settings.database_url)[0]["state"] == "failed")

    asyncio.run(fail())
    assert len(receiver.requests) == 3
    assert cli.main(["webhooks", *data]) == 0
    out = capsys.readouterr().out
    assert "crm" in out and "not in site.yaml" in out
    assert "#1 crm stage.changed — failed after 3 attempt(s): HTTP 500" in out
    assert cli.main(["webhooks", "--json", *data]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["endpoints"]["crm"]["failed"] == 1
    assert listed["rows"][0]["last_error"] == "HTTP 500"

    assert cli.main(["webhooks", "retry", "--all-failed", *data]) == 0
    assert "1 webhook(s) queued again" in capsys.readouterr().out

    async def deliver() -> None:
        async with delivering(settings, endpoints):
            await until(lambda: outbox(settings.database_url)[0]["state"] == "delivered")

    asyncio.run(deliver())
    assert receiver.delivered() == ids("test-0")
    assert cli.main(["webhooks", "retry", "1", *data]) == 1  # delivered: nothing to retry


def test_two_workers_deliver_each_webhook_once(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.delay = 0.05  # requests overlap the other worker's claims
    settings = fast_settings(tmp_path)
    endpoints = {"crm": endpoint(receiver.url)}
    clients: set[int] = set()  # each worker has its own HTTP client
    post = webhooks.post

    async def spy(client: Any, *args: Any, **kwargs: Any) -> webhooks.Outcome:
        clients.add(id(client))
        return await post(client, *args, **kwargs)

    monkeypatch.setattr(webhooks, "post", spy)

    async def scenario() -> list[str]:
        async with delivering(settings, endpoints, workers=2) as (writer, _):
            keys = await queue(writer, endpoints, 60)
            await until(lambda: len(receiver.delivered()) >= 60)
            await asyncio.sleep(0.2)
            return keys

    keys = asyncio.run(scenario())
    assert sorted(receiver.delivered()) == ids(*keys)
    assert len(clients) == 2  # both took part


def test_a_row_claimed_by_a_crashed_worker_is_delivered_when_its_lease_runs_out(
    tmp_path: Path, receiver: Receiver
) -> None:
    settings = fast_settings(tmp_path)
    endpoints = {"crm": endpoint(receiver.url)}
    path = settings.database_path
    store.migrate(path)
    conn = store.connect(path)
    webhooks.enqueue(conn, endpoints, "form.submitted", {}, now=1, key="k")
    lease_until = time.time() + 0.5
    [claimed] = store.claim_webhooks(
        conn, ["crm"], now=time.time(), owner="crashed", lease_until=lease_until, limit=5
    )
    conn.close()

    async def scenario() -> None:
        async with delivering(settings, endpoints):
            await until(lambda: bool(receiver.delivered()))

    asyncio.run(scenario())
    assert time.time() >= lease_until
    assert receiver.delivered() == ids("k")
    assert outbox(path)[0]["attempts"] == 2  # the crashed worker's attempt counts


def test_stopping_hands_requests_in_flight_back(tmp_path: Path, receiver: Receiver) -> None:
    receiver.delay = 10  # far beyond the stop, even on a loaded machine
    settings = fast_settings(tmp_path, webhook_timeout_seconds=20)
    endpoints = {"crm": endpoint(receiver.url)}

    async def scenario() -> None:
        async with delivering(settings, endpoints) as (writer, [deliverer]):
            await queue(writer, endpoints)
            await until(lambda: bool(deliverer.in_flight))

    started = time.monotonic()
    asyncio.run(scenario())
    assert time.monotonic() - started < 8  # did not wait for the answer
    [row] = outbox(settings.database_url)
    assert (row["state"], row["attempts"], row["lease_owner"]) == ("pending", 0, None)


def test_an_endpoint_without_its_secret_keeps_its_rows_waiting(
    tmp_path: Path, receiver: Receiver
) -> None:
    settings = fast_settings(tmp_path)
    waiting = {"crm": Endpoint("crm", receiver.url, "", frozenset(webhooks.EVENTS), "CRM")}

    async def scenario() -> None:
        async with delivering(settings, waiting) as (writer, _):
            await queue(writer, waiting)
            await asyncio.sleep(0.3)

    asyncio.run(scenario())
    assert receiver.requests == []
    assert outbox(settings.database_url)[0]["attempts"] == 0


def test_delivered_rows_are_pruned_after_keep_days(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    store.migrate(path)
    conn = store.connect(path)
    endpoints = {"crm": endpoint("http://127.0.0.1:1/")}
    for key in ("old", "new", "failed"):
        webhooks.enqueue(conn, endpoints, "stage.changed", {}, now=1, key=key)
    store.webhook_delivered(conn, 1, now=100, status=200)
    store.webhook_delivered(conn, 2, now=300, status=200)
    conn.execute("UPDATE webhook_outbox SET state = 'failed' WHERE key = 'failed'")
    assert store.prune_webhooks(conn, delivered_before=200) == 1
    assert [r["key"] for r in outbox(path)] == ["new", "failed"]
    conn.close()


# --- real server processes --------------------------------------------------------------------


class Server(ServerProcess):
    """``touchpoint serve`` in a subprocess with an endpoint ``crm`` for ``receiver``, its secret
    in the environment and fast retries."""

    def __init__(self, tmp: Path, rules_dir: Path, receiver: Receiver, *args: str) -> None:
        (rules_dir / "site.yaml").write_text(
            "webhooks:\n"
            f"  crm: {{url: '{receiver.url}', secret_env: CRM_SECRET, events: [stage.changed]}}\n"
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = tmp / "live-data"
        self.log_path = tmp / "live-server.log"
        self.database = str(self.data_dir / "touchpoint.db")
        if LIVE_DATABASES.cluster is not None:
            self.database = LIVE_DATABASES.url(self.data_dir)
            args = (*args, f"--database={self.database}")
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOUCHPOINT_")}
        env["CRM_SECRET"] = SECRET
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in FAST.items()]
        command = [
            sys.executable,
            "-m",
            "touchpoint.cli",
            "serve",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--rules-dir",
            str(rules_dir),
            *flags,
            "--workers=1",  # unless the test asks for more: its --workers comes later and wins
            *args,
        ]
        self.start(command, ready_path="/tp/healthz", env=env)


def queue_from_outside(path: Path | str, n: int) -> list[str]:
    """Queue webhooks from another connection, as another process sharing the database would."""
    endpoints = {"crm": endpoint("unused", "stage.changed")}
    conn = store.connect(path)
    keys = [f"live-{i}" for i in range(n)]
    with store.immediate(conn):
        for key in keys:
            webhooks.enqueue(conn, endpoints, "stage.changed", {"key": key}, now=1, key=key)
    conn.close()
    return keys


def test_pending_webhooks_are_delivered_after_a_restart(
    tmp_path: Path, rules_dir: Path, receiver: Receiver
) -> None:
    receiver.stop()
    server = Server(tmp_path, rules_dir, receiver, "--webhook-max-attempts=1000")
    path = server.database
    try:
        keys = queue_from_outside(path, 5)
        wait_until(lambda: all(r["attempts"] >= 2 for r in outbox(path)))
    finally:
        server.stop()
    rows = outbox(path)
    assert {r["state"] for r in rows} == {"pending"}
    assert {r["lease_owner"] for r in rows} == {None}
    assert receiver.requests == []
    receiver.start()
    server = Server(tmp_path, rules_dir, receiver)
    try:
        wait_until(lambda: sorted(receiver.delivered()) == ids(*keys))
        wait_until(lambda: {r["state"] for r in outbox(path)} == {"delivered"})
    finally:
        server.stop()
    for r in receiver.requests:
        verified(r)


def test_two_server_workers_deliver_each_webhook_once(
    tmp_path: Path, rules_dir: Path, receiver: Receiver
) -> None:
    receiver.delay = 0.02
    server = Server(tmp_path, rules_dir, receiver, "--workers=2")
    path = server.database
    try:
        keys = queue_from_outside(path, 40)
        wait_until(lambda: len(receiver.delivered()) >= 40)
        time.sleep(0.3)
    finally:
        server.stop()
    assert sorted(receiver.delivered()) == ids(*keys)


def test_the_documented_site_yaml_loads_and_matches_the_schema(
    rules_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jsonschema
    import yaml
    from touchpoint.rules.schema import site_schema

    text = (Path(__file__).parent.parent.parent / "docs" / "webhooks.md").read_text()
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    jsonschema.validate(yaml.safe_load(example), site_schema())
    (rules_dir / "site.yaml").write_text(example)
    monkeypatch.setenv("TOUCHPOINT_WEBHOOK_SALES_SECRET", SECRET)
    monkeypatch.setenv("NEWSLETTER_WEBHOOK_SECRET", signing.generate_secret())
    problems, ruleset = rules.check(rules_dir)
    assert problems == [] and ruleset is not None
    assert {n: e.ready for n, e in ruleset.site.webhooks.items()} == {
        "sales": True,
        "newsletter": True,
    }
    wrong = {"webhooks": {"sales": {"url": "https://x.example/", "secret": "hunter2"}}}
    assert not jsonschema.Draft202012Validator(site_schema()).is_valid(wrong)


def test_webhooks_command_without_a_database_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["webhooks", "--data-dir", str(tmp_path / "none")]) == 1
    assert "no database at" in capsys.readouterr().err


def test_webhook_settings_take_fractions_of_seconds() -> None:
    settings = Settings.load(
        {"webhook_backoff_seconds": "0.25"}, environ={"TOUCHPOINT_WEBHOOK_TIMEOUT_SECONDS": "1.5"}
    )
    assert (settings.webhook_backoff_seconds, settings.webhook_timeout_seconds) == (0.25, 1.5)
    for bad in ("soon", "nan", "0", "-1"):
        with pytest.raises(ConfigError):
            Settings.load({"webhook_backoff_seconds": bad}, environ={})


def test_erasing_a_visitor_deletes_their_webhooks(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    store.migrate(path)
    conn = store.connect(path)
    endpoints = {"crm": endpoint("http://127.0.0.1:1/")}
    for visitor in ("v1", "v2", "v1"):
        key = f"{visitor}-{len(outbox(path))}"
        webhooks.enqueue(conn, endpoints, "stage.changed", {"visitor_id": visitor}, now=1, key=key)
    webhooks.enqueue(conn, endpoints, "coupon.redeemed", {"code": "X"}, now=1, key="anon")
    assert store.erase_webhooks(conn, "v1") == 2
    assert [r["key"] for r in outbox(path)] == ["v2-1", "anon"]
    conn.close()


def test_a_slow_endpoint_does_not_hold_up_another(tmp_path: Path, receiver: Receiver) -> None:
    slow = Receiver(delay=3)
    settings = fast_settings(tmp_path, webhook_timeout_seconds=5)
    endpoints = {"slow": endpoint(slow.url, name="slow"), "crm": endpoint(receiver.url)}

    async def scenario() -> None:
        async with delivering(settings, endpoints) as (writer, _):
            await queue(writer, {"slow": endpoints["slow"]}, 3)
            await until(lambda: len(slow.requests) == 3)
            await queue(writer, {"crm": endpoints["crm"]}, 3)
            await until(lambda: len(receiver.delivered()) == 3, timeout=2)

    try:
        asyncio.run(scenario())
    finally:
        slow.stop()
