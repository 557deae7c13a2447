"""``make bench``: /tp/v1/decide against a bare Starlette route, on the same server settings.

Both servers run as one uvicorn worker (uvloop, httptools, no access log) on 127.0.0.1 and are
loaded by wrk from a second process with the same request: a POST of a page context carrying
the signed cookie of a random returning visitor out of a database of 1,000,000 profiles. Decide
runs twice: with the example rules in rules/, then with the 200 campaigns of the shop that
rules_bench.py generates, for a category page several of them target. Event ingestion: wrk posts
the batch a tracked page sends when it is left (dwell, scroll depth, two clicks) to
/tp/v1/events, against the bare route with the same body. After the decide load, the database's
bytes per stored event are read from SQLite's dbstat. Prints one JSON line per figure; absolute
numbers vary with the machine, the ratios are the targets.
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2 as httpx
import rules_bench
from touchpoint.profiles.recognition import Recognizer

ROOT = Path(__file__).resolve().parents[2]
PROFILES = int(os.environ.get("BENCH_PROFILES", 1_000_000))
COOKIES = 20_000  # distinct returning visitors the load cycles through
DURATION = os.environ.get("BENCH_DURATION", "10s")
CONNECTIONS = 32
GOAL = 0.5
INGEST_GOAL = 0.7
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
CAMPAIGNS = 200  # the second decide run: a generated shop with this many campaigns
SNIPPET_BUDGET = 8 * 1024  # min+gzip bytes of t.js, banner, exit intent, tracking, popups, CSS


def emit(**figures: object) -> None:
    print(json.dumps(figures), flush=True)


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


def lua_script(
    path: Path,
    cookies: list[str],
    cookie_name: str,
    *,
    body: str = BODY,
    headers: dict[str, str] | None = None,
    route: str = "/tp/v1/decide",
) -> None:
    entries = ",\n".join(f'"{cookie_name}={c}"' for c in cookies)
    extra = "".join(f", [{json.dumps(k)}] = {json.dumps(v)}" for k, v in (headers or {}).items())
    path.write_text(
        f"local cookies = {{\n{entries}\n}}\n"
        f"local body = {json.dumps(body)}\n"
        "math.randomseed(42)\n"
        "request = function()\n"
        "  local cookie = cookies[math.random(#cookies)]\n"
        f"  local headers = {{['Content-Type'] = 'text/plain', ['Cookie'] = cookie{extra}}}\n"
        f"  return wrk.format('POST', '{route}', headers, body)\n"
        "end\n"
    )


def shop_request() -> tuple[str, dict[str, str]]:
    """The body and headers of rules_bench's representative page view (a category page)."""
    view = rules_bench.PAGES[rules_bench.REPRESENTATIVE]
    page = {"path": view.path, "title": view.title, "query": view.query, "referrer": view.referrer}
    body = json.dumps({"page": page, "context": view.context}, separators=(",", ":"))
    return body, {"User-Agent": view.user_agent, "Accept-Language": view.accept_language}


def wait_for(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"server exited with {process.returncode}")
        try:
            httpx.post(url, content=BODY)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    sys.exit(f"server at {url} did not start")


def load(port: int, script: Path, name: str, **extra: object) -> dict[str, float]:
    url = f"http://127.0.0.1:{port}"
    wrk = ["wrk", "-t1", f"-c{CONNECTIONS}", "-s", str(script), "--latency"]
    subprocess.run([*wrk, "-d2s", url], check=True, capture_output=True)  # warm up
    out = subprocess.run(
        [*wrk, f"-d{DURATION}", url], check=True, capture_output=True, text=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    figures = {
        "name": name,
        "requests_per_s": round(rps),
        "p50_ms": latency(out, "50%"),
        "p99_ms": latency(out, "99%"),
        "non_2xx": int(errors.group(1)) if errors else 0,
        **extra,
    }
    emit(**figures)
    return figures


def latency(out: str, percentile: str) -> float:
    value, unit = re.search(rf"^\s+{percentile}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
    return round(float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], 3)


def serve(command: list[str], port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for(f"http://127.0.0.1:{port}/tp/v1/decide", process)
    return process


def main() -> None:
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: `apt-get install wrk` (make bench does)")
    sys.path.insert(0, str(ROOT / "tests"))
    from processes import free_port  # noqa: E402

    work = Path(tempfile.mkdtemp(prefix="touchpoint-bench-"))
    try:
        started = time.monotonic()
        sample = fill_database(work / "touchpoint.db")
        emit(
            name="database", profiles=PROFILES, seconds_to_fill=round(time.monotonic() - started, 1)
        )
        secret = secrets.token_urlsafe(48)
        signer = Recognizer(secret, cookie_name="tp_vid", max_age_days=1, secure="never").signer
        script = work / "load.lua"
        cookies = [signer.sign(v).decode() for v in sample]
        lua_script(script, cookies, "tp_vid")
        events_script = work / "events.lua"
        lua_script(events_script, cookies, "tp_vid", body=EVENTS_BODY, route="/tp/v1/events")
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOUCHPOINT_")}
        python = sys.executable
        uvicorn_flags = [
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ]

        port = free_port()
        bare = serve(
            [
                python,
                "-m",
                "uvicorn",
                "--app-dir",
                str(Path(__file__).parent),
                "bare:app",
                "--port",
                str(port),
                *uvicorn_flags,
            ],
            port,
            env,
        )
        try:
            baseline = load(port, script, "bare-starlette")
            events_baseline = load(port, events_script, "bare-starlette-events-body")
        finally:
            bare.terminate()
            bare.wait()

        port = free_port()
        env.update(
            TOUCHPOINT_DATA_DIR=str(work),
            TOUCHPOINT_SECRET_KEY=secret,
            TOUCHPOINT_RULES_DIR=str(ROOT / "rules"),
            TOUCHPOINT_LOG_LEVEL="warning",
            # The limiter still runs on every request; it just never refuses the load generator.
            TOUCHPOINT_RATE_LIMIT_PER_MINUTE=str(10**9),
        )
        app = serve([python, "-m", "touchpoint.cli", "serve", "--port", str(port)], port, env)
        try:
            decide = load(port, script, "decide-returning-visitor")
            time.sleep(1)  # the writer commits the last queued page views
            page_view_bytes(work / "touchpoint.db")
            ingest = load(port, events_script, "events-behaviour-batch", events_per_request=4)
        finally:
            app.terminate()
            app.wait()
        ratio = ingest["requests_per_s"] / events_baseline["requests_per_s"]
        emit(
            name="ratio-events",
            events_over_bare=round(ratio, 3),
            goal=INGEST_GOAL,
            met=ratio >= INGEST_GOAL,
            events_per_s=ingest["requests_per_s"] * 4,
        )

        ratio = decide["requests_per_s"] / baseline["requests_per_s"]
        emit(name="ratio", decide_over_bare=round(ratio, 3), goal=GOAL, met=ratio >= GOAL)

        rules_dir = rules_bench.write_rules(work / f"rules-{CAMPAIGNS}", CAMPAIGNS)
        body, headers = shop_request()
        shop_script = work / "shop.lua"
        lua_script(
            shop_script,
            [signer.sign(v).decode() for v in sample],
            "tp_vid",
            body=body,
            headers=headers,
        )
        port = free_port()
        command = [python, "-m", "touchpoint.cli", "serve", "--port", str(port)]
        app = serve([*command, "--rules-dir", str(rules_dir)], port, env)
        try:
            # What the load gets: the popups one returning visitor's request arms.
            cookie = f"tp_vid={signer.sign(sample[0]).decode()}"
            answer = httpx.post(
                f"http://127.0.0.1:{port}/tp/v1/decide",
                content=body,
                headers={**headers, "Cookie": cookie, "Content-Type": "text/plain"},
            )
            answer.raise_for_status()
            armed = [p["campaign"] for p in answer.json()["popups"]]
            many = load(port, shop_script, f"decide-{CAMPAIGNS}-campaigns", popups_armed=armed)
        finally:
            app.terminate()
            app.wait()
        ratio = many["requests_per_s"] / baseline["requests_per_s"]
        emit(
            name=f"ratio-{CAMPAIGNS}-campaigns",
            decide_over_bare=round(ratio, 3),
            goal=GOAL,
            met=ratio >= GOAL,
        )
        snippet_sizes()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def page_view_bytes(path: Path) -> None:
    """Bytes the events table and its indexes hold per stored page-view event (pages, not
    payload: what the file grows by), after the decide load counted its page views."""
    conn = sqlite3.connect(path)
    try:
        (size,) = conn.execute(
            "SELECT sum(pgsize) FROM dbstat WHERE name = 'events'"
            " OR name IN (SELECT name FROM sqlite_schema WHERE tbl_name = 'events')"
        ).fetchone()
        (views,) = conn.execute("SELECT count(*) FROM events WHERE type = 'page_view'").fetchone()
        (rows,) = conn.execute("SELECT count(*) FROM events").fetchone()
    finally:
        conn.close()
    per_event = round(size / rows) if rows else None
    emit(name="page-view-events", stored=views, bytes_per_event=per_event)


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


if __name__ == "__main__":
    main()
