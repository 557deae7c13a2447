"""touchpoint simulate: times in the site's time zone, and the visitor as read at that time."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from touchpoint.cli import main
from touchpoint.syntax.times import instant

ROOT = Path(__file__).parent.parent.parent
BERLIN_JUNE = "2026-06-01T00:00:00+02:00"
DAY = 86400


@pytest.fixture
def shipped_rules(tmp_path: Path) -> Path:
    """The example rules: Europe/Berlin, score decay (half-life 30d after 7d), lifecycle."""
    return Path(shutil.copytree(ROOT / "rules", tmp_path / "rules"))


def simulate(rules: Path, *args: str) -> None:
    assert main(["simulate", "/demo/", "--rules-dir", str(rules), *args]) == 0


def test_at_takes_dates_and_iso_times_in_the_sites_time_zone(
    shipped_rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for at, shown in [
        ("2026-12-24", "2026-12-24T00:00:00+01:00"),
        ("2026-07-01T12:00", "2026-07-01T12:00:00+02:00"),
        ("2026-12-24T18:00Z", "2026-12-24T19:00:00+01:00"),
        ("1798761600", "2027-01-01T01:00:00+01:00"),
    ]:
        simulate(shipped_rules, "--at", at)
        header = capsys.readouterr().out.splitlines()[0]
        assert header == f"/demo/ for an anonymous visitor at {shown}:"
        simulate(shipped_rules, "--at", at, "--json")
        assert json.loads(capsys.readouterr().out)["at"] == shown


def test_a_time_that_is_not_one_is_refused(
    shipped_rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", "/", "--rules-dir", str(shipped_rules), "--at", "next week"]) == 1
    assert capsys.readouterr().err.startswith("touchpoint: --at: 'next week' is not a time: write")


def test_the_visitor_as_read_at_that_time(
    shipped_rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Score decay and the lifecycle stage by the rules the live site uses, for a marketer
    checking a win-back: a customer who bought once, scored 100 and comes back after 200 days."""
    t0 = instant(BERLIN_JUNE, tz=dt.UTC)
    profile = {
        "score": 100,
        "score_at": t0,
        "visits": 4,
        "last_seen_at": t0 + 10 * DAY,
        "purchases": 1,
        "last_purchase_at": t0,
        "stage": "new-customer",
    }
    what_if = ["--profile", json.dumps(profile)]
    simulate(shipped_rules, *what_if, "--at", "2026-07-08T00:00+02:00", "--json")  # 37 days on
    assert json.loads(capsys.readouterr().out)["profile"] == {
        "score": 50.0,  # 7 days without decay, then one half-life of 30 days
        "stage": "new-customer",
        "visits": 4,
        "days_since_last_visit": 27,
    }
    profile["last_seen_at"] = t0 + 190 * DAY  # back after half a year without buying
    what_if = ["--profile", json.dumps(profile)]
    simulate(shipped_rules, *what_if, "--at", "2026-12-18")  # 200 days on
    assert capsys.readouterr().out.splitlines()[:2] == [
        "/demo/ for a what-if visitor at 2026-12-18T00:00:00+01:00:",
        "  score 1.16, stage win-back, 4 visit(s), last visit 10 day(s) ago",
    ]


def test_an_anonymous_visitor_has_no_profile_to_show(
    shipped_rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    simulate(shipped_rules, "--json")
    assert json.loads(capsys.readouterr().out)["profile"] is None
    simulate(shipped_rules)
    assert "visit(s)" not in capsys.readouterr().out
