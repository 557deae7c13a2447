"""``make bench``, PostgreSQL (issue 20): the known visitor's decide and the events route on
SQLite, on PostgreSQL with one node, and on PostgreSQL with three nodes behind nginx, in one run.

One database of BENCH_PROFILES consented profiles is filled in SQLite (bench.fill_database) and
moved with ``touchpoint db copy`` (timed); the PostgreSQL server is a throwaway cluster with its
durable defaults (fsync and synchronous commit on). The loads take turns (ROUNDS interleaved
rounds of wrk, 32 connections); besides requests per second and p50/p99, each reports the CPU per
request of the Touchpoint processes (and nginx) and, on PostgreSQL, of the database server, the
transactions it committed and the statements it ran per request (pg_stat_statements), and the
three statements that took it longest. On two shared cores, three nodes and the database
compete for the same CPUs: the ratio says what a node costs, not how a cluster of machines
scales.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench
from loads import Load, Server, cpu_seconds, emit, process_tree, wrk
from touchpoint import store
from touchpoint.profiles.recognition import Recognizer

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tests import pgcluster  # noqa: E402

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TOP: dict[str, list[tuple[str, tuple[int, float]]]] = {}  # per load, the costliest statements


class Database:
    """The cluster's processes and its commit counter, read around each round."""

    def __init__(self, cluster: pgcluster.Cluster, url: str) -> None:
        self.cluster = cluster
        self.url = url
        self.name = url.rsplit("/", 1)[1]
        postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
        self.postmaster = postmaster

    def pids(self) -> list[int]:
        return process_tree(self.postmaster)

    def commits(self) -> int:
        conn = store.connect(self.cluster.url())
        try:
            (n,) = conn.execute(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = ?", (self.name,)
            ).fetchone()
            return int(n)
        finally:
            conn.close()

    def statements(self) -> dict[str, tuple[int, float]]:
        """Calls and total milliseconds of each statement so far (pg_stat_statements)."""
        conn = store.connect(self.url)
        try:
            rows = conn.execute(
                "SELECT query, calls, total_exec_time FROM pg_stat_statements"
                " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = ?)",
                (self.name,),
            ).fetchall()
            return {query: (int(calls), float(ms)) for query, calls, ms in rows}
        finally:
            conn.close()


def measured(load: Load, database: Database | None) -> None:
    """One round of ``load``, with the database server's CPU and commits per request."""
    before_cpu = cpu_seconds(database.pids()) if database else 0.0
    before_commits = database.commits() if database else 0
    before_statements = database.statements() if database else {}
    wrk(load, duration=bench.DURATION, connections=bench.CONNECTIONS)
    if database is None:
        return
    done = load.rounds[-1]["requests"]
    if not done:
        conn = store.connect(database.cluster.url())
        for row in conn.execute(
            "SELECT pid, state, wait_event_type, wait_event, left(query, 120)"
            " FROM pg_stat_activity WHERE datname = ?",
            (database.name,),
        ):
            print(row, file=sys.stderr)
        sys.exit(f"{load.name}: no request was answered")
    load.rounds[-1]["db_cpu_us"] = (cpu_seconds(database.pids()) - before_cpu) / done * 1e6
    load.rounds[-1]["commits"] = (database.commits() - before_commits) / done
    after = database.statements()
    calls = {
        query: (
            n - before_statements.get(query, (0, 0.0))[0],
            ms - before_statements.get(query, (0, 0.0))[1],
        )
        for query, (n, ms) in after.items()
        if "pg_stat" not in query
    }
    load.rounds[-1]["statements"] = sum(n for n, _ in calls.values()) / done
    TOP[load.name] = sorted(calls.items(), key=lambda item: -item[1][1])[:3]


def balancer(work: Path, nodes: list[Server], port: int) -> subprocess.Popen[bytes]:
    prefix = work / "nginx"
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    servers = "".join(f"    server 127.0.0.1:{node.port};\n" for node in nodes)
    conf = prefix / "nginx.conf"
    conf.write_text(
        "pid nginx.pid;\nerror_log logs/error.log;\nworker_processes 1;\nevents {}\nhttp {\n"
        f"  upstream touchpoint {{\n{servers}    keepalive 32;\n  }}\n  access_log off;\n"
        f"  server {{\n    listen 127.0.0.1:{port};\n    location /tp/ {{\n"
        "      proxy_pass http://touchpoint;\n      proxy_http_version 1.1;\n"
        '      proxy_set_header Connection "";\n    }\n  }\n}\n'
    )
    process = subprocess.Popen(
        [NGINX, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    return process


def main() -> None:
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: `apt-get install wrk` (make bench does)")
    bin_dir = pgcluster.binaries()
    if bin_dir is None:
        sys.exit(pgcluster.MISSING)
    work = Path(tempfile.mkdtemp(prefix="touchpoint-pg-bench-"))
    cluster = pgcluster.Cluster(bin_dir, durable=True).start()
    runner = None
    extra: list[subprocess.Popen[bytes]] = []
    try:
        sample = bench.fill_database(work / "touchpoint.db")
        url = cluster.create_database()
        started = time.monotonic()
        copy = [sys.executable, "-m", "touchpoint.cli", "db", "copy", "--to", url, "--json"]
        subprocess.run([*copy, "--data-dir", str(work)], check=True, capture_output=True)
        emit(
            name="db-copy",
            profiles=bench.PROFILES,
            seconds=round(time.monotonic() - started, 1),
        )
        database = Database(cluster, url)
        conn = store.connect(url)
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.close()
        secret = secrets.token_urlsafe(48)
        signer = Recognizer(secret, cookie_name="tp_vid", max_age_days=1, secure="never").signer
        runner = bench.Bench(work, secret, [f"tp_vid={signer.sign(v).decode()}" for v in sample])
        lite = runner.touchpoint("touchpoint-sqlite")
        pg = runner.touchpoint("touchpoint-postgresql", TOUCHPOINT_DATABASE=url)
        nodes = [
            runner.touchpoint(f"touchpoint-postgresql-node{n}", TOUCHPOINT_DATABASE=url)
            for n in range(3)
        ]
        port = runner.free_port()
        extra.append(balancer(work, nodes, port))
        three = Server(
            "postgresql-3-nodes",
            port,
            extra[0],
            [pid for node in nodes for pid in node.pids] + process_tree(extra[0].pid),
        )
        decide = runner.script("decide", "/tp/v1/decide", bench.BODY)
        events = runner.script("events", "/tp/v1/events", bench.EVENTS_BODY)
        loads = [
            (Load("decide-sqlite", lite, decide), None),
            (Load("decide-postgresql-1-node", pg, decide), database),
            (Load("decide-postgresql-3-nodes", three, decide), database),
            (Load("events-sqlite", lite, events), None),
            (Load("events-postgresql-1-node", pg, events), database),
            (Load("events-postgresql-3-nodes", three, events), database),
        ]
        for _ in range(bench.ROUNDS):
            for load, db in loads:
                measured(load, db)
        for load, db in loads:
            figures = {}
            if db is not None:
                figures = {
                    "database_cpu_us_per_request": round(load.median("db_cpu_us")),
                    "commits_per_request": round(load.median("commits"), 3),
                    "statements_per_request": round(load.median("statements"), 2),
                    "costliest_statements": [
                        {"query": " ".join(q.split())[:100], "calls": n, "ms": round(ms)}
                        for q, (n, ms) in TOP[load.name]
                    ],
                }
            emit(**load.summary(**figures))
        by_name = {load.name: load for load, _ in loads}
        for route in ("decide", "events"):
            one, sqlite = by_name[f"{route}-postgresql-1-node"], by_name[f"{route}-sqlite"]
            three_nodes = by_name[f"{route}-postgresql-3-nodes"]
            bench.ratio(f"{route}-postgresql-over-sqlite", one, sqlite, None)
            bench.ratio(f"{route}-postgresql-3-nodes-over-1", three_nodes, one, None)
    finally:
        for process in extra:
            process.terminate()
            process.wait()
        if runner is not None:
            runner.stop()
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
