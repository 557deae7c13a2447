"""Matchers: how a condition's value in a rules file becomes a test of a field's value.

Each ``name(value)`` function validates the YAML value (raising ValueError with a message for
the rules author) and returns ``(test, text)``: a function of the field's value and the words
an explanation uses. Also durations, globs and dates, which the rest of the rules share.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

from .countries import country_code

Match = tuple[Callable[[Any], bool], str]

NUMBER_OPS: dict[str, Callable[[float, float], bool]] = {
    "eq": operator.eq,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "flag"
    if isinstance(value, (int, float)) or (
        isinstance(value, dict) and set(value) & set(NUMBER_OPS)
    ):
        return "number"
    return "text"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def number(value: Any) -> Match:
    if _is_number(value):
        value = {"eq": value}
    if not isinstance(value, dict) or not value:
        raise ValueError("must be a number or a mapping like {gte: 2} (eq, gt, gte, lt, lte)")
    checks = []
    for op, bound in value.items():
        if op not in NUMBER_OPS:
            raise ValueError(f"unknown comparison `{op}` (use eq, gt, gte, lt, lte)")
        if not _is_number(bound):
            raise ValueError(f"`{op}` needs a number, got {bound!r}")
        checks.append((NUMBER_OPS[op], bound))
    text = " and ".join(f"{op} {bound}" for op, bound in value.items())
    if len(checks) == 1:  # the usual case, without a generator per test (decide's hot path)
        ((check, bound),) = checks

        def match(v: Any) -> bool:
            return _is_number(v) and bool(check(v, bound))

        return match, text

    def match_all(v: Any) -> bool:
        return _is_number(v) and all(check(v, bound) for check, bound in checks)

    return match_all, text


def _strings(value: Any, what: str) -> list[str]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(
        isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in values
    ):
        raise ValueError(f"must be {what} or a list of them")
    return [str(v) for v in values]


def glob_regex(pattern: str, *, segments: bool) -> str:
    """``*`` matches within one path segment (anything when not ``segments``), ``**`` across
    segments, ``?`` one character; everything else literally.

    Patterns with several stars would backtrack exponentially as plain ``.*`` runs against a
    long request value (``*a*a*a*b`` took seconds). As in ``fnmatch`` since Python 3.11, each
    star whose next star can absorb whatever it skips takes the first match of the literal
    after it inside an atomic group, which never backtracks.
    """
    tokens: list[tuple[str, str]] = []  # ("star", class) | ("one", class) | ("lit", regex)
    any_char, in_segment = ".", "[^/]" if segments else "."
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            tokens.append(("star", any_char))
            i += 2
        elif pattern[i] == "*":
            tokens.append(("star", in_segment))
            i += 1
        elif pattern[i] == "?":
            tokens.append(("one", in_segment))
            i += 1
        else:
            tokens.append(("lit", re.escape(pattern[i])))
            i += 1
    out = []
    stars = [n for n, (kind, _) in enumerate(tokens) if kind == "star"]
    n = 0
    while n < len(tokens):
        kind, value = tokens[n]
        if kind != "star":
            out.append(value)
            n += 1
            continue
        later = [m for m in stars if m > n]
        run = "".join(v for _, v in tokens[n + 1 : later[0]]) if later else ""
        # Atomic only when the next star's class contains this one's: then taking the first
        # match of `run` loses nothing, the next star can take up the rest.
        if later and (tokens[later[0]][1] == any_char or value == tokens[later[0]][1]):
            out.append(f"(?>{value}*?{run})")
            n = later[0]
        else:
            out.append(f"{value}*")
            n += 1
    return "".join(out)


def compile_globs(patterns: list[str], *, segments: bool, flags: int = 0) -> re.Pattern[str]:
    """One regex matching a whole string that matches any of the glob ``patterns``."""
    union = "|".join(glob_regex(p, segments=segments) for p in patterns)
    return re.compile(f"(?:{union})\\Z", flags | re.DOTALL)


def globs(value: Any, *, segments: bool, want_slash: bool = False) -> Match:
    patterns = _strings(value, "a pattern like /products/*")
    if want_slash and not all(p.startswith(("/", "*")) for p in patterns):
        raise ValueError("path patterns start with /, e.g. /products/*")
    regex = compile_globs(patterns, segments=segments)
    fullmatch = regex.match
    return (lambda v: v is not None and fullmatch(v) is not None), "is " + " or ".join(patterns)


def text(value: Any) -> Match:
    """Strings compare case-insensitively and may use * and ? wildcards; or {matches: regex},
    or {exists: true|false}."""
    if isinstance(value, dict):
        if set(value) == {"exists"} and isinstance(value["exists"], bool):
            want = value["exists"]
            return (lambda v: (v is not None) is want), ("is set" if want else "is not set")
        if set(value) == {"matches"} and isinstance(value["matches"], str):
            try:
                regex = re.compile(value["matches"])
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
            search = regex.search
            return (lambda v: isinstance(v, str) and search(v) is not None), (
                f"matches /{value['matches']}/"
            )
        raise ValueError("use a string, a list of strings, {matches: regex} or {exists: true}")
    patterns = _strings(value, "a string")
    if any("*" in p or "?" in p for p in patterns):
        regex = compile_globs(patterns, segments=False, flags=re.IGNORECASE)
        fullmatch = regex.match
        test: Callable[[Any], bool] = lambda v: isinstance(v, str) and fullmatch(v) is not None  # noqa: E731
    else:
        wanted = frozenset(p.casefold() for p in patterns)
        test = lambda v: isinstance(v, str) and v.casefold() in wanted  # noqa: E731
    return test, "is " + " or ".join(patterns)


def choice(
    value: Any, choices: tuple[str, ...], *, groups: Mapping[str, frozenset[str]] | None = None
) -> Match:
    """One of ``choices`` or a list of them; a choice in ``groups`` matches its members."""
    wanted = _strings(value, "one of " + ", ".join(choices))
    for v in wanted:
        if v not in choices:
            close = difflib.get_close_matches(v, choices, n=1)
            hint = f" — did you mean `{close[0]}`?" if close else ""
            raise ValueError(f"{v!r} is not one of {', '.join(choices)}{hint}")
    groups = groups or {}
    allowed = frozenset(member for v in wanted for member in groups.get(v, (v,)))
    return (lambda v: v in allowed), "is " + " or ".join(wanted)


def language(value: Any) -> Match:
    tags = [t.lower() for t in _strings(value, "a language tag like de or de-AT")]
    if not all(re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})*", t) for t in tags):
        raise ValueError("language tags look like de, en or de-AT")
    prefixes = tuple(t + "-" for t in tags)
    exact = frozenset(tags)
    return (
        lambda v: v is not None and (v in exact or v.startswith(prefixes))
    ), "is " + " or ".join(tags)


def country(value: Any) -> Match:
    """ISO 3166-1 alpha-2 codes, any case: ``AT`` or ``[AT, CH]``."""
    values = value if isinstance(value, list) else [value]
    if any(v is False for v in values):
        raise ValueError('YAML reads a bare NO as false: write Norway as "NO", in quotes')
    codes = [country_code(v) for v in _strings(value, "a country code like AT")]
    allowed = frozenset(codes)
    return (lambda v: v in allowed), "is " + " or ".join(codes)


DURATION = re.compile(r"^(\d+)([smhd])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
FOREVER = None  # the duration `never`


def parse_duration(value: Any) -> int | None:
    """``7d``, ``12h``, ``30m``, ``45s`` to seconds; ``never`` to FOREVER. Raises ValueError."""
    if value == "never":
        return FOREVER
    if isinstance(value, int) and not isinstance(value, bool) and value == 0:
        return 0
    match = DURATION.match(value.strip()) if isinstance(value, str) else None
    if not match:
        hint = ""
        words = re.match(r"^\s*(\d+)\s*([a-z])", str(value))
        if words and words.group(2) in UNITS:
            hint = f" — write `{words.group(1)}{words.group(2)}`"
        elif words and words.group(2) == "w":
            hint = f" — write `{int(words.group(1)) * 7}d`"
        raise ValueError(f"expected a duration like 7d, 12h, 30m or never, got {value!r}{hint}")
    return int(match.group(1)) * UNITS[match.group(2)]


def when(value: Any) -> Match:
    """For campaign.<id>.seen/closed/converted, whose value is seconds since (or None)."""
    if isinstance(value, bool):
        want = value
        return (lambda ago: (ago is not None) is want), ("happened" if want else "never happened")
    if isinstance(value, dict) and len(value) == 1:
        ((op, duration),) = value.items()
        if op in ("within", "before"):
            seconds = parse_duration(duration)
            if not seconds:
                raise ValueError(f"`{op}` needs a duration like 7d")
            if op == "within":
                return (lambda ago: ago is not None and ago < seconds), f"within {duration}"
            return (lambda ago: ago is not None and ago >= seconds), f"more than {duration} ago"
    raise ValueError("write true, false, {within: 7d} or {before: 30d}")


def schedule(value: Any) -> Match:
    """{from: 2026-12-01, until: 2026-12-24, weekdays: [sat, sun], hours: "09:00-18:00"}."""
    if not isinstance(value, dict) or not value:
        raise ValueError("a mapping with from, until, weekdays and/or hours")
    unknown = set(value) - {"from", "until", "weekdays", "hours"}
    if unknown:
        raise ValueError(
            f"unknown schedule key(s) {', '.join(sorted(map(str, unknown)))}"
            " (from, until, weekdays, hours)"
        )
    checks: list[Callable[[dt.datetime], bool]] = []
    parts = []
    start = moment(value.get("from"), end=False) if "from" in value else None
    end = moment(value.get("until"), end=True) if "until" in value else None
    if start is not None:
        checks.append(lambda t: t.replace(tzinfo=None) >= start)
        parts.append(f"from {value['from']}")
    if end is not None:
        checks.append(lambda t: t.replace(tzinfo=None) <= end)
        parts.append(f"until {value['until']}")
    if "weekdays" in value:
        days = _strings(value["weekdays"], "a weekday (mon ... sun)")
        bad = [d for d in days if d not in WEEKDAYS]
        if bad:
            raise ValueError(f"weekdays are written {', '.join(WEEKDAYS)}; got {bad[0]!r}")
        numbers = frozenset(WEEKDAYS.index(d) for d in days)
        checks.append(lambda t: t.weekday() in numbers)
        parts.append("on " + ", ".join(days))
    if "hours" in value:
        spans = [_hours(h) for h in _strings(value["hours"], 'a span like "09:00-18:00"')]
        checks.append(lambda t: any(_in_span(t.hour * 60 + t.minute, s) for s in spans))
        parts.append("at " + ", ".join(map(str, _strings(value["hours"], ""))))
    return (lambda t: all(c(t) for c in checks)), " ".join(parts)


def moment(value: Any, *, end: bool) -> dt.datetime:
    """A date (the whole day, quoted or not) or a date and time, as naive local time of the
    site (``timezone`` in site.yaml)."""
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        try:
            value = dt.date.fromisoformat(value.strip())
        except ValueError:
            pass  # reported below
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, dt.time.max if end else dt.time.min)
    if isinstance(value, dt.datetime):
        when = value
    else:
        try:
            when = dt.datetime.fromisoformat(str(value))  # "2026-12-24 18:00"
        except ValueError:
            raise ValueError(
                f"{value!r} is not a date like 2026-12-24 or 2026-12-24 18:00"
            ) from None
    if when.tzinfo is not None:
        raise ValueError(
            f"{when} has a UTC offset: write the site's local time (site.yaml timezone)"
        )
    return when


def _hours(span: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})", span.strip())
    if not match:
        raise ValueError(f'hours are written like "09:00-18:00", got {span!r}')
    h1, m1, h2, m2 = map(int, match.groups())
    if max(h1 * 60 + m1, h2 * 60 + m2) > 24 * 60 or m1 > 59 or m2 > 59:
        raise ValueError(f"{span!r} is not a time span of a day")
    return h1 * 60 + m1, h2 * 60 + m2


def _in_span(minute: int, span: tuple[int, int]) -> bool:
    start, end = span
    if start <= end:
        return start <= minute < end
    return minute >= start or minute < end  # across midnight, e.g. 22:00-06:00
