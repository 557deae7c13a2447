"""``make bench``, results: what a report costs and what rolling up costs a stored event.

- Reports over a year of a large shop: 200 campaigns x 3 variants x 365 days of rollups (and
  revenue rows), the campaigns overview, one campaign's experiment and the lifecycle, each the
  median of several runs. Goal: well under 100 ms.
- Rolling up: the CPU time per stored campaign event (impressions, closes, converts of 20,000
  visitors) with the rollups, against the same work with the rollup step left out, in the same
  run, interleaved rounds: through POST /tp/v1/events in-process (the route, the writer and its
  group commit: what a server spends per event; goal: at most 10% more), and for the writer's
  statements alone (the strictest view, reported beside it).

Prints one JSON line per figure.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, timedelta
from pathlib import Path
from typing import Any

from touchpoint import store
from touchpoint.app import create_app
from touchpoint.results import report
from touchpoint.rules import ruleset
from touchpoint.rules.ruleset import Ruleset
from touchpoint.settings import Settings
from touchpoint.store import rollups, visitors

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGNS, VARIANTS, DAYS = 200, ("control", "a", "b"), 365
REPORT_GOAL_MS = 100
ROLLUP_GOAL = 1.10
VISITORS = 20_000
ROUNDS = 5


def emit(**figures: object) -> None:
    print(json.dumps(figures), flush=True)


def fill_rollups(conn: Any) -> None:
    start = date(2026, 1, 1)
    chance = random.Random(1)
    rows = []
    days = [(start + timedelta(days=day)).isoformat() for day in range(DAYS)]
    for on in days:
        for c in range(CAMPAIGNS):
            for variant in VARIANTS:
                exposed = chance.randint(50, 500)
                rows.append((on, f"campaign-{c:03d}", variant, 1, exposed, exposed, exposed // 10))
    conn.executemany(
        "INSERT INTO rollup_campaigns (day, campaign, variant, version, exposures,"
        " unique_exposed, unique_converted) VALUES (?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.execute(
        "INSERT INTO rollup_campaign_months SELECT campaign, version, variant, substr(day, 1, 7),"
        + ", ".join(f"sum({name})" for name in store.CAMPAIGN_COUNTS)
        + " FROM rollup_campaigns GROUP BY 1, 2, 3, 4"
    )
    stages = ("", "visitor", "lead", "new-customer", "customer", "inactive", "win-back")
    moves = [(b, a) for b in stages for a in stages[1:] if a != b]  # "" is a new profile
    conn.executemany(
        "INSERT INTO rollup_stages (day, before, after, moves) VALUES (?, ?, ?, ?)",
        [(on, b, a, chance.randint(1, 90)) for on in days for b, a in moves],
    )
    conn.executemany(
        "INSERT INTO rollup_thresholds (day, threshold, crossings) VALUES (?, 'hot-lead', ?)",
        [(on, chance.randint(0, 40)) for on in days],
    )
    conn.executemany(
        "INSERT INTO rollup_revenue (day, campaign, variant, version, currency, redemptions,"
        " revenue, revenue_squares) VALUES (?, ?, ?, ?, 'EUR', 3, 150.0, 7500.0)",
        [r[:4] for r in rows[:: len(VARIANTS)]],
    )


def experiment_rules(folder: Path) -> Ruleset:
    """The shop's rules: each campaign an experiment of two variants against a holdout, so
    that the overview's verdicts are computed too."""
    shutil.copytree(ROOT / "rules" / "templates", folder / "templates")
    for c in range(CAMPAIGNS):
        (folder / f"campaign-{c:03d}.yaml").write_text(
            f"campaign: campaign-{c:03d}\ntrigger: load\naudience: {{page.path: /c{c}/*}}\n"
            "goal: {event: purchase}\nvariants:\n"
            "  - {id: control, control: true}\n"
            "  - {id: a, template: first-order-coupon.html}\n"
            "  - {id: b, template: first-order-coupon.html}\n"
        )
    return ruleset.load(folder)


def median_ms(fn: Callable[[], object], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def reports(work: Path) -> None:
    path = work / "reports.db"
    store.migrate(path)
    conn = store.connect(path)
    with store.immediate(conn):
        fill_rollups(conn)
    rules = experiment_rules(work / "rules")
    year = report.Range(date(2026, 1, 1), date(2026, 12, 31))
    for name, fn in (
        ("campaigns", lambda: report.campaigns(conn, rules, year)),
        ("campaign", lambda: report.campaign_report(conn, rules, "campaign-007", year)),
        ("lifecycle", lambda: report.lifecycle(conn, rules, year)),
    ):
        ms = median_ms(fn)
        emit(
            name=f"report-{name}",
            campaigns=CAMPAIGNS,
            days=DAYS,
            rollup_rows=CAMPAIGNS * len(VARIANTS) * DAYS,
            ms=ms,
            goal_ms=REPORT_GOAL_MS,
            met=ms < REPORT_GOAL_MS,
        )


def rollup_cost(work: Path) -> None:
    """The writer's statements alone: record_events in transactions of 32 visitors."""
    path = work / "events.db"
    store.migrate(path)
    conn = store.connect(path)
    ids = [f"v{i:06d}" for i in range(VISITORS)]
    with store.immediate(conn):
        for visitor in ids:
            store.record_consent(
                conn, visitor, at=1, revision=1, granted={"marketing"}, denied=set(), method="api"
            )
    kinds = ("impression", "impression", "close", "convert")
    at = int(time.time())
    group = 32  # visitors' batches per transaction, as the writer groups them under load

    def one_round() -> float:
        """CPU seconds per stored event."""
        started = time.process_time()
        for first in range(0, len(ids), group):
            with store.immediate(conn):
                for n in range(first, first + group):
                    batch = [
                        store.Event(kind, f"campaign-{n % 20:02d}", "a", "/p", version=1)
                        for kind in kinds
                    ]
                    visitors.record_events(conn, ids[n], batch, at=at, visit_start=at, tz=UTC)
        return (time.process_time() - started) / (len(ids) * len(kinds))

    def without_rollups() -> float:
        """The same writes with the rollup step left out (the state rows' ``was_first`` stays)."""
        saved = rollups.add
        rollups.add = lambda *args: None
        try:
            return one_round()
        finally:
            rollups.add = saved

    rolled, plain = [], []
    for _ in range(ROUNDS):
        rolled.append(one_round())
        plain.append(without_rollups())
    with_rollups, without = statistics.median(rolled), statistics.median(plain)
    ratio = with_rollups / without
    emit(
        name="rollup-cost-per-campaign-event-writer",
        cpu_us_with_rollups=round(with_rollups * 1e6, 1),
        cpu_us_without=round(without * 1e6, 1),
        ratio=round(ratio, 3),
        note="the writer's statements alone; the goal is the route's figure",
    )


def route_rollup_cost(work: Path) -> None:
    """The events route's CPU per stored campaign event, with and without the rollups."""
    settings = Settings.load(
        {
            "data_dir": str(work / "route-data"),
            "rules_dir": str(work / "rules"),
            "rate_limit_per_minute": 10**9,
        },
        environ={},
    )
    Path(settings.data_dir).mkdir()
    path = Path(settings.data_dir) / "touchpoint.db"
    store.migrate(path)
    ids = [f"v{i:06d}" for i in range(VISITORS // 2)]
    with store.database(path) as conn, store.immediate(conn):
        for visitor in ids:
            store.record_consent(
                conn, visitor, at=1, revision=1, granted={"marketing"}, denied=set(), method="api"
            )
    app = create_app(settings)
    rounds: dict[str, list[float]] = {"with": [], "without": []}
    asyncio.run(_event_rounds(app, ids, rounds))
    with_rollups, without = (statistics.median(rounds[k]) for k in ("with", "without"))
    ratio = with_rollups / without
    emit(
        name="rollup-cost-per-campaign-event-route",
        cpu_us_with_rollups=round(with_rollups * 1e6, 1),
        cpu_us_without=round(without * 1e6, 1),
        ratio=round(ratio, 3),
        goal=ROLLUP_GOAL,
        met=ratio <= ROLLUP_GOAL,
    )


async def _event_rounds(app: Any, ids: list[str], rounds: dict[str, list[float]]) -> None:
    """Lifespan, then interleaved rounds of every visitor's batch of campaign events, 32
    requests at a time (so the writer groups them as under load)."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started, stopped = asyncio.Event(), asyncio.Event()

    async def lifespan_send(message: dict[str, Any]) -> None:
        (started if message["type"].startswith("lifespan.startup") else stopped).set()

    await inbox.put({"type": "lifespan.startup"})
    lifespan = asyncio.create_task(app({"type": "lifespan"}, inbox.get, lifespan_send))
    await started.wait()
    sign = app.state.tp.recognizer.signer.sign
    cookies = [b"tp_vid=" + sign(visitor) for visitor in ids]
    kinds = ("impression", "impression", "close", "convert")

    async def post(n: int) -> None:
        campaign = f"campaign-{n % 20:03d}"
        body = json.dumps(
            {"events": [{"type": k, "campaign": campaign, "variant": "a"} for k in kinds]}
        ).encode()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/tp/v1/events",
            "raw_path": b"/tp/v1/events",
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1:8000"),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cookie", cookies[n]),
            ],
            "client": ("127.0.0.1", 40000 + n % 20000),
            "server": ("127.0.0.1", 8000),
        }
        answer: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            answer.append(message)

        await app(scope, receive, send)
        if answer[0]["status"] not in (200, 202):
            raise SystemExit(f"events route answered {answer[0]['status']}: {answer[1]}")

    async def one_round() -> float:
        started = time.process_time()
        for first in range(0, len(ids), 32):
            await asyncio.gather(*(post(n) for n in range(first, min(first + 32, len(ids)))))
        return (time.process_time() - started) / (len(ids) * len(kinds))

    for _ in range(ROUNDS):
        rounds["with"].append(await one_round())
        saved = rollups.add
        rollups.add = lambda *args: None
        try:
            rounds["without"].append(await one_round())
        finally:
            rollups.add = saved
    await inbox.put({"type": "lifespan.shutdown"})
    await stopped.wait()
    await lifespan


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="touchpoint-results-bench-") as tmp:
        reports(Path(tmp))
        route_rollup_cost(Path(tmp))
        rollup_cost(Path(tmp))


if __name__ == "__main__":
    main()
