"""Times written on the command line (``simulate --at``, ``consent summary --since``) and
printed back: one parser, so every command takes the same forms.

A time is Unix seconds (``1798761600``), a date (``2026-12-24``: its midnight), or a date and
time in ISO 8601 (``2026-12-24T18:00``, ``2026-12-24 18:00:30``). A date, or a date and time
without an offset, is local time of the zone the command names (the site's ``timezone`` for
``simulate``, UTC for the consent log); ``Z`` or an offset (``+01:00``) says it outright.
"""

from __future__ import annotations

import datetime as dt
import re

FORMS = (
    "write a date (2026-12-24), a date and time (2026-12-24T18:00, with or without an offset)"
    " or Unix seconds"
)


def instant(text: str, *, tz: dt.tzinfo) -> int:
    """Unix seconds of ``text``; raises ValueError naming the forms a time is written in."""
    text = text.strip()
    if re.fullmatch(r"\d+", text):
        return int(text)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a date: {FORMS}") from None
        return int(dt.datetime.combine(day, dt.time.min, tzinfo=tz).timestamp())
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}.*", text):
        raise ValueError(f"{text!r} is not a time: {FORMS}")
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a time: {FORMS}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    return int(when.timestamp())


def iso(at: int, *, tz: dt.tzinfo) -> str:
    """``at`` (Unix seconds) as ISO 8601 in ``tz``, to the second, with its offset."""
    return dt.datetime.fromtimestamp(at, tz).isoformat(timespec="seconds")
