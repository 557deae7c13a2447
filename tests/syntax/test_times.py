"""Times on the command line: one parser for simulate --at and consent summary --since."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from touchpoint.syntax.times import instant, iso

ZONES = [ZoneInfo(name) for name in ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata")]
BERLIN = ZoneInfo("Europe/Berlin")
SECONDS = st.integers(min_value=0, max_value=4_102_444_800)  # 1970 to 2100


@given(SECONDS, st.sampled_from(ZONES))
def test_every_printed_time_reads_back(at: int, tz: ZoneInfo) -> None:
    assert instant(iso(at, tz=tz), tz=tz) == at
    assert instant(iso(at, tz=tz), tz=BERLIN) == at  # the offset is in the text
    assert instant(str(at), tz=tz) == at


@given(
    st.dates(min_value=dt.date(1970, 1, 2), max_value=dt.date(2099, 12, 31)), st.sampled_from(ZONES)
)
def test_a_date_is_its_midnight_in_the_zone(day: dt.date, tz: ZoneInfo) -> None:
    at = instant(day.isoformat(), tz=tz)
    assert iso(at, tz=tz).startswith(day.isoformat() + "T00:00:00")


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        ("2026-12-24", "2026-12-24T00:00:00+01:00"),
        ("2026-07-01", "2026-07-01T00:00:00+02:00"),
        ("2026-12-24T18:00", "2026-12-24T18:00:00+01:00"),
        ("2026-12-24 18:00:30", "2026-12-24T18:00:30+01:00"),
        ("2026-12-24T18:00Z", "2026-12-24T19:00:00+01:00"),
        ("2026-12-24T18:00+05:30", "2026-12-24T13:30:00+01:00"),
        ("1798761600", "2027-01-01T01:00:00+01:00"),
    ],
)
def test_the_forms_a_time_takes(text: str, printed: str) -> None:
    assert iso(instant(text, tz=BERLIN), tz=BERLIN) == printed


@pytest.mark.parametrize(
    "text", ["", "yesterday", "2026-02-30", "2026-12-24T25:00", "24.12.2026", "-5", "1.5e9"]
)
def test_what_is_not_a_time_names_the_forms(text: str) -> None:
    with pytest.raises(ValueError, match=r"2026-12-24T18:00.*Unix seconds"):
        instant(text, tz=BERLIN)
