"""rules/coupons.yaml (pools, problems by file:line), the code generator and expiry."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from touchpoint.coupons import pools as coupons
from touchpoint.coupons.pools import ALPHABET, Pool, Pools, expiry, generate_code
from touchpoint.rules import couponfiles
from touchpoint.rules import ruleset as rules
from touchpoint.rules.couponfiles import load_pools

ROOT = Path(__file__).parent.parent.parent
BERLIN = ZoneInfo("Europe/Berlin")


def read(tmp_path: Path, text: str, **kwargs: object) -> tuple[Pools, list[str]]:
    (tmp_path / "coupons.yaml").write_text(text)
    pools, problems = load_pools(tmp_path, **kwargs)  # type: ignore[arg-type]
    return pools, [str(p).replace(str(tmp_path) + "/", "") for p in problems]


def test_no_file_means_no_pools(tmp_path: Path) -> None:
    pools, problems = load_pools(tmp_path)
    assert (len(pools), problems, pools.exclude) == (0, [], None)


def test_the_example_pools() -> None:
    pools, problems = load_pools(ROOT / "rules")
    assert problems == []
    assert {name: pool.codes for name, pool in pools.items()} == {
        "welcome": "generated",
        "cart5": "static",
        "spring": "imported",
    }
    assert pools["welcome"].pattern == "WELCOME-XXXX-XXXX" and pools["welcome"].valid_days == 14
    assert pools["cart5"].code == "CART5-OFF" and pools["spring"].low_stock == 100
    assert pools.exclude == {
        "any": [{"visitor.attributes.late_payer": True}, {"visitor.attributes.bad_review": True}]
    }
    assert pools.static("CART5-OFF") is pools["cart5"] and pools.static("X") is None
    # The rules carry them: the example set loads, without a warning.
    ruleset = rules.load(ROOT / "rules")
    assert ruleset.pools == pools and ruleset.warnings == ()


def test_valid_until_ends_with_the_day_in_the_sites_time_zone(tmp_path: Path) -> None:
    text = "pools: {s: {codes: imported, valid: {until: 2030-03-31}}}\n"
    pools, _ = read(tmp_path, text, timezone=BERLIN)
    end = dt.datetime(2030, 3, 31, 23, 59, 59, tzinfo=BERLIN)
    assert pools["s"].valid_until == int(end.timestamp())
    # By default the time zone is site.yaml's.
    (tmp_path / "site.yaml").write_text("timezone: Europe/Berlin\n")
    assert load_pools(tmp_path)[0]["s"].valid_until == int(end.timestamp())
    pools, _ = read(
        tmp_path, "pools: {s: {codes: static, code: A, valid: {until: 2030-03-31 18:00}}}"
    )
    assert pools["s"].valid_until == int(dt.datetime(2030, 3, 31, 18, tzinfo=BERLIN).timestamp())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "pools:\n  w:\n    codes: generate\n",
            "coupons.yaml:3:5: pools.w.codes: did you mean `generated`? required: one of"
            " generated, imported, static",
        ),
        (
            "pools:\n  w:\n    codes: generated\n    patern: W-XXXXXX\n",
            "coupons.yaml:4:5: pools.w.patern: unknown key — did you mean `pattern`?",
        ),
        (
            "pools:\n  w: {codes: generated, pattern: W-XXXX}\n",
            "coupons.yaml:2:25: pools.w.pattern: W-XXXX has 4 random character(s) (X): at least 6",
        ),
        ("pools:\n  w: {codes: generated}\n", "pools.w.pattern: required for generated codes"),
        ("pools:\n  w: {codes: static}\n", "pools.w.code: required for a static pool"),
        ("pools:\n  w: {codes: static, code: 'A B'}\n", "pools.w.code: A B: contains a space"),
        ("pools:\n  w: {codes: static, code: A, low_stock: 3}\n", "a static pool never runs out"),
        (
            "pools:\n  w: {codes: generated, pattern: XXXXXX, low_stock: 3}\n",
            "pools.w.low_stock: a generated pool without limit never runs out: give it a limit",
        ),
        ("pools:\n  w: {codes: imported, limit: 3}\n", "pools.w.limit: only generated codes"),
        ("pools:\n  w: {codes: imported, pattern: XXXXXX}\n", "only generated codes have a"),
        ("pools:\n  w: {codes: imported, code: A}\n", "pools.w.code: only a static pool"),
        ("pools:\n  w: {codes: imported, low_stock: 0}\n", "pools.w.low_stock: a whole number"),
        ("pools:\n  w: {codes: imported, valid: {days: 0}}\n", "pools.w.valid.days: a whole"),
        ("pools:\n  w: {codes: imported, valid: {}}\n", "pools.w.valid: days: 14"),
        (
            "pools:\n  w: {codes: imported, valid: {until: soon}}\n",
            "pools.w.valid.until: 'soon' is not a date",
        ),
        ("pools:\n  W: {codes: imported}\n", "pools.W: a pool name uses lowercase letters"),
        (
            "pools:\n  a: {codes: static, code: X}\n  b: {codes: static, code: X}\n",
            "coupons.yaml:3:22: pools.b.code: X is already the code of a",
        ),
        ("exclude: [late]\npools: {a: {codes: imported}}\n", "coupons.yaml:1:1: exclude: must be"),
        ("exlude: {}\npools: {a: {codes: imported}}\n", "exlude: unknown key — did you mean"),
        ("pools: {}\n", "coupons.yaml:1:1: pools: required: pool names"),
        ("pools: [a]\n", "pools: required: pool names"),
        ("pools:\n  w: {codes: [a: b\n", "coupons.yaml:3:1: YAML syntax"),
    ],
)
def test_problems_name_file_line_key_and_a_hint(tmp_path: Path, text: str, expected: str) -> None:
    pools, problems = read(tmp_path, text)
    assert any(expected in p for p in problems), problems
    assert len(pools) == 0  # all or nothing


def test_an_ended_pool_is_a_warning(tmp_path: Path) -> None:
    pools, problems = read(tmp_path, "pools: {s: {codes: imported, valid: {until: 2020-01-31}}}")
    assert problems == [
        "coupons.yaml:1:38: warning: pools.s.valid.until: 2020-01-31 has"
        " passed: the pool hands out nothing"
    ]
    assert "s" in pools


def test_a_broken_coupons_file_stops_the_rules(tmp_path: Path) -> None:
    (tmp_path / "coupons.yaml").write_text("pools: {w: {codes: generated, pattern: W-XX}}\n")
    problems, ruleset = rules.check(tmp_path)
    assert ruleset is None and "pools.w.pattern" in str(problems[0])


def test_exclude_is_reported_at_its_own_lines(tmp_path: Path) -> None:
    text = "pools: {a: {codes: imported}}\nexclude:\n  visitor.stag: lead\n"
    pools, _ = read(tmp_path, text)
    problems: list[rules.Problem] = []
    pools.reporter(problems).problem("exclude.visitor.stag", "unknown field")
    assert str(problems[0]).endswith("coupons.yaml:3:3: exclude.visitor.stag: unknown field")


# --- codes ------------------------------------------------------------------------------------


def test_the_alphabet_has_no_look_alikes() -> None:
    assert len(set(ALPHABET)) == len(ALPHABET) == 31
    assert not set("0O1IL") & set(ALPHABET)


@given(st.from_regex(r"[A-Z0-9-]{0,6}(X[A-Z0-9-]{0,3}){6,10}", fullmatch=True))
def test_generated_codes_follow_their_pattern(pattern: str) -> None:
    code = generate_code(pattern)
    assert len(code) == len(pattern)
    for char, place in zip(code, pattern, strict=True):
        assert char in ALPHABET if place == "X" else char == place


def test_generated_codes_are_unique_and_use_the_whole_alphabet() -> None:
    codes = [generate_code("WELCOME-XXXX-XXXX") for _ in range(20_000)]
    assert len(set(codes)) == len(codes)
    assert all(re.fullmatch(r"WELCOME-[A-Z2-9]{4}-[A-Z2-9]{4}", c) for c in codes)
    assert set("".join(c[8:12] + c[13:] for c in codes)) == set(ALPHABET)


def test_an_escaped_x_is_literal() -> None:
    code = generate_code(r"\XMAS-XXXXXX")
    assert code.startswith("XMAS-") and coupons.random_places(r"\XMAS-XXXXXX") == 6


@pytest.mark.parametrize("pattern", ["", "WELCOME-XXXX", "XXXXX", r"\X\X\X\X\X\XX", "A XXXXXX"])
def test_a_pattern_without_enough_random_places_is_refused(pattern: str) -> None:
    with pytest.raises(ValueError):
        generate_code(pattern)


def test_expiry_is_the_earlier_of_days_and_until() -> None:
    assert expiry(Pool("a", "imported"), 1000) is None
    assert expiry(Pool("a", "imported", valid_days=2), 1000) == 1000 + 2 * 86400
    assert expiry(Pool("a", "imported", valid_until=5000), 1000) == 5000
    assert expiry(Pool("a", "imported", valid_days=1, valid_until=5000), 1000) == 5000
    assert expiry(Pool("a", "imported", valid_days=1, valid_until=10**9), 1000) == 87400


def test_every_key_is_documented() -> None:
    text = (ROOT / "docs" / "coupons.md").read_text()
    first_cells = "".join(
        line.split("|")[1] for line in text.splitlines() if line.startswith("| `")
    )
    for section, keys in couponfiles.KEYS.items():
        for key in keys:
            assert f"`{key}`" in first_cells or f".{key}`" in first_cells, f"{section}.{key}"
