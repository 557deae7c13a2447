"""The touchpoint command: check, and serve's start-up errors as one clear line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from touchpoint.cli import main

from ..conftest import ROOT, with_sales_webhook
from ..databases import database_flags


def test_check_ok(rules_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--rules-dir", str(rules_dir)]) == 0
    assert capsys.readouterr().out == f"ok: 1 campaign(s) in {rules_dir}\n"


def test_check_covers_scoring_and_lifecycle(
    rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = Path(__file__).parent.parent.parent / "rules"
    for name in ("scoring.yaml", "lifecycle.yaml"):
        (rules_dir / name).write_text((root / name).read_text())
    assert main(["check", "--rules-dir", str(rules_dir)]) == 0
    out, err = capsys.readouterr()
    assert out == f"ok: 1 campaign(s), 8 scoring rule(s), 1 threshold(s) in {rules_dir}\n"
    assert err == ""
    (rules_dir / "scoring.yaml").write_text("decay: {half_life: 4w}\n")
    assert main(["check", "--rules-dir", str(rules_dir)]) == 1
    err = capsys.readouterr().err
    assert f"{rules_dir / 'scoring.yaml'}:1:9: decay.half_life:" in err and "write `28d`" in err


def test_check_reports_file_and_line(rules_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = rules_dir / "first-order-coupon.yaml"
    path.write_text(path.read_text().replace("after_close: 7d", "after_close: 7 days"))
    assert main(["check", "--rules-dir", str(rules_dir)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:13:3: frequency.after_close:" in err
    assert "write `7d`" in err
    assert err.endswith(f"1 error in {rules_dir}\n")


@pytest.mark.parametrize("text", ["", "\n  \n", "# yaml-language-server: $schema=x.json\n# soon\n"])
def test_check_fails_on_an_empty_campaign_file(
    rules_dir: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    """An empty file is how a campaign file looks while an editor rewrites it in place: an
    error, not a folder without that campaign."""
    path = rules_dir / "first-order-coupon.yaml"
    path.write_text(text)
    assert main(["check", "--rules-dir", str(rules_dir)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{path}:1:1: the file is empty (or only comments): a campaign needs")
    assert err.endswith(f"1 error in {rules_dir}\n")


def test_check_of_the_shipped_rules_prints_no_warning() -> None:
    """A fresh checkout: `touchpoint check` in the project folder, with no settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOUCHPOINT_")}
    done = subprocess.run(
        [sys.executable, "-m", "touchpoint.cli", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (
        "ok: 12 campaign(s), 8 scoring rule(s), 1 threshold(s), 3 coupon pool(s) in rules\n"
    )


def test_check_reports_every_problem_in_every_file(
    rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (rules_dir / "site.yaml").write_text("timezone: Europe/Berlni\ninterests: {running: run}\n")
    (rules_dir / "a.yaml").write_text(
        "campaign: a\n"
        "trigger: {scroll_percent: 50}\n"
        "audience:\n"
        "  visitor.stage: leed\n"
        "  any:\n"
        "    - utm.source: {matches: '(x'}\n"
        "    - campaign.b.seen: {within: 1 week}\n"
        "variants: [{id: x, template: first-order-coupon.html}]\n"
    )
    (rules_dir / "b.yaml").write_text(
        "campaign: b\nkind: content\nslot: Hero\nfrequency: {max_impressions: -1}\n"
        "variants:\n  - {id: x, template: nope.html}\n"
    )
    assert main(["check", "--rules-dir", str(rules_dir)]) == 1
    a, b, site = (str(rules_dir / n) for n in ("a.yaml", "b.yaml", "site.yaml"))
    assert capsys.readouterr().err.splitlines() == [
        f"{site}:1:1: timezone: an IANA time zone name like Europe/Berlin",
        f"{site}:2:13: interests.running: a list of path patterns like /category/running/**",
        f"{a}:4:3: audience.visitor.stage: 'leed' is not one of visitor, lead, new-customer,"
        " customer, inactive, win-back — did you mean `lead`?",
        f"{a}:6:7: audience.any.0.utm.source: invalid regular expression: missing ),"
        " unterminated subpattern at position 0",
        f"{a}:7:7: audience.any.1.campaign.b.seen: expected a duration like 7d, 12h, 30m or"
        " never, got '1 week' — write `7d`",
        f'{b}:3:1: slot: required for content: the slot name, as in data-tp-slot="hero"',
        f"{b}:4:13: frequency.max_impressions: a whole number from 1",
        f"{b}:6:13: variants.0.template: template 'nope.html' not found in rules/templates/",
        f"8 errors in {rules_dir}",
    ]


def test_check_warns_about_campaigns_that_never_show(
    rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    variants = "variants: [{id: x, template: first-order-coupon.html}]\n"
    (rules_dir / "always.yaml").write_text(
        "campaign: always\ntrigger: exit_intent\npriority: 99\n"
        "frequency: {after_close: 0, after_convert: 0}\n" + variants
    )
    (rules_dir / "over.yaml").write_text(
        "campaign: over\ntrigger: load\nschedule: {until: 2020-01-31}\n" + variants
    )
    assert main(["check", "--rules-dir", str(rules_dir)]) == 0
    out = capsys.readouterr()
    coupon, over = rules_dir / "first-order-coupon.yaml", rules_dir / "over.yaml"
    assert out.err.splitlines() == [
        f"{over}:3:12: warning: schedule.until: ended on 2020-01-31: never shown",
        f"{coupon}:15:1: warning: priority: never shown: always ({rules_dir / 'always.yaml'}:1)"
        " has a higher priority, the same trigger exit_intent, no audience and no frequency"
        " limit",
    ]
    assert out.out == f"ok: 3 campaign(s) in {rules_dir}, 2 warnings\n"


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
    assert result.stderr.startswith(f"touchpoint: {rules_dir / 'bad.yaml'}:2:1: YAML syntax")
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
        "  popup first-order-coupon (ten-percent) on exit_intent",
        "  spring                           not chosen: audience: page.path is /spring/*"
        " (it is '/demo/products/x')",
        "  first-order-coupon               chosen",
    ]


def test_simulate_a_what_if_visitor(rules_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (rules_dir / "site.yaml").write_text("interests: {running: /demo/category/running*}\n")
    (rules_dir / "hero.yaml").write_text(
        "campaign: hero\nkind: content\nslot: hero\n"
        "audience: {visitor.interests.running: {gte: 2}, context.page_type: home,"
        " device.type: mobile, referrer.channel: search, utm.campaign: spring*}\n"
        "variants: [{id: a, template: first-order-coupon.html}]\n"
    )
    iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148 Safari/604.1"
    common = [
        "simulate",
        "/demo/?utm_campaign=spring-sale",
        "--slot",
        "hero",
        "--rules-dir",
        str(rules_dir),
        "--referrer",
        "https://www.google.com/",
        "--user-agent",
        iphone,
        "--context",
        '{"page_type": "home"}',
        "--json",
    ]
    assert main([*common, "--profile", '{"interests": {"running": 2}}']) == 0
    assert json.loads(capsys.readouterr().out)["slots"] == {"hero": "hero"}
    assert main([*common, "--profile", '{"interests": {"running": 1}}']) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["slots"] == {}
    assert result["campaigns"][1]["reason"] == "audience: visitor.interests.running gte 2 (it is 1)"
    assert main([*common]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["campaigns"][1]["reason"] == (
        "audience: visitor.interests.running gte 2 (it is 0)"
        " (no profile without personalisation consent: a first-time visitor)"
    )
    for wrong in ('{"nope": 1}', '{"score": "high"}'):
        assert main([*common, "--profile", wrong]) == 1
        assert capsys.readouterr().err.startswith("touchpoint: --profile:")


def test_simulate_a_stored_visitor(
    client, settings, rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    client.app.state.tp.now = lambda: 1_000_000
    client.post("/tp/v1/consent", json={"granted": ["marketing"]})
    client.post(
        "/tp/v1/events", json={"events": [{"type": "close", "campaign": "first-order-coupon"}]}
    )
    visitor = client.app.state.tp.recognizer.read(client.cookies["tp_vid"])
    args = [
        "simulate",
        "/demo/products/x",
        f"--visitor={visitor}",  # ids may start with "-"
        "--at",
        "1000060",
        "--json",
        "--rules-dir",
        str(rules_dir),
        *database_flags(settings),
    ]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["popups"] == []
    assert result["visitor"] == {
        "id": visitor,
        "what_if": False,
        "profile_used": False,
        "history_used": True,
    }
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


def test_check_counts_errors_and_warnings_apart(
    rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = Path(__file__).parent.parent.parent / "rules"
    (rules_dir / "scoring.yaml").write_text((root / "scoring.yaml").read_text())
    with_sales_webhook(rules_dir)  # 1 warning: site.yaml names no endpoint `sales`
    path = rules_dir / "first-order-coupon.yaml"
    path.write_text(path.read_text().replace("after_close: 7d", "after_close: 7 days"))
    assert main(["check", "--rules-dir", str(rules_dir)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1] == f"1 error, 1 warning in {rules_dir}"
    (rules_dir / "b.yaml").write_text("campaign: b\ntrigger: lod\n")
    assert main(["check", "--rules-dir", str(rules_dir)]) == 1
    assert capsys.readouterr().err.splitlines()[-1].startswith("3 errors, 1 warning in ")


def test_check_json(rules_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(__file__).parent.parent.parent / "rules"
    (rules_dir / "scoring.yaml").write_text((root / "scoring.yaml").read_text())
    with_sales_webhook(rules_dir)  # 1 warning: site.yaml names no endpoint `sales`
    assert main(["check", "--rules-dir", str(rules_dir), "--json"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    report = json.loads(out)
    assert report == {
        "ok": True,
        "rules_dir": str(rules_dir),
        "errors": 0,
        "warnings": 1,
        "problems": [
            {
                "file": str(rules_dir / "scoring.yaml"),
                "line": 26,
                "column": 15,
                "key": "thresholds.0.actions.webhook",
                "message": report["problems"][0]["message"],
                "severity": "warning",
            }
        ],
        "note": None,
        "counts": {"campaigns": 1, "scoring_rules": 8, "thresholds": 1, "coupon_pools": 0},
    }
    (rules_dir / "scoring.yaml").write_text("decay: {half_life: 4w}\n")
    assert main(["--json", "check", "--rules-dir", str(rules_dir)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["ok"], report["errors"], report["warnings"], report["counts"]) == (
        False,
        1,
        0,
        None,
    )
    assert report["problems"][0]["key"] == "decay.half_life"


@pytest.mark.parametrize(
    "command",
    [
        ["simulate", "/demo/", "--json"],
        ["simulate", "/demo/"],
        ["check", "--json"],
        ["schema", "openapi"],
        ["--json", "apikey", "list"],
    ],
    ids=" ".join,
)
def test_output_into_a_closed_pipe_ends_quietly(command: list[str], tmp_path: Path) -> None:
    """``touchpoint simulate --json | head -1``: the reader has gone before the output is
    written; no "Broken pipe", no traceback."""
    (tmp_path / "data").mkdir()
    read, write = os.pipe()
    os.close(read)  # the reader is gone: every write fails with EPIPE
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "touchpoint.cli",
                *command,
                "--rules-dir",
                str(ROOT / "rules"),
                "--data-dir",
                str(tmp_path / "data"),
            ],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write)
    assert result.stderr == "" and result.returncode == 141  # 128 + SIGPIPE, as for cat


def test_a_missing_database_says_how_to_get_one(
    rules_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--rules-dir", str(rules_dir), "--data-dir", str(tmp_path / "elsewhere")]
    for command in (
        ["simulate", "/", "--visitor", "x"],
        ["webhooks"],
        ["coupons", "list"],
        ["export", "--visitor", "x"],
        ["purge"],
    ):
        assert main([*command, *common]) == 1
        err = capsys.readouterr().err
        assert err == (
            f"touchpoint: no database at {tmp_path / 'elsewhere' / 'touchpoint.db'}: the server"
            " creates it when it first starts; start it once (touchpoint serve), or pass the"
            " server's --data-dir (or --database)\n"
        ), command
    assert not (tmp_path / "elsewhere").exists()
