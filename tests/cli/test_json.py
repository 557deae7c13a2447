"""--json works with every command: one JSON document on standard output, whatever else the
command says on standard error."""

from __future__ import annotations

import io
import json
import logging
import shutil
from pathlib import Path

import pytest
from touchpoint.cli import main, serve
from touchpoint.settings import Settings

from .test_parser import runnable

ROOT = Path(__file__).parent.parent.parent

# Run in this order against one server folder; VISITOR is the id of a visitor who consented.
RUNS: list[list[str]] = [
    ["check"],
    ["simulate", "/demo/", "--visitor=VISITOR"],
    ["schema", "site"],
    ["preview", "first-order-coupon"],
    ["apikey", "create", "shop", "--scope", "events:write"],
    ["apikey", "list"],
    ["apikey", "revoke", "shop"],
    ["webhooks"],
    ["webhooks", "retry", "--all-failed"],
    ["webhooks", "secret"],
    ["coupons", "import", "spring", "CODES"],
    ["coupons", "generate", "welcome", "2"],
    ["coupons", "list"],
    ["consent", "log", "--visitor=VISITOR"],
    ["consent", "summary", "--since", "2026-01-01T00:00Z"],
    ["export", "--visitor=VISITOR"],
    ["erase", "--visitor=VISITOR", "--yes"],
    ["purge", "--dry-run"],
    ["report"],
    ["report", "campaigns"],
    ["report", "campaign", "first-order-coupon"],
    ["report", "lifecycle"],
    ["admin", "user", "add", "ana", "--role", "editor", "--password-stdin"],
    ["admin", "user", "list"],
    ["admin", "user", "password", "ana", "--password-stdin"],
    ["admin", "user", "remove", "ana"],
]
LOGS = {("serve",)}  # prints logs, not a result: --json makes them JSON lines (below)
# Plays visitors against a running server: tests/results/test_demo_traffic.py runs it.
AGAINST_A_SERVER = {("demo-traffic",)}
# Needs a PostgreSQL database to copy into: tests/store/test_copy.py runs it, --json included.
INTO_ANOTHER_DATABASE = {("db", "copy")}


def test_every_command_is_run_here() -> None:
    covered = {tuple(w for w in run if w.isidentifier()) for run in RUNS}
    paths = {path for path, _ in runnable()}
    missing = {p for p in paths if not any(c[: len(p)] == p for c in covered)}
    assert missing == LOGS | AGAINST_A_SERVER | INTO_ANOTHER_DATABASE


def test_every_command_prints_one_json_document(
    client,
    settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    # The passwords of admin user add and admin user password (--password-stdin).
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password-1\nanother-password-2\n"))
    shutil.copy(ROOT / "rules" / "coupons.yaml", settings.rules_dir)
    client.post("/tp/v1/consent", json={"granted": ["marketing", "personalisation"]})
    visitor = client.app.state.tp.recognizer.read(client.cookies["tp_vid"])
    codes = tmp_path / "codes.csv"
    codes.write_text("S-1\nS-2\n")
    where = ["--rules-dir", settings.rules_dir, "--data-dir", settings.data_dir]
    if settings.database:  # not every command takes --database: the environment, as a server's
        monkeypatch.setenv("TOUCHPOINT_DATABASE", settings.database)
    for run in RUNS:
        argv = [w.replace("VISITOR", visitor).replace("CODES", str(codes)) for w in run]
        assert main([*argv, *where, "--json"]) == 0, run
        out = capsys.readouterr().out
        assert isinstance(json.loads(out), dict), run


def test_serve_json_logs_one_object_a_line() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(serve.JsonLines())
    logger = logging.getLogger("touchpoint.test-json-lines")
    logger.addHandler(handler)
    try:
        logger.warning("rules/a.yaml:1:1: %s", "bad")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()  # a traceback stays inside its line
    first, second = (json.loads(line) for line in lines)
    assert first.keys() == {"time", "level", "logger", "message"}
    assert (first["level"], first["message"]) == ("warning", "rules/a.yaml:1:1: bad")
    assert second["message"] == "failed" and "ValueError: boom" in second["error"]
