"""``make bench``, console: what the rules pages cost the server to render with 200 campaigns.

A rules folder of 200 generated campaigns (rules_bench.write_rules), the app in-process with a
signed-in editor, and each page or endpoint asked several times: the status page, the
simulator's form and a simulation of a category page, the editor's page, a validation as the
editor's script sends it (a copy of the folder checked) and a simulation of a changed text.
Prints one JSON line per figure (median and slowest, in ms, the answer's size); reported, never
asserted: absolute numbers depend on the machine.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import tempfile
import time
import time as clock
from collections.abc import Callable
from pathlib import Path

import rules_bench
from starlette.testclient import TestClient
from touchpoint import store
from touchpoint.admin import users
from touchpoint.app import create_app
from touchpoint.settings import Settings

CAMPAIGNS = 200
REPEATS = 15
PASSWORD = "bench password 123"
PAGE = "/shop/cat-1/"


def emit(**figures: object) -> None:
    print(json.dumps(figures), flush=True)


def measure(name: str, call: Callable[[], object], *, repeats: int = REPEATS) -> None:
    call()  # warm: templates compiled, schedules read once
    times, size = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        response = call()
        times.append((time.perf_counter() - started) * 1000)
        status = getattr(response, "status_code", 0)
        assert status in (200, 303), (name, status)
        size = len(getattr(response, "content", b""))
    emit(
        bench="admin_rules",
        what=name,
        campaigns=CAMPAIGNS,
        median_ms=round(statistics.median(times), 2),
        max_ms=round(max(times), 2),
        bytes=size,
    )


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="touchpoint-admin-bench-"))
    try:
        rules = rules_bench.write_rules(work / "rules", CAMPAIGNS)
        settings = Settings.load(
            {"data_dir": str(work / "data"), "rules_dir": str(rules)}, environ={}
        )
        store.migrate(settings.database_url)
        conn = store.connect(settings.database_url)
        with store.immediate(conn):
            store.add_admin_user(
                conn,
                "bench",
                role="editor",
                password_hash=users.hash_password(PASSWORD),
                now=int(clock.time()),
            )
        conn.close()
        with TestClient(create_app(settings)) as client:
            client.post("/tp/admin/signin", data={"name": "bench", "password": PASSWORD})
            page = client.get("/tp/admin/simulator")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf, "not signed in"
            token = csrf.group(1)
            name = sorted(p.name for p in rules.glob("*.yaml"))[0]
            text = (rules / name).read_text()
            simulate = {"csrf": token, "url": PAGE, "slots": "hero", "trigger": "scroll"}
            measure("GET /rules", lambda: client.get("/tp/admin/rules"))
            measure("GET /simulator", lambda: client.get("/tp/admin/simulator"))
            measure(
                "POST /simulator (a category page)",
                lambda: client.post("/tp/admin/simulator", data=simulate),
            )
            measure("GET /rules/edit", lambda: client.get(f"/tp/admin/rules/edit?file={name}"))
            measure(
                "POST /rules/validate",
                lambda: client.post(
                    "/tp/admin/rules/validate",
                    json={"text": text, "path": name},
                    headers={"X-CSRF-Token": token},
                ),
                repeats=5,
            )
            measure(
                "POST /rules/edit (simulate the text)",
                lambda: client.post(
                    f"/tp/admin/rules/edit?file={name}",
                    data={**simulate, "text": text, "version": "", "action": "simulate"},
                ),
                repeats=5,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
