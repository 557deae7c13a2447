"""Tiny fixtures: settings on a temporary data dir, the app, a TestClient, a real server."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from touchpoint import store
from touchpoint.app import create_app
from touchpoint.settings import Settings
from touchpoint.store import engine, pgschema

from . import mmdb, pgcluster
from .processes import ServerProcess, free_port

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
PRODUCT = "/demo/products/trail-runner.html"


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """A private rules folder with one example campaign and every template, safe to edit in a
    test. (tests/rules/test_examples.py covers the whole example set.)"""
    target = tmp_path / "rules"
    shutil.copytree(ROOT / "rules" / "templates", target / "templates")
    shutil.copy(ROOT / "rules" / "first-order-coupon.yaml", target)
    return without_own_codes(target)


def with_sales_webhook(rules: Path) -> Path:
    """``rules`` (a copy of the examples) with the threshold action the scoring example shows
    as a comment in use: ``webhook: sales``, for a site that names that endpoint."""
    scoring = (rules / "scoring.yaml").read_text()
    action = "actions: {attribute: {sales_ready: true}}"
    assert scoring.count(action) == 1
    (rules / "scoring.yaml").write_text(
        scoring.replace(action, "actions: {webhook: sales, attribute: {sales_ready: true}}")
    )
    return rules


def consenting_visitor(path: Path, *, at: int, visitor: str = "v1") -> sqlite3.Connection:
    """A new database at ``path`` holding one visitor who granted every consent category."""
    store.migrate(path)
    conn = store.connect(path)
    everything = {"measurement", "personalisation", "marketing"}
    store.record_consent(
        conn, visitor, at=at, revision=1, granted=everything, denied=set(), method="api"
    )
    return conn


def without_own_codes(rules: Path) -> Path:
    """``rules`` with the first-order coupon handing out no code of its own: tests of popups for
    anyone, since a visitor's own code needs the marketing consent (tests/coupons/)."""
    campaign = rules / "first-order-coupon.yaml"
    lines = campaign.read_text().splitlines(True)
    campaign.write_text("".join(line for line in lines if "coupon: {pool:" not in line))
    return rules


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[store.Connection]:
    """A migrated database, one of each engine (SQLite in a temporary folder, PostgreSQL in
    the session's cluster), and one connection to it."""
    if request.param == "sqlite":
        database = str(tmp_path / "t.db")
        store.migrate(database)
    else:
        database = request.getfixturevalue("pg_url")
    conn = store.connect(database)
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pgcluster.Cluster]:
    """The session's PostgreSQL server (tests/pgcluster.py), with a migrated template database
    that each test's database is copied from."""
    with pgcluster.cluster() as cluster:
        if cluster is None:
            if os.environ.get("CI"):
                pytest.fail(pgcluster.MISSING)
            pytest.skip(pgcluster.MISSING)
        conn = engine.pg_connect(cluster.create_database())
        pgschema.migrate(conn)
        conn.close()
        cluster.template = "t1"
        yield cluster


@pytest.fixture
def pg_url(pg_cluster: pgcluster.Cluster) -> str:
    """A migrated PostgreSQL database of this test's own: its URL."""
    return pg_cluster.create_database(template=pg_cluster.template)


# The engine the app's tests run on: SQLite, or PostgreSQL with TOUCHPOINT_TEST_ENGINE=postgresql
# (`make test` runs the suite on both).
ENGINE = os.environ.get("TOUCHPOINT_TEST_ENGINE", "sqlite")


def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker("sqlite_only")
    params = getattr(item, "callspec", None)
    engine = params.params.get("fresh_db", ENGINE) if params else ENGINE
    if marker is not None and engine != "sqlite":
        pytest.skip(f"SQLite only: {marker.args[0]}")


@pytest.fixture
def database(request: pytest.FixtureRequest) -> dict[str, str]:
    """The ``database`` setting of this test's server: none (SQLite in its data folder), or a
    PostgreSQL database of its own."""
    if ENGINE != "postgresql":
        return {}
    return {"database": request.getfixturevalue("pg_url")}


@pytest.fixture
def settings(tmp_path: Path, rules_dir: Path, database: dict[str, str]) -> Settings:
    return Settings.load(
        {"data_dir": str(tmp_path / "data"), "rules_dir": str(rules_dir), **database}, environ={}
    )


@pytest.fixture
def geoip_database(tmp_path: Path) -> Path:
    """A country database in MaxMind's format with the test networks of tests/mmdb.py
    (127.0.0.0/8 is Austria, 192.0.2.0/24 Switzerland, 2001:db8::/32 Germany ...)."""
    return mmdb.write(tmp_path / "countries.mmdb", mmdb.NETWORKS)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


class LiveServer(ServerProcess):
    """``touchpoint serve`` in a subprocess, as ``make run`` starts it (with one worker)."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = tmp / "live-data"
        self.log_path = tmp / "live-server.log"
        # The database it uses: the SQLite file in its data folder, or on the PostgreSQL engine
        # one database per data folder (a server started again on it finds its data).
        self.database = str(self.data_dir / "touchpoint.db")
        if LIVE_DATABASES.cluster is not None and not any(a.startswith("--database") for a in args):
            self.database = LIVE_DATABASES.url(self.data_dir)
            args = (*args, f"--database={self.database}")
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOUCHPOINT_")}
        command = [
            sys.executable,
            "-m",
            "touchpoint.cli",
            "serve",
            "--demo",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--rules-dir",
            str(ROOT / "rules"),
            "--demo-dir",
            str(ROOT / "static" / "demo"),
            # One worker unless a test asks for more (its --workers comes later and wins):
            # what a test reads from the log and the database is then one process's doing.
            "--workers",
            "1",
            *args,
        ]
        self.start(command, ready_path="/tp/healthz", env=env)


def live_flags(data_dir: Path) -> list[str]:
    """The flags that point a command at the database of a live server on ``data_dir``."""
    flags = ["--data-dir", str(data_dir)]
    if LIVE_DATABASES.cluster is not None:
        flags.append(f"--database={LIVE_DATABASES.url(data_dir)}")
    return flags


class LiveDatabases:
    """The PostgreSQL databases of live servers, one per data folder (ENGINE postgresql)."""

    def __init__(self) -> None:
        self.cluster: pgcluster.Cluster | None = None
        self.urls: dict[Path, str] = {}

    def url(self, data_dir: Path) -> str:
        assert self.cluster is not None
        if data_dir not in self.urls:
            self.urls[data_dir] = self.cluster.create_database(template=self.cluster.template)
        return self.urls[data_dir]


LIVE_DATABASES = LiveDatabases()


@pytest.fixture(scope="session", autouse=ENGINE == "postgresql")
def live_databases(request: pytest.FixtureRequest) -> None:
    """On the PostgreSQL engine, live servers get a database of the session's cluster."""
    LIVE_DATABASES.cluster = request.getfixturevalue("pg_cluster")


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path)
    yield server
    server.stop()


# Module scope: Playwright's sync API runs an event loop on the main thread while it is open,
# which would stop later tests from starting their own.
@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@contextlib.contextmanager
def page_on(browser, base_url: str):  # type: ignore[no-untyped-def]
    """A desktop-sized page of a fresh browser context; fails if the page threw."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1200, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], f"the page threw: {errors}"


@pytest.fixture
def page(browser, live_server):  # type: ignore[no-untyped-def]
    with page_on(browser, live_server.url) as page:
        yield page
