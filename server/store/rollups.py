"""Rollups: counts per day, campaign, variant and campaign version, and per day of lifecycle
moves, written in the same transaction as what they count, so that they never drift from it.

They hold no visitor id and nothing about one person: erasing a person leaves them as they
are, and they outlive the event log's retention (and exist at every data depth), which is
what lets a marketer read a campaign's results a year on. The unique visitors behind
exposures and conversions are counted once per visitor and campaign version, on the day of
their first exposure (or conversion), through two markers in the visitor's ``campaign_state``
row (``exposed_version``, ``converted_version``); erasing the row lets a person who comes back
count again, as a new visitor would.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo

from .activity import Activity, Effects
from .coupons import Redemption
from .engine import Connection

# The counters of rollup_campaigns, in the order the reports show them.
CAMPAIGN_COUNTS = (
    "armed",  # decide answers that armed it (the page view's popups and slots)
    "exposures",  # shown, or held back for a control variant (impression or exposure events)
    "closes",
    "conversions",  # convert events: its call to action clicked or its form sent
    "forms",  # form submissions in it
    "reveals",  # coupon codes handed out by it
    "redemptions",  # its codes used in an order (the shop's redeem call)
    "unique_exposed",  # visitors exposed to this campaign version for the first time
    "unique_converted",  # exposed visitors converting for the first time (this version)
)
NO_VARIANT = ""  # a campaign event that named no variant
GOAL_EVENTS = ("purchase", "form_submit", "custom", "click", "page_view")


@dataclass(frozen=True)
class Goal:
    """What converts a campaign's visitors, a control variant's included: an activity of type
    ``event`` (with ``name``, on a page matching ``path``, where given) within ``within``
    seconds after the visitor's last exposure to it."""

    event: str  # one of GOAL_EVENTS
    name: str | None = None
    path: re.Pattern[str] | None = None
    within: int = 7 * 86_400

    def reached_by(self, activity: Activity) -> bool:
        return (
            activity.type == self.event
            and (self.name is None or activity.name == self.name)
            and (self.path is None or bool(self.path.fullmatch(activity.path or "")))
        )


@functools.lru_cache(maxsize=256)  # a few calls a request, with one second's value
def day(at: int, tz: tzinfo) -> str:
    """The calendar day of ``at`` (Unix seconds) in the site's time zone, as YYYY-MM-DD."""
    return datetime.fromtimestamp(at, tz).date().isoformat()


_UPSERTS = tuple(
    f"INSERT INTO {table} (campaign, version, variant, {period}, {', '.join(CAMPAIGN_COUNTS)})"
    f" VALUES (?, ?, ?, {cut}, {', '.join('?' * len(CAMPAIGN_COUNTS))})"
    f" ON CONFLICT (campaign, version, variant, {period}) DO UPDATE SET "
    + ", ".join(f"{n} = {table}.{n} + excluded.{n}" for n in CAMPAIGN_COUNTS)
    for table, period, cut in (
        ("rollup_campaigns", "day", "?"),
        ("rollup_campaign_months", "month", "substr(?, 1, 7)"),
    )
)
_INDEX = {name: i for i, name in enumerate(CAMPAIGN_COUNTS)}
Key = tuple[str, int, str, str]  # campaign, version, variant, day


class Tally:
    """The campaign counts of one write transaction, added up per row and written once, just
    before its commit: a group of a hundred events of one campaign is one row update, not a
    hundred. Each unit of the transaction is kept or dropped with its savepoint."""

    def __init__(self) -> None:
        self.kept: dict[Key, list[int]] = {}
        self.unit: dict[Key, list[int]] = {}

    def keep_unit(self) -> None:
        for key, counts in self.unit.items():
            row = self.kept.get(key)
            if row is None:
                self.kept[key] = counts
            else:
                for i, n in enumerate(counts):
                    row[i] += n
        self.unit = {}

    def drop_unit(self) -> None:
        self.unit = {}

    def flush(self, conn: Connection) -> None:
        self.keep_unit()
        if self.kept:
            # In key order: two writers (nodes on PostgreSQL) lock shared rows in one order and
            # never wait for each other crosswise.
            rows = [(*k, *v) for k, v in sorted(self.kept.items())]
            for upsert in _UPSERTS:
                conn.executemany(upsert, rows)
        self.kept = {}


_TALLIES: dict[int, Tally] = {}  # by id() of the connection whose transaction is open


@contextlib.contextmanager
def tallied(conn: Connection) -> Iterator[Tally]:
    """Count campaigns into one Tally while a transaction of ``conn`` is open; the caller
    flushes it before the commit (store.writer, store.immediate)."""
    tally = _TALLIES[id(conn)] = Tally()
    try:
        yield tally
    finally:
        _TALLIES.pop(id(conn), None)


Counts = tuple[tuple[int, int], ...]  # (index in CAMPAIGN_COUNTS, how many)


def counts(**named: int) -> Counts:
    """Counters by name (of CAMPAIGN_COUNTS), made once for :func:`add`."""
    try:
        return tuple((_INDEX[name], n) for name, n in named.items())
    except KeyError as exc:
        raise ValueError(f"unknown rollup counter: {exc}") from None


def add(
    conn: Connection,
    on: str,
    campaign: str,
    variant: str | None,
    version: int,
    counted: Counts,
) -> None:
    """Add ``counted`` to the campaign's row of day ``on``: into the open transaction's tally,
    or at once. The writer's path, once per campaign event."""
    key = (campaign, version, variant or NO_VARIANT, on)
    tally = _TALLIES.get(id(conn))
    row = tally.unit.get(key) if tally is not None else None
    if row is None:
        row = [0] * len(CAMPAIGN_COUNTS)
        if tally is not None:
            tally.unit[key] = row
    for i, n in counted:
        row[i] += n
    if tally is None:
        for upsert in _UPSERTS:
            conn.execute(upsert, (*key, *row))


def count_campaign(
    conn: Connection,
    on: str,
    campaign: str,
    variant: str | None,
    version: int,
    **named: int,
) -> None:
    """:func:`add` with the counters by name."""
    if not named:
        raise ValueError("no rollup counters")
    add(conn, on, campaign, variant, version, counts(**named))


def count_revenue(
    conn: Connection,
    on: str,
    campaign: str,
    variant: str | None,
    version: int,
    currency: str,
    value: float,
) -> None:
    """One redemption worth ``value`` in ``currency``: its count, sum and sum of squares (for
    the spread of revenue per visitor)."""
    conn.execute(
        "INSERT INTO rollup_revenue (day, campaign, variant, version, currency, redemptions,"
        " revenue, revenue_squares) VALUES (?, ?, ?, ?, ?, 1, ?, ?)"
        " ON CONFLICT (campaign, version, variant, currency, day) DO UPDATE SET"
        " redemptions = rollup_revenue.redemptions + 1,"
        " revenue = rollup_revenue.revenue + excluded.revenue,"
        " revenue_squares = rollup_revenue.revenue_squares + excluded.revenue_squares",
        (on, campaign, variant or NO_VARIANT, version, currency, value, value * value),
    )


def converted(
    conn: Connection,
    visitor_id: str,
    campaign: str,
    state: tuple[str | None, int | None, int | None] | None,
) -> tuple[str, int] | None:
    """The (variant, version) the visitor was exposed to when this is their first conversion
    since that exposure (and mark it counted), from their campaign_state ``state`` (variant,
    exposed_version, converted_version); None when it is not, or they were never exposed (a
    conversion nobody saw the campaign for is counted, but not as a visitor)."""
    if state is None or state[1] is None or state[2] == state[1]:
        return None
    conn.execute(
        "UPDATE campaign_state SET converted_version = exposed_version"
        " WHERE visitor_id = ? AND campaign = ?",
        (visitor_id, campaign),
    )
    return state[0] or NO_VARIANT, state[1]


def first_conversion(conn: Connection, visitor_id: str, campaign: str) -> tuple[str, int] | None:
    """:func:`converted`, reading the visitor's campaign_state first."""
    state = conn.execute(
        "SELECT variant, exposed_version, converted_version FROM campaign_state"
        " WHERE visitor_id = ? AND campaign = ?",
        (visitor_id, campaign),
    ).fetchone()
    return converted(conn, visitor_id, campaign, state)


def count_goals(
    conn: Connection,
    visitor_id: str,
    activities: Iterable[Activity],
    goals: Mapping[str, Goal],
    tz: tzinfo,
) -> None:
    """The visitors reaching the goal of a campaign they were exposed to (shown it, or held
    back from it) within its window: a conversion of the variant and version they had."""
    for activity in activities:
        for campaign, goal in goals.items():
            if not goal.reached_by(activity):
                continue
            row = conn.execute(
                "SELECT last_seen_at FROM campaign_state WHERE visitor_id = ? AND campaign = ?",
                (visitor_id, campaign),
            ).fetchone()
            if row is None or row[0] is None or not 0 <= activity.at - row[0] <= goal.within:
                continue
            first = first_conversion(conn, visitor_id, campaign)
            if first is not None:
                on = day(activity.at, tz)
                count_campaign(conn, on, campaign, *first, unique_converted=1)


def count_form(conn: Connection, visitor_id: str, name: str, on: str) -> None:
    """A form sent in a popup (named after its campaign), credited to the variant and version
    the visitor was shown; nothing for a form of no campaign the visitor was exposed to."""
    row = conn.execute(
        "SELECT variant, coalesce(exposed_version, version) FROM campaign_state"
        " WHERE visitor_id = ? AND campaign = ?",
        (visitor_id, name),
    ).fetchone()
    if row is not None and row[1] is not None:
        count_campaign(conn, on, name, row[0], row[1], forms=1)


def count_redemption(
    conn: Connection, done: Redemption, on: str, version: int, *, goal: bool = False
) -> None:
    """A redemption credited to the campaign and variant that revealed the code: its count,
    its revenue, and the visitor's conversion (once per visitor and version; not for a
    campaign with a ``goal``, whose conversions are the goal's). ``version`` is the
    campaign's when the visitor's own exposure is not known."""
    if done.campaign is None:
        return
    first = None
    if done.visitor_id and not goal:
        first = first_conversion(conn, done.visitor_id, done.campaign)
    if first is not None:
        version = first[1]
    count_campaign(conn, on, done.campaign, done.variant, version, redemptions=1)
    if first is not None:
        count_campaign(conn, on, done.campaign, *first, unique_converted=1)
    if done.value is not None:
        count_revenue(
            conn, on, done.campaign, done.variant, version, done.currency or "", done.value
        )


def count_new_profile(conn: Connection, stage: str, on: str) -> None:
    """A profile's first page view: it enters the lifecycle (from "" to its stage)."""
    _count_move(conn, on, "", stage)


def _count_move(conn: Connection, on: str, before: str, after: str) -> None:
    conn.execute(
        "INSERT INTO rollup_stages (day, before, after, moves) VALUES (?, ?, ?, 1)"
        " ON CONFLICT (day, before, after) DO UPDATE SET moves = rollup_stages.moves + 1",
        (on, before, after),
    )


def count_effects(conn: Connection, effects: Effects, *, at: int, tz: tzinfo) -> None:
    """The lifecycle moves and the score thresholds crossed (at ``at``) of one write."""
    for change in effects.stage_changes:
        _count_move(conn, day(change.at, tz), change.before or "", change.after)
    for threshold in effects.crossed:
        conn.execute(
            "INSERT INTO rollup_thresholds (day, threshold, crossings) VALUES (?, ?, 1)"
            " ON CONFLICT (day, threshold) DO UPDATE"
            " SET crossings = rollup_thresholds.crossings + 1",
            (day(at, tz), threshold),
        )
