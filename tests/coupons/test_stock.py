"""touchpoint coupons import, generate and list; reading codes from CSV."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from touchpoint import store
from touchpoint.cli import main
from touchpoint.coupons.stock import csv_rows, json_rows

ROOT = Path(__file__).parent.parent.parent


@pytest.fixture
def args(tmp_path: Path, rules_dir: Path) -> list[str]:
    """The folders of a test, with the example coupons.yaml; the data folder exists, as it does
    for a server that has started (or was made for it)."""
    shutil.copy(ROOT / "rules" / "coupons.yaml", rules_dir)
    (tmp_path / "data").mkdir()
    return ["--rules-dir", str(rules_dir), "--data-dir", str(tmp_path / "data")]


def test_the_first_column_holds_the_codes() -> None:
    lines = ["A-1,5 EUR\n", " A-2 ;x\n", "\n", "A-3\n"]
    assert list(csv_rows(lines)) == [(1, "A-1"), (2, "A-2 ;x"), (4, "A-3")]


def test_a_header_names_the_code_column_and_any_delimiter_works() -> None:
    assert list(csv_rows(["value;Code\n", "5;B-1\n", "7;  B-2 \n", "9\n"])) == [
        (2, "B-1"),
        (3, "B-2"),
        (4, ""),
    ]
    assert list(csv_rows(["id\tcode\n", "1\tC-1\n"])) == [(2, "C-1")]
    # A quoted value over two lines: the line it ends on is reported.
    assert list(csv_rows(["code,note\n", 'D-1,"two\n', 'lines"\n', "D-2,x\n"])) == [
        (3, "D-1"),
        (4, "D-2"),
    ]
    assert list(csv_rows([])) == []


def test_json_codes() -> None:
    assert json_rows([" a ", "b"]) == [(1, "a"), (2, "b")]
    with pytest.raises(ValueError):
        json_rows(["a", 1])


def test_import_reports_every_skipped_row_and_a_summary(
    tmp_path: Path, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "codes.csv"
    csv.write_text("\ufeffcode,value\nS-1,5\nS-2,5\n,5\nS-1,5\nS 3,5\n", encoding="utf-8")
    assert main(["coupons", "import", "spring", str(csv), *args]) == 1  # invalid rows
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        f"{csv}:4: empty",
        f"{csv}:5: S-1: repeats line 2",
        f"{csv}:6: S 3: contains a space",
    ]
    assert out == (
        "spring: 2 code(s) added; skipped 1 repeated in the file, 2 invalid;"
        " 2 free — below low_stock (100)\n"
    )
    csv.write_text("S-1\nS-4\n")
    assert main(["coupons", "import", "spring", str(csv), *args]) == 0
    out, err = capsys.readouterr()
    assert err == f"{csv}:1: S-1: already stored\n"
    assert out.startswith("spring: 1 code(s) added; skipped 1 already stored; 3 free")


def test_import_refuses_pools_of_other_kinds_and_unknown_ones(
    tmp_path: Path, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "codes.csv"
    csv.write_text("A\n")
    assert main(["coupons", "import", "welcome", str(csv), *args]) == 1
    assert "pool welcome has generated codes, not imported; use touchpoint coupons generate" in (
        capsys.readouterr().err
    )
    assert main(["coupons", "import", "nope", str(csv), *args]) == 1
    assert "no pool 'nope' in coupons.yaml (pools: welcome, cart5, spring)" in (
        capsys.readouterr().err
    )
    csv.write_bytes(b"A\n\xff\n")
    assert main(["coupons", "import", "spring", str(csv), *args]) == 1
    assert "not UTF-8 text" in capsys.readouterr().err


def test_generate_prints_the_codes_it_made(
    tmp_path: Path, args: list[str], rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["coupons", "generate", "welcome", "3", *args]) == 0
    out, err = capsys.readouterr()
    codes = out.split()
    assert len(set(codes)) == 3 and all(re.fullmatch(r"WELCOME-\w{4}-\w{4}", c) for c in codes)
    assert err == "welcome: 3 code(s) made, 3 so far\n"
    text = (rules_dir / "coupons.yaml").read_text()
    (rules_dir / "coupons.yaml").write_text(text.replace("valid: {days: 14}", "limit: 5"))
    assert main(["coupons", "generate", "welcome", "3", *args]) == 1
    assert "has made 3 of its limit of 5 codes: 2 more fit" in capsys.readouterr().err
    assert main(["coupons", "generate", "spring", "3", *args]) == 1


def test_list_shows_the_stock(
    tmp_path: Path, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["coupons", "list", *args]) == 1  # no database yet
    assert "no database at" in capsys.readouterr().err
    csv = tmp_path / "codes.csv"
    csv.write_text("S-1\nS-2\n")
    main(["coupons", "import", "spring", str(csv), *args])
    conn = store.connect(tmp_path / "data" / "touchpoint.db")
    conn.execute("INSERT INTO coupon_codes (code, pool, added_at) VALUES ('OLD', 'gone', 1)")
    conn.close()
    capsys.readouterr()
    assert main(["coupons", "list", *args]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["pool", "codes", "free", "assigned", "redeemed", "remaining"]
    assert lines[1].split() == ["cart5", "static", "-", "0", "0", "unlimited"]
    assert lines[2].split() == ["gone", "-", "1", "0", "0", "1", "not", "in", "coupons.yaml"]
    assert lines[3].split() == ["spring", "imported", "2", "0", "0", "2", "LOW", "(below", "100)"]
    assert main(["coupons", "list", "--json", *args]) == 0
    pools = json.loads(capsys.readouterr().out)["pools"]
    assert pools[2] == {
        "pool": "spring",
        "codes": "imported",
        "free": 2,
        "assigned": 0,
        "redeemed": 0,
        "generated": 0,
        "limit": None,
        "remaining": 2,
        "low_stock": 100,
        "low": True,
    }


def test_a_broken_coupons_file_is_reported(
    tmp_path: Path, args: list[str], rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (rules_dir / "coupons.yaml").write_text("pools: {w: {codes: generated}}\n")
    assert main(["coupons", "list", *args]) == 1
    assert "coupons.yaml:1:9: pools.w.pattern: required" in capsys.readouterr().err
