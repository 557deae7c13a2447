"""``touchpoint report`` prints what docs/reports.md shows: the worked example is real output,
made from rollups with the example's counts."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from touchpoint import store
from touchpoint.cli import main

from ..conftest import ROOT

DOCS = ROOT / "docs" / "reports.md"
HOLDOUT = "  - {id: holdout, weight: 1, control: true}\ngoal: {event: purchase, within: 7d}\n"


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    with (rules / "first-order-coupon.yaml").open("a") as campaign:
        campaign.write(HOLDOUT)
    data = tmp_path / "data"
    data.mkdir()
    store.migrate(data / "touchpoint.db")
    return rules, data


def counted(data: Path, day: str, holdout: tuple[int, int], coupon: tuple[int, int]) -> None:
    conn = store.connect(data / "touchpoint.db")
    for variant, (visitors, converted) in (("holdout", holdout), ("ten-percent", coupon)):
        store.count_campaign(
            conn,
            day,
            "first-order-coupon",
            variant,
            1,
            exposures=visitors,
            unique_exposed=visitors,
            unique_converted=converted,
        )
    conn.close()


def report(capsys: pytest.CaptureFixture[str], rules: Path, data: Path, *args: str) -> str:
    folders = ["--rules-dir", str(rules), "--data-dir", str(data)]
    assert main(["report", *folders, *args]) == 0
    return capsys.readouterr().out


def test_the_worked_example_is_real_output(
    folders: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    rules, data = folders
    shown = re.findall(r"```text\n(.*?)```\n", DOCS.read_text(), flags=re.DOTALL)
    counted(data, "2026-11-03", (1000, 100), (1000, 130))
    week = ["campaign", "first-order-coupon", "--since", "2026-11-01", "--until", "2026-11-07"]
    assert report(capsys, rules, data, *week) == shown[0]
    counted(data, "2026-11-20", (3000, 300), (3000, 390))
    month = [*week[:-1], "2026-11-28"]
    assert report(capsys, rules, data, *month) == shown[1]


def test_csv_and_json(folders: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    rules, data = folders
    counted(data, "2026-11-03", (1000, 100), (1000, 130))
    days = ["--since", "2026-11-01", "--until", "2026-11-07"]
    lines = report(capsys, rules, data, "campaign", "first-order-coupon", "--csv", *days)
    header, control, variant = lines.splitlines()
    assert header.startswith("variant,weight,exposures,visitors,converted,rate,")
    assert variant.startswith("ten-percent,1,1000,1000,130,0.13,")
    daily = report(capsys, rules, data, "campaign", "first-order-coupon", "--csv", "--daily", *days)
    assert daily.splitlines()[1].startswith("2026-11-03,holdout,0,1000,")
    overview = report(capsys, rules, data, "--json", *days)
    assert '"campaign": "first-order-coupon"' in overview


def test_bad_input_is_one_clear_line(
    folders: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    rules, data = folders
    folder_args = ["report", "--rules-dir", str(rules), "--data-dir", str(data)]
    assert main([*folder_args, "campaign", "nope"]) == 1
    assert capsys.readouterr().err == "touchpoint: no campaign 'nope' in the rules or the results\n"
    assert main([*folder_args, "--since", "yesterday"]) == 1
    assert "since must be a date as YYYY-MM-DD" in capsys.readouterr().err
