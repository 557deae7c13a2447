"""``make bench``: /tp/v1/decide and /tp/v1/events against the routes they are held to (issue 19).

The yardsticks (floor.py): the floor route (the same body parsing, one primary-key read of the
visitor on the event loop, one write queued to a group-committing writer), the same route
evaluating the same campaigns with GrowthBook's Python SDK after the same read, and the
floor-events route; a bare Starlette route (bare.py) for scale; Touchpoint with its logic taken
out (logicfree.py) and at data_depth minimal, for what the goals can reach. Every server runs
as uvicorn (uvloop, httptools, no access log) on 127.0.0.1 against one database of 1,000,000
consented profiles, and all are up at once, so the loads take turns: ROUNDS interleaved rounds
of wrk (closed loop, 32 connections), medians reported, with the server's CPU time per request
read from /proc. Then the known visitor's decide at fixed rates (openloop.py, open loop) for
p50/p99/p99.9 and the knee (the first rate whose p99 passes 50 ms), the bytes per stored
event, the largest size of the ``-wal`` under the loads, two workers against one, the rate
limit across two workers, and the 200-campaign shop of rules_bench.py. One JSON line per
figure, the goals beside them; absolute numbers vary with the machine (and with whatever else
shares it), the ratios are the targets.

BENCH_PROFILES, BENCH_ROUNDS, BENCH_DURATION, BENCH_RATES and BENCH_OPEN_SECONDS shorten a run.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx2 as httpx
import rules_bench
from loads import Load, Server, emit, lua_script, open_loop, raw_requests, serve, wrk
from touchpoint.profiles.recognition import Recognizer
from touchpoint.store.migrations import WAL_LIMIT_BYTES

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PROFILES = int(os.environ.get("BENCH_PROFILES", 1_000_000))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 3))
DURATION = os.environ.get("BENCH_DURATION", "5s")
RATES = [int(r) for r in os.environ.get("BENCH_RATES", "250,500,1000,1500,2000,3000").split(",")]
OPEN_SECONDS = float(os.environ.get("BENCH_OPEN_SECONDS", 10))
COOKIES = 20_000  # distinct returning visitors the load cycles through
CONNECTIONS = 32
RATE_LIMIT = 600  # per minute, for the check across workers
GOALS = {
    "decide_over_floor": 0.6,
    "decide_over_growthbook": 1.0,
    "open_loop_1000_p99_ms": 10.0,
    "open_loop_1000_p999_ms": 30.0,
    "knee_per_s": 2000,
    "events_over_floor_events": 0.8,
    "bytes_per_event": 100,
    "two_workers_over_one": 1.7,
}
KNEE_P99_MS = 50.0
BODY = '{"page":{"path":"/demo/products/trail-runner.html","title":"Trail Runner X"}}'
# What a page's tracker sends when it is left: dwell time, scroll depth and two tracked clicks.
EVENTS_BODY = json.dumps(
    {
        "events": [
            {"type": "dwell", "value": 42, "path": "/demo/products/trail-runner.html"},
            {"type": "scroll", "value": 80, "path": "/demo/products/trail-runner.html"},
            {"type": "click", "name": "size-guide", "path": "/demo/products/trail-runner.html"},
            {"type": "click", "name": "add-to-cart", "path": "/demo/products/trail-runner.html"},
        ]
    },
    separators=(",", ":"),
)
CAMPAIGNS = 200  # the shop run: a generated shop with this many campaigns
SNIPPET_BUDGET = 8 * 1024  # min+gzip bytes of t.js, banner, exit intent, tracking, popups, CSS


def fill_database(path: Path) -> list[str]:
    """PROFILES consented visitors; a third saw the popup, a tenth closed it long ago."""
    from touchpoint import store

    store.migrate(path)
    conn = sqlite3.connect(path)
    now = int(time.time())
    rng = random.Random(7)
    ids = [secrets.token_urlsafe(16) for _ in range(PROFILES)]
    granted = '["marketing", "measurement", "personalisation"]'
    with conn:
        # Returning visitors: a profile of earlier visits, the last one a day ago.
        conn.executemany(
            "INSERT INTO visitors (id, created_at, consent_revision, consent_granted, consent_at,"
            " first_seen_at, last_seen_at, visits, page_views, session_started_at,"
            " session_page_views) VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    vid,
                    now - 86400 * 30,
                    granted,
                    now - 86400 * 30,
                    now - 86400 * 30,
                    now - 86400,
                    visits,
                    visits * 4,
                    now - 86400 - 600,
                    4,
                )
                for vid in ids
                for visits in (rng.randint(1, 8),)
            ),
        )
        conn.executemany(
            "INSERT INTO campaign_state (visitor_id, campaign, impressions, last_seen_at,"
            " last_closed_at) VALUES (?, 'first-order-coupon', 1, ?, ?)",
            (
                (vid, now - 30 * 86400, now - 30 * 86400 if rng.random() < 0.3 else None)
                for vid in ids
                if rng.random() < 0.33
            ),
        )
    conn.close()
    return rng.sample(ids, COOKIES)


def shop_request() -> tuple[str, dict[str, str]]:
    """The body and headers of rules_bench's representative page view (a category page)."""
    view = rules_bench.PAGES[rules_bench.REPRESENTATIVE]
    page = {"path": view.path, "title": view.title, "query": view.query, "referrer": view.referrer}
    body = json.dumps({"page": page, "context": view.context}, separators=(",", ":"))
    return body, {"User-Agent": view.user_agent, "Accept-Language": view.accept_language}


class Bench:
    def __init__(self, work: Path, secret: str, cookies: list[str]) -> None:
        sys.path.insert(0, str(ROOT / "tests"))
        from processes import free_port

        self.free_port = free_port
        self.work = work
        self.cookies = cookies
        self.servers: list[Server] = []
        base = {k: v for k, v in os.environ.items() if not k.startswith("TOUCHPOINT_")}
        self.env = {
            **base,
            "TOUCHPOINT_DATA_DIR": str(work),
            "TOUCHPOINT_SECRET_KEY": secret,
            "TOUCHPOINT_RULES_DIR": str(ROOT / "rules"),
            "TOUCHPOINT_LOG_LEVEL": "warning",
            # The limiter still runs on every request; it just never refuses the load generator.
            "TOUCHPOINT_RATE_LIMIT_PER_MINUTE": str(10**9),
        }
        self.floor_env = {
            **base,
            "FLOOR_DATABASE": str(work / "touchpoint.db"),
            "FLOOR_SECRET_KEY": secret,
            "FLOOR_RULES_DIR": str(ROOT / "rules"),
            "PYTHONPATH": str(HERE),
        }

    def uvicorn(self, name: str, app: str, env: dict[str, str], ready: str) -> Server:
        port = self.free_port()
        command = [sys.executable, "-m", "uvicorn", "--app-dir", str(HERE), app]
        flags = ["--loop", "uvloop", "--http", "httptools", "--no-access-log"]
        server = serve(
            name,
            [*command, "--port", str(port), *flags, "--log-level", "warning"],
            port,
            env,
            ready,
        )
        self.servers.append(server)
        return server

    def touchpoint(
        self, name: str, *flags: str, workers: int = 1, module: str = "touchpoint.cli", **env: str
    ) -> Server:
        """Touchpoint's server; ``module`` logicfree: the same with its logic taken out."""
        port = self.free_port()
        command = [sys.executable, "-m", module, "serve", "--port", str(port), *flags]
        command += ["--workers", str(workers)]
        path = {} if module == "touchpoint.cli" else {"PYTHONPATH": str(HERE)}
        server = serve(
            name, command, port, {**self.env, **path, **env}, "/tp/v1/decide", workers=workers
        )
        self.servers.append(server)
        return server

    def script(self, name: str, route: str, body: str, **kw: object) -> Path:
        cookies = kw.pop("cookies", self.cookies)
        return lua_script(self.work / f"{name}.lua", cookies, route=route, body=body, **kw)  # type: ignore[arg-type]

    def rounds(self, loads: list[Load]) -> None:
        for _ in range(ROUNDS):
            for load in loads:
                wrk(load, duration=DURATION, connections=CONNECTIONS)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        self.servers.clear()


def ratio(name: str, over: Load, under: Load, goal: float | None) -> float:
    value = over.median("requests_per_s") / under.median("requests_per_s")
    figures: dict[str, object] = {"name": name, "ratio": round(value, 3)}
    if goal is not None:
        figures.update(goal=goal, met=value >= goal)
    cpu = over.median("cpu_us") / under.median("cpu_us")
    emit(**figures, cpu_per_request_ratio=round(cpu, 3))
    return value


class WalWatch:
    """The largest size of the database's ``-wal`` while the loads run (sampled every 0.1 s):
    the writer keeps it near its limit under a load that never pauses (store/writer.py)."""

    def __init__(self, database: Path) -> None:
        self.path = Path(f"{database}-wal")
        self.largest = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> WalWatch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()
        limit = WAL_LIMIT_BYTES / 2**20
        emit(
            name="wal-size-under-load",
            largest_mib=round(self.largest / 2**20, 1),
            limit_mib=limit,
            met=self.largest <= 2 * WAL_LIMIT_BYTES,
        )

    def _watch(self) -> None:
        while not self.stopped.wait(0.1):
            with contextlib.suppress(OSError):
                self.largest = max(self.largest, self.path.stat().st_size)


def closed_loop(bench: Bench) -> None:
    """The known visitor's decide, the anonymous one and events, against their yardsticks."""
    bare = bench.uvicorn("bare", "bare:app", bench.floor_env, "/tp/v1/decide")
    floor = bench.uvicorn("floor", "floor:app", bench.floor_env, "/floor/decide")
    one = bench.touchpoint("touchpoint")
    two = bench.touchpoint("touchpoint-2-workers", workers=2)
    bound = bench.touchpoint("touchpoint-logic-free", module="logicfree")
    minimal = bench.touchpoint("touchpoint-minimal-depth", "--data-depth", "minimal")
    decide = bench.script("decide", "/tp/v1/decide", BODY)
    anonymous = bench.script("anonymous", "/tp/v1/decide", BODY, cookies=[])
    loads = {
        "bare": Load("bare-starlette", bare, decide),
        "floor": Load("floor-decide", floor, bench.script("floor", "/floor/decide", BODY)),
        "growthbook": Load(
            "growthbook-decide", floor, bench.script("gb", "/growthbook/decide", BODY)
        ),
        "known": Load("decide-known-visitor", one, decide),
        "anonymous": Load("decide-anonymous-no-consent", one, anonymous),
        "floor_events": Load(
            "floor-events", floor, bench.script("fe", "/floor/events", EVENTS_BODY)
        ),
        "events": Load(
            "events-behaviour-batch", one, bench.script("ev", "/tp/v1/events", EVENTS_BODY)
        ),
        "two": Load("decide-known-visitor-2-workers", two, decide),
        "bound": Load("decide-known-visitor-logic-free", bound, decide),
        "events_bound": Load(
            "events-behaviour-batch-logic-free",
            bound,
            bench.script("ev-bound", "/tp/v1/events", EVENTS_BODY),
        ),
        # data_depth minimal: no event log (a shop's choice, docs/privacy.md#data-depth).
        "minimal": Load("decide-known-visitor-minimal-depth", minimal, decide),
        "events_minimal": Load(
            "events-behaviour-batch-minimal-depth",
            minimal,
            bench.script("ev-minimal", "/tp/v1/events", EVENTS_BODY),
        ),
    }
    with WalWatch(bench.work / "touchpoint.db"):
        bench.rounds(list(loads.values()))
    for load in loads.values():
        emit(**load.summary())
    ratio("decide-over-floor", loads["known"], loads["floor"], GOALS["decide_over_floor"])
    gb_goal = GOALS["decide_over_growthbook"]
    ratio("decide-over-growthbook", loads["known"], loads["growthbook"], gb_goal)
    ratio("anonymous-decide-over-floor", loads["anonymous"], loads["floor"], None)
    ratio("floor-over-bare", loads["floor"], loads["bare"], None)
    ev_goal = GOALS["events_over_floor_events"]
    ratio("events-over-floor-events", loads["events"], loads["floor_events"], ev_goal)
    ratio("two-workers-over-one", loads["two"], loads["known"], GOALS["two_workers_over_one"])
    # What the first and the fifth goal can reach at most with these reads, writes and answers,
    # and how near they come without the event log.
    ratio("logic-free-decide-over-floor", loads["bound"], loads["floor"], None)
    ratio("logic-free-events-over-floor-events", loads["events_bound"], loads["floor_events"], None)
    ratio("decide-over-logic-free-decide", loads["known"], loads["bound"], None)
    ratio("minimal-depth-decide-over-floor", loads["minimal"], loads["floor"], None)
    ratio(
        "minimal-depth-events-over-floor-events",
        loads["events_minimal"],
        loads["floor_events"],
        None,
    )
    time.sleep(1)  # the writer commits the last queued page views
    event_bytes(bench.work / "touchpoint.db")
    fixed_rates(bench, one)
    bench.stop()


def fixed_rates(bench: Bench, server: Server) -> None:
    """The known visitor's decide at fixed rates, open loop: latency under queueing."""
    requests = raw_requests(
        bench.work / "decide.http", bench.cookies, route="/tp/v1/decide", body=BODY
    )
    held, passed = None, None  # the highest rate under KNEE_P99_MS, the first one over it
    for rate in RATES:
        figures = open_loop(server, requests, rate=rate, seconds=OPEN_SECONDS)
        if rate == 1000:
            figures["goal_p99_ms"] = GOALS["open_loop_1000_p99_ms"]
            figures["goal_p999_ms"] = GOALS["open_loop_1000_p999_ms"]
            figures["met"] = (
                figures["p99_ms"] <= GOALS["open_loop_1000_p99_ms"]
                and figures["p999_ms"] <= GOALS["open_loop_1000_p999_ms"]
            )
        emit(name="open-loop-decide-known-visitor", **figures)
        if figures["p99_ms"] > KNEE_P99_MS or figures["lost"]:
            passed = passed or rate
        elif passed is None:
            held = rate
    emit(
        name="open-loop-knee",
        p99_under_50_ms_up_to_per_s=held,
        p99_over_50_ms_from_per_s=passed,
        goal=GOALS["knee_per_s"],
        met=held is not None and held >= GOALS["knee_per_s"],
    )


def rate_limit_across_workers(bench: Bench) -> None:
    """One address hammering two workers gets one limit's worth of answers, not two."""
    server = bench.touchpoint(
        "touchpoint-limited", workers=2, TOUCHPOINT_RATE_LIMIT_PER_MINUTE=str(RATE_LIMIT)
    )
    load = Load("rate-limit", server, bench.script("limit", "/tp/v1/decide", BODY))
    seconds = 3
    wrk(load, duration=f"{seconds}s", connections=8, warm_up=None)
    answered = int(load.rounds[0]["requests"] - load.rounds[0]["non_2xx"])
    allowed = RATE_LIMIT + RATE_LIMIT * (seconds + 2) / 60  # the burst, and the refill
    emit(
        name="rate-limit-2-workers",
        per_minute=RATE_LIMIT,
        answered=answered,
        allowed=round(allowed),
        met=answered <= allowed,
    )
    bench.stop()


def shop(bench: Bench) -> None:
    """The 200-campaign shop: decide against the floor and GrowthBook on the same rules."""
    rules_dir = rules_bench.write_rules(bench.work / f"rules-{CAMPAIGNS}", CAMPAIGNS)
    body, headers = shop_request()
    env = {**bench.floor_env, "FLOOR_RULES_DIR": str(rules_dir)}
    floor = bench.uvicorn("floor-shop", "floor:app", env, "/floor/decide")
    one = bench.touchpoint("touchpoint-shop", "--rules-dir", str(rules_dir))
    cookie = bench.cookies[0]
    answer = httpx.post(
        f"{one.url}/tp/v1/decide",
        content=body,
        headers={**headers, "Cookie": cookie, "Content-Type": "text/plain"},
    )
    answer.raise_for_status()
    armed = [p["campaign"] for p in answer.json()["popups"]]
    loads = {
        "floor": Load(
            "floor-decide-shop", floor, bench.script("sf", "/floor/decide", body, headers=headers)
        ),
        "growthbook": Load(
            "growthbook-decide-shop",
            floor,
            bench.script("sg", "/growthbook/decide", body, headers=headers),
        ),
        "decide": Load(
            f"decide-{CAMPAIGNS}-campaigns",
            one,
            bench.script("sd", "/tp/v1/decide", body, headers=headers),
        ),
    }
    bench.rounds(list(loads.values()))
    for key, load in loads.items():
        emit(**load.summary(**({"popups_armed": armed} if key == "decide" else {})))
    ratio(f"decide-{CAMPAIGNS}-over-floor", loads["decide"], loads["floor"], None)
    ratio(f"decide-{CAMPAIGNS}-over-growthbook", loads["decide"], loads["growthbook"], None)
    bench.stop()


def event_bytes(path: Path) -> None:
    """Bytes the events table and its indexes hold per stored event (pages, not payload: what
    the file grows by), after the loads stored page views and behaviour."""
    conn = sqlite3.connect(path)
    try:
        (size,) = conn.execute(
            "SELECT sum(pgsize) FROM dbstat WHERE name = 'events'"
            " OR name IN (SELECT name FROM sqlite_schema WHERE tbl_name = 'events')"
        ).fetchone()
        counts = dict(conn.execute("SELECT type, count(*) FROM events GROUP BY type").fetchall())
    finally:
        conn.close()
    rows = sum(counts.values())
    per_event = round(size / rows) if rows else None
    goal = GOALS["bytes_per_event"]
    emit(
        name="stored-events",
        stored=counts,
        bytes_per_event=per_event,
        goal=goal,
        met=per_event is not None and per_event <= goal,
    )


def snippet_sizes() -> None:
    import gzip

    import brotli

    raw = (ROOT / "server" / "assets" / "t.js").read_bytes()
    gzipped = len(gzip.compress(raw, compresslevel=9))
    emit(
        name="snippet",
        raw_bytes=len(raw),
        gzip_bytes=gzipped,
        brotli_bytes=len(brotli.compress(raw, quality=11)),
        gzip_budget=SNIPPET_BUDGET,
        met=gzipped <= SNIPPET_BUDGET,
    )


def main() -> None:
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: `apt-get install wrk` (make bench does)")
    work = Path(tempfile.mkdtemp(prefix="touchpoint-bench-"))
    bench = None
    try:
        started = time.monotonic()
        sample = fill_database(work / "touchpoint.db")
        emit(
            name="database", profiles=PROFILES, seconds_to_fill=round(time.monotonic() - started, 1)
        )
        secret = secrets.token_urlsafe(48)
        signer = Recognizer(secret, cookie_name="tp_vid", max_age_days=1, secure="never").signer
        bench = Bench(work, secret, [f"tp_vid={signer.sign(v).decode()}" for v in sample])
        closed_loop(bench)
        rate_limit_across_workers(bench)
        shop(bench)
        snippet_sizes()
    finally:
        if bench is not None:
            bench.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
