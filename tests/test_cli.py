"""The touchpoint command: check, and serve's start-up errors as one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from touchpoint.cli import main


def test_check_ok(rules_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--rules-dir", str(rules_dir)]) == 0
    assert capsys.readouterr().out == f"ok: 1 campaign(s) in {rules_dir}\n"


def test_check_reports_file_and_line(rules_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = rules_dir / "first-order-coupon.yaml"
    path.write_text(path.read_text().replace("after_close: 7d", "after_close: 7 days"))
    assert main(["check", "--rules-dir", str(rules_dir)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:11 (frequency.after_close):" in err
    assert "write `7d`" in err
    assert err.endswith(f"1 problem(s) in {rules_dir}\n")


def test_serve_with_broken_rules_fails_with_one_message(rules_dir: Path, tmp_path: Path) -> None:
    (rules_dir / "bad.yaml").write_text("campaign: [\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "touchpoint.cli",
            "serve",
            "--rules-dir",
            str(rules_dir),
            "--data-dir",
            str(tmp_path / "d"),
            "--port",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"touchpoint: {rules_dir / 'bad.yaml'}:2: YAML syntax")
    assert "Traceback" not in result.stderr


def test_serve_with_bad_setting(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "http"]) == 1
    assert capsys.readouterr().err == "touchpoint: --port: expected a whole number, got 'http'\n"


def test_simulate_explains_every_campaign(
    rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (rules_dir / "spring.yaml").write_text(
        "campaign: spring\ntrigger: {after_seconds: 5}\npriority: 50\n"
        "audience: {page: {path: [/spring/*]}}\n"
        "variants: [{id: a, template: first-order-coupon.html}]\n"
    )
    assert main(["simulate", "/demo/products/x", "--rules-dir", str(rules_dir)]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "  popup first-order-coupon (variant ten-percent)",
        "  spring                           not shown: page path does not match audience.page.path",
        "  first-order-coupon               shown",
    ]


def test_simulate_a_stored_visitor(
    client, settings, rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    import json

    client.app.state.tp.now = lambda: 1_000_000
    client.post("/tp/v1/consent", json={"granted": ["marketing"]})
    client.post(
        "/tp/v1/events", json={"events": [{"type": "close", "campaign": "first-order-coupon"}]}
    )
    visitor = client.app.state.tp.recognizer.read(client.cookies["tp_vid"])
    args = [
        "simulate",
        "/demo/products/x",
        "--visitor",
        visitor,
        "--at",
        "1000060",
        "--json",
        "--rules-dir",
        str(rules_dir),
        "--data-dir",
        settings.data_dir,
    ]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["popup"] is None
    assert result["visitor"] == {"id": visitor, "consent": ["marketing"], "history_used": True}
    assert result["campaigns"][0]["reason"] == (
        "visitor closed it 60s ago, within frequency.after_close"
    )


def test_simulate_unknown_visitor(rules_dir: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from touchpoint import store

    store.migrate(tmp_path / "touchpoint.db")
    args = [
        "simulate",
        "/",
        "--visitor",
        "nobody",
        "--rules-dir",
        str(rules_dir),
        "--data-dir",
        str(tmp_path),
    ]
    assert main(args) == 1
    assert capsys.readouterr().err.startswith("touchpoint: no visitor 'nobody' in ")
