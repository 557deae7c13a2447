"""Three Touchpoint nodes on one PostgreSQL database behind nginx as the load balancer (issue
20): a coupon race gives every code once, a visitor's requests on different nodes see one
profile, webhooks queued once are delivered once, and a node killed under load loses nothing
it acknowledged."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from touchpoint import store

from .conftest import ROOT
from .decide.test_reveal import LIMITED, LIMITED_POOL, import_codes, race_for_limited
from .processes import ServerProcess, free_port
from .webhooks.test_delivery import FAST, SECRET, Receiver, queue_from_outside

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
KEY = "nodes-share-this-secret-key-0123456789abcdef"
CONSENT_ALL = {"granted": ["measurement", "personalisation", "marketing"]}

pytestmark = pytest.mark.skipif(
    not os.path.exists(NGINX) and not os.environ.get("CI"),
    reason="nginx is not installed (Debian: apt-get install nginx; .ci/run does it)",
)


class Node(ServerProcess):
    def __init__(self, tmp: Path, n: int, database: str, rules: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / f"node{n}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOUCHPOINT_")}
        env |= {"TOUCHPOINT_SECRET_KEY": KEY, "CRM_SECRET": SECRET}
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in FAST.items()]
        command = [sys.executable, "-m", "touchpoint.cli", "serve", "--port", str(self.port)]
        command += ["--data-dir", str(tmp / f"node{n}"), "--database", database]
        command += ["--rules-dir", str(rules), "--rate-limit-per-minute=1000000", *flags]
        self.start(command, ready_path="/tp/healthz", env=env)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


class Balancer:
    """nginx on a free port of 127.0.0.1, passing /tp/ to the nodes in turn; a response says
    which node answered (X-Node)."""

    def __init__(self, tmp: Path, nodes: list[Node]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        prefix = tmp / "nginx"
        (prefix / "logs").mkdir(parents=True)
        servers = "".join(f"    server 127.0.0.1:{node.port};\n" for node in nodes)
        conf = prefix / "nginx.conf"
        conf.write_text(
            "pid nginx.pid;\nerror_log logs/error.log;\nevents {}\nhttp {\n"
            f"  upstream touchpoint {{\n{servers}  }}\n"
            "  access_log off;\n"
            f"  server {{\n    listen 127.0.0.1:{self.port};\n"
            "    location /tp/ {\n"
            "      proxy_pass http://touchpoint;\n"
            "      proxy_set_header Host $host;\n"
            "      add_header X-Node $upstream_addr always;\n"
            "    }\n  }\n}\n"
        )
        self.process = subprocess.Popen(
            [NGINX, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
            stderr=subprocess.DEVNULL,  # its error log is in logs/error.log
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/tp/healthz").status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str) -> Iterator[tuple[Balancer, list[Node], Receiver, str]]:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    with (rules / "coupons.yaml").open("a") as pools:
        pools.write(LIMITED_POOL)
    (rules / "limited-offer.yaml").write_text(LIMITED)
    receiver = Receiver()
    with (rules / "site.yaml").open("a") as site:
        site.write(
            "webhooks:\n"
            f"  crm: {{url: '{receiver.url}', secret_env: CRM_SECRET, events: [stage.changed]}}\n"
        )
    codes = [f"LIMITED-{i:03d}" for i in range(40)]
    import_codes(["--database", pg_url, "--rules-dir", str(rules)], codes, tmp_path)
    nodes = [Node(tmp_path, n, pg_url, rules) for n in range(3)]
    balancer = Balancer(tmp_path, nodes)
    try:
        yield balancer, nodes, receiver, pg_url
    finally:
        balancer.stop()
        for node in nodes:
            node.stop()
        receiver.stop()


def test_three_nodes_behind_nginx_keep_the_guarantees_of_one(
    cluster: tuple[Balancer, list[Node], Receiver, str],
) -> None:
    balancer, nodes, receiver, database = cluster
    conn = store.connect(database)
    try:
        # A visitor's consecutive requests reach different nodes and see one profile.
        with httpx.Client(base_url=balancer.url) as visitor:
            assert visitor.post("/tp/v1/consent", json=CONSENT_ALL).status_code == 200
            answered_by = set()
            for n in range(9):
                page = {"page": {"path": f"/demo/page-{n}"}}
                answer = visitor.post("/tp/v1/decide", json=page)
                assert answer.status_code == 200
                answered_by.add(answer.headers["x-node"])
            cookie = visitor.cookies["tp_vid"]
        assert len(answered_by) == 3
        deadline = time.monotonic() + 5  # page view counts are committed within group_commit_ms
        while time.monotonic() < deadline:
            (views,) = conn.execute("SELECT sum(page_views) FROM visitors").fetchone()
            if views == 9:
                break
            time.sleep(0.05)
        assert views == 9 and cookie

        # More visitors than codes reveal at once, through all three nodes: each code once.
        clients = [httpx.Client(base_url=balancer.url) for _ in range(60)]
        try:
            for client in clients:
                assert client.post("/tp/v1/consent", json=CONSENT_ALL).status_code == 200
            results, again = race_for_limited(clients, 30)
        finally:
            for client in clients:
                client.close()
        assert Counter(status for status, _ in results) == {200: 40, 410: 20}
        given = sorted(code for status, code in results if status == 200)
        assert given == [f"LIMITED-{i:03d}" for i in range(40)]
        assert again == results[0]
        rows = conn.execute("SELECT visitor_id FROM coupon_codes WHERE pool = 'limited'")
        assert len({visitor for (visitor,) in rows.fetchall()}) == 40

        # Webhooks queued once are delivered once, whichever node leases them.
        keys = queue_from_outside(database, 30)
        deadline = time.monotonic() + 15
        while len(receiver.delivered()) < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # a second delivery would come now
        assert len(receiver.delivered()) == 30 == len(set(receiver.delivered()))
        assert len(keys) == 30
    finally:
        conn.close()


def test_a_node_killed_under_load_loses_nothing_it_acknowledged(
    cluster: tuple[Balancer, list[Node], Receiver, str],
) -> None:
    balancer, nodes, _, database = cluster
    acknowledged: Counter[str] = Counter()
    stop = threading.Event()

    def visitor(n: int) -> None:
        with httpx.Client(base_url=balancer.url, timeout=10) as client:
            client.post("/tp/v1/consent", json=CONSENT_ALL).raise_for_status()
            events = {"events": [{"type": "click", "name": f"v{n}", "path": "/demo/"}]}
            while not stop.is_set():
                try:
                    answer = client.post("/tp/v1/events", json=events)
                except httpx.HTTPError:
                    continue  # the connection broke with the node: not acknowledged
                if answer.status_code == 202:
                    acknowledged[f"v{n}"] += answer.json()["stored"]

    threads = [threading.Thread(target=visitor, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    nodes[1].kill()  # mid-load, without a graceful stop
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join(20)
    conn = store.connect(database)
    try:
        stored = dict(
            conn.execute(
                "SELECT name, count(*) FROM events WHERE type = 'click' GROUP BY name"
            ).fetchall()
        )
    finally:
        conn.close()
    for n in range(6):
        assert acknowledged[f"v{n}"] > 0
        # Every acknowledged event is stored; one answered by nobody may be stored too.
        assert stored.get(f"v{n}", 0) >= acknowledged[f"v{n}"], n
