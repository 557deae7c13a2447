"""``make bench``, the console: what each results page costs the server to render over a year
of a large shop (200 campaigns x 3 variants x 365 days of rollups, tests/bench/results_bench.py),
10 coupon pools with 20,000 codes each, 100,000 consent answers.

Each page is fetched in-process through the whole app (session check, the report in a worker
thread, the template), signed in as a viewer; the figure is the median of several requests.
Prints one JSON line per page.
"""

from __future__ import annotations

import random
import sqlite3
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from starlette.testclient import TestClient
from touchpoint import store
from touchpoint.admin import users
from touchpoint.app import create_app
from touchpoint.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_bench import CAMPAIGNS, emit, experiment_rules, fill_rollups, median_ms  # noqa: E402

POOLS, CODES, ANSWERS = 10, 20_000, 100_000
PASSWORD = "bench password 1234"
YEAR = "since=2026-01-01&until=2026-12-31"
MONTH = "since=2026-11-06&until=2026-12-05"  # the pages' default: the last 30 days
PAGES = {
    "overview": "/tp/admin/results?{range}",
    "campaign": "/tp/admin/results/campaign-007?{range}",
    "lifecycle": "/tp/admin/lifecycle?{range}",
    "coupons": "/tp/admin/coupons?{range}",
    "consent": "/tp/admin/consent",  # every answer in the log (the page's default)
}


def with_pools(rules: Path) -> None:
    """Variant a of every campaign hands out codes of one of POOLS imported pools."""
    (rules / "coupons.yaml").write_text(
        "pools:\n"
        + "".join(f"  pool-{p}: {{codes: imported, low_stock: 100}}\n" for p in range(POOLS))
    )
    plain = "  - {id: a, template: first-order-coupon.html}"
    for c in range(CAMPAIGNS):
        path = rules / f"campaign-{c:03d}.yaml"
        coupon = plain[:-1] + f", coupon: {{pool: pool-{c % POOLS}}}}}"
        path.write_text(path.read_text().replace(plain, coupon))


def fill(conn: sqlite3.Connection) -> None:
    fill_rollups(conn)
    conn.execute("UPDATE rollup_campaigns SET reveals = exposures / 20, redemptions = 1")
    chance = random.Random(2)
    conn.executemany(
        "INSERT INTO coupon_codes (pool, code, added_at) VALUES (?, ?, 1)",
        [(f"pool-{p}", f"P{p}-{i:06d}") for p in range(POOLS) for i in range(CODES)],
    )
    start = int(time.mktime(date(2026, 1, 1).timetuple()))
    granted = ('["marketing","measurement","personalisation"]', "[]", '["measurement"]')
    denied = (
        "[]",
        '["marketing","measurement","personalisation"]',
        '["marketing","personalisation"]',
    )
    rows = []
    for i in range(ANSWERS):
        kind = chance.randrange(3)
        method = chance.choice(("banner", "api", "tcf", "gpc"))
        rows.append(
            (f"v{i}", start + i * 300, 1 + i * 3 // ANSWERS, granted[kind], denied[kind], method)
        )
    conn.executemany(
        "INSERT INTO consent_log (visitor_id, at, revision, granted, denied, method)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        rules = work / "rules"
        experiment_rules(rules)
        with_pools(rules)
        settings = Settings.load(
            {"data_dir": str(work / "data"), "rules_dir": str(rules), "reload_rules": False},
            environ={},
        )
        Path(settings.data_dir).mkdir()
        store.migrate(settings.database_url)
        conn = store.connect(settings.database_url)
        with store.immediate(conn):
            fill(conn)
            store.add_admin_user(
                conn, "bench", role="viewer", password_hash=users.hash_password(PASSWORD), now=1
            )
        conn.close()
        with TestClient(create_app(settings)) as client:
            signed_in = client.post(
                "/tp/admin/signin", data={"name": "bench", "password": PASSWORD}
            )
            assert signed_in.status_code == 200, signed_in.text
            for name, template in PAGES.items():
                for days, query in (("365", YEAR), ("30", MONTH)):
                    if name == "consent" and days == "30":
                        continue
                    path = template.format(range=query)
                    page = client.get(path)
                    assert page.status_code == 200 and "<table" in page.text, (name, page.text)
                    emit(
                        name=f"console-{name}",
                        campaigns=CAMPAIGNS,
                        days=int(days) if name != "consent" else None,
                        consent_answers=ANSWERS if name == "consent" else None,
                        ms=median_ms(lambda path=path: client.get(path)),
                        bytes=len(page.content),
                    )


if __name__ == "__main__":
    main()
