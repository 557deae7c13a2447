"""Writes about one visitor: consent answers, campaign events, page views and activities
(the event log, the profile, its score and stage, in one transaction)."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, tzinfo
from typing import Any, NamedTuple

import orjson

from . import eventlog, rollups
from .activity import Activity, Effects
from .datadepth import keeps
from .engine import Connection, dialect_of
from .reader import PROFILE_COLUMNS, profile_from_row, profile_of
from .records import PageViewUpdate, Profile, ProfileMoves


@dataclass(frozen=True)
class Event:
    type: str
    campaign: str
    variant: str | None
    path: str | None
    version: int = 1  # the campaign's version when the event happened


# Which campaign_state column each campaign event type stamps. An exposure is the impression a
# holdout visitor would have had: it counts towards caps like one, so both groups see the
# same number of chances.
_STATE_COLUMN = {
    "impression": "last_seen_at",
    "exposure": "last_seen_at",
    "close": "last_closed_at",
    "convert": "last_converted_at",
}


def record_consent(
    conn: Connection,
    visitor_id: str,
    *,
    at: int,
    revision: int,
    granted: Iterable[str],
    denied: Iterable[str],
    method: str,
) -> None:
    """Log an answer and keep the visitor's current consent; a refusal creates no profile."""
    granted_list = sorted(granted)
    granted_json = json.dumps(granted_list)
    if granted_list:
        conn.execute(
            "INSERT INTO visitors (id, created_at, consent_revision, consent_granted, consent_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
            " consent_revision = excluded.consent_revision,"
            " consent_granted = excluded.consent_granted, consent_at = excluded.consent_at",
            (visitor_id, at, revision, granted_json, at),
        )
    else:
        conn.execute(
            "UPDATE visitors SET consent_revision = ?, consent_granted = '[]', consent_at = ?"
            " WHERE id = ?",
            (revision, at, visitor_id),
        )
    _forget_withheld(conn, visitor_id, set(granted_list))
    conn.execute(
        "INSERT INTO consent_log (visitor_id, at, revision, granted, denied, method)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (visitor_id, at, revision, granted_json, json.dumps(sorted(denied)), method),
    )


def _forget_withheld(conn: Connection, visitor_id: str, granted: set[str]) -> None:
    """Drop what a category no longer granted allowed: the profile without personalisation,
    the behaviour in the event log without measurement and personalisation, the campaign
    history and campaign events without marketing (GDPR Art. 17(1)(b)). Withdrawing every
    category erases the visitor altogether (consent/answers.py)."""
    if "personalisation" not in granted:
        # Without a profile there is nobody to recognise by e-mail or customer id either.
        conn.execute("DELETE FROM identities WHERE visitor_id = ?", (visitor_id,))
        conn.execute(
            "UPDATE visitors SET first_seen_at = NULL, last_seen_at = NULL, visits = 0,"
            " page_views = 0, session_started_at = NULL, session_page_views = 0,"
            " stage = 'visitor', score = 0, identified = 0, data = '{}' WHERE id = ?",
            (visitor_id,),
        )
        conn.execute("DELETE FROM stage_history WHERE visitor_id = ?", (visitor_id,))
    if not granted & {"measurement", "personalisation"}:
        sql = f"DELETE FROM events WHERE {eventlog.of_visitor()} AND campaign IS NULL"
        conn.execute(sql, (visitor_id,))
    if "marketing" not in granted:
        conn.execute("DELETE FROM campaign_state WHERE visitor_id = ?", (visitor_id,))
        sql = f"DELETE FROM events WHERE {eventlog.of_visitor()} AND campaign IS NOT NULL"
        conn.execute(sql, (visitor_id,))


def record_events(
    conn: Connection,
    visitor_id: str,
    events: Iterable[Event],
    *,
    at: int,
    visit_start: int,
    depth: str = "standard",
    tz: tzinfo = UTC,
    goals: Collection[str] = (),
) -> int:
    """Store campaign events and keep ``campaign_state`` in step with them. ``visit_start``
    (profiles.visit_start) decides whether an impression is in the same visit as the last.
    The events themselves go to the event log where ``depth`` keeps one (store/datadepth.py),
    their counts to the rollups of the day in ``tz`` (a convert event does not convert the
    visitor of a campaign in ``goals``: its goal does); nothing is stored for a visitor erased
    since the request read it."""
    found = conn.execute("SELECT num FROM visitors WHERE id = ?", (visitor_id,)).fetchone()
    if found is None:
        return 0
    log = keeps(depth, "events")
    on = rollups.day(at, tz)
    count = 0
    for event in events:
        if log:
            row = (at, event.type, event.campaign, event.variant, event.path)
            eventlog.insert(conn, visitor_id, [(*row, None, None, None, None)], number=found[0])
        # The rollups: the state row as this event leaves it says whether the visitor counts
        # for the first time (store/rollups.py), without a read of its own.
        column = _STATE_COLUMN[event.type]
        if column == "last_seen_at":
            (first,) = conn.execute(
                _IMPRESSION,
                (visitor_id, event.campaign, at, event.variant, *(event.version,) * 2, visit_start),
            ).fetchone()
            counted = _FIRST_EXPOSURE if first else _EXPOSURE
        elif event.type == "convert" and event.campaign not in goals:
            # Else its goal converts the visitor (rollups.count_goals).
            variant, version, first = conn.execute(
                _CONVERT, (visitor_id, event.campaign, at)
            ).fetchone()
            counted = _CONVERSION
            if first:  # for the variant and version they were shown
                rollups.add(conn, on, event.campaign, variant, version, _FIRST_CONVERSION)
        else:
            conn.execute(
                f"INSERT INTO campaign_state (visitor_id, campaign, {column}) VALUES (?, ?, ?)"
                f" ON CONFLICT (visitor_id, campaign) DO UPDATE SET {column} = excluded.{column}",
                (visitor_id, event.campaign, at),
            )
            counted = _CONVERSION if event.type == "convert" else _CLOSE
        rollups.add(conn, on, event.campaign, event.variant, event.version, counted)
        count += 1
    return count


_EXPOSURE = rollups.counts(exposures=1)
_FIRST_EXPOSURE = rollups.counts(exposures=1, unique_exposed=1)
_CLOSE = rollups.counts(closes=1)
_CONVERSION = rollups.counts(conversions=1)
_FIRST_CONVERSION = rollups.counts(unique_converted=1)

# The rollups count each visitor once per campaign version (store/rollups.py): the state row's
# ``was_first`` says whether this very write was the visitor's first exposure to the version
# shown, or their first conversion since, so no statement of its own reads or marks it. Both
# engines evaluate every SET expression on the row as it was before the update.
_IMPRESSION = (
    "INSERT INTO campaign_state AS s (visitor_id, campaign, impressions, last_seen_at,"
    " session_impressions, variant, version, exposed_version, was_first)"
    " VALUES (?, ?, 1, ?, 1, ?, ?, ?, 1)"
    " ON CONFLICT (visitor_id, campaign) DO UPDATE SET"
    " impressions = s.impressions + 1,"
    " session_impressions = CASE WHEN s.last_seen_at >= ? THEN s.session_impressions + 1"
    "   ELSE 1 END,"
    " last_seen_at = excluded.last_seen_at,"
    " variant = excluded.variant, version = excluded.version,"
    " was_first = CASE WHEN s.exposed_version IS DISTINCT FROM excluded.version THEN 1 ELSE 0 END,"
    " converted_version = CASE WHEN s.exposed_version IS NOT DISTINCT FROM excluded.version"
    "   THEN s.converted_version END,"
    " exposed_version = excluded.version"
    " RETURNING was_first"
)
_CONVERT = (
    "INSERT INTO campaign_state AS s (visitor_id, campaign, last_converted_at, was_first)"
    " VALUES (?, ?, ?, 0)"
    " ON CONFLICT (visitor_id, campaign) DO UPDATE SET"
    " last_converted_at = excluded.last_converted_at,"
    " was_first = CASE WHEN s.exposed_version IS NOT NULL"
    "   AND s.converted_version IS DISTINCT FROM s.exposed_version THEN 1 ELSE 0 END,"
    " converted_version = s.exposed_version"
    " RETURNING variant, exposed_version, was_first"
)


UPDATE_PROFILE = (
    "UPDATE visitors SET first_seen_at = ?, last_seen_at = ?, visits = ?, page_views = ?,"
    " session_started_at = ?, session_page_views = ?, stage = ?, score = ?, identified = ?,"
    " data = ? WHERE id = ?"
)


def profile_values(profile: Profile) -> tuple[Any, ...]:
    return (
        profile.first_seen_at,
        profile.last_seen_at,
        profile.visits,
        profile.page_views,
        profile.session_started_at,
        profile.session_page_views,
        profile.stage,
        profile.score,
        int(profile.identified),
        orjson.dumps(profile.data_json()).decode(),
    )


def record_page_view(
    conn: Connection,
    visitor_id: str,
    view: PageViewUpdate,
    *,
    session_idle: int,
    rules: ProfileMoves,
    read: Profile | None = None,
    result: tuple[Profile, Effects] | None = None,
    depth: str = "standard",
) -> Effects | None:
    """Count a page view in the visitor's profile, log it and score it (``rules.page_view``);
    None when the visitor has no row.

    ``result`` is the profile (and effects) the caller already computed with ``rules`` from
    the profile it ``read``: it is written in one statement if the row still holds what was
    read (its page view count, last page view, score, stage and JSON part), which spares the
    writer a lookup; the update gives back the visitor's number for the event log. Otherwise,
    say after a page view in another tab or an attribute set meanwhile, the row is read again
    and the view applied. ``depth`` (the data_depth) decides whether the view is logged as an
    event.
    """
    effects: Effects | None = None
    number = None  # the visitor's, by which the event log names them: the update returns it
    if read is not None and result is not None:
        guarded = (
            UPDATE_PROFILE
            + " AND page_views = ? AND last_seen_at IS NOT DISTINCT FROM ? AND score = ?"
            " AND stage = ? AND identified = ? AND data = ? RETURNING num"
        )
        read_data = orjson.dumps(read.data_json()).decode()
        values = (
            *profile_values(result[0]),
            visitor_id,
            read.page_views,
            read.last_seen_at,
            read.score,
            read.stage,
            int(read.identified),
            read_data,
        )
        updated = conn.execute(guarded, values).fetchone()
        if updated is not None:
            profile, effects = result
            number = updated[0]
    if effects is None:
        stored = profile_of(conn, visitor_id, lock=True)
        if stored is None:
            return None
        profile, effects = rules.page_view(
            stored, view, session_idle=session_idle, visitor_id=visitor_id
        )
        returning = UPDATE_PROFILE + " RETURNING num"
        (number,) = conn.execute(returning, (*profile_values(profile), visitor_id)).fetchone()
    if profile.page_views == 1:  # a new profile enters the funnel at its first stage
        rollups.count_new_profile(conn, profile.stage, rollups.day(view.at, rules.timezone))
    _insert_activities(conn, visitor_id, [page_view_activity(view)], depth=depth, number=number)
    _insert_effects(conn, visitor_id, effects, depth=depth, at=view.at, tz=rules.timezone)
    return effects


def page_view_activity(view: PageViewUpdate) -> Activity:
    """The event-log activity of a counted page view."""
    return Activity("page_view", view.at, path=view.path)


class ConsentAndProfile(NamedTuple):
    granted: frozenset[str]  # none when given for another consent revision than the one named
    profile: Profile
    number: int  # visitors.num, by which the event log names the visitor


def consent_and_profile(
    conn: Connection, visitor_id: str, *, revision: int | None = None
) -> ConsentAndProfile | None:
    """The consent categories a visitor granted (none when given for another consent
    ``revision`` than the one named), their stored profile and number; None without a row."""
    row = conn.execute(
        f"SELECT consent_revision, consent_granted, num, {PROFILE_COLUMNS} FROM visitors"
        " WHERE id = ?" + dialect_of(conn).for_update,
        (visitor_id,),
    ).fetchone()
    if row is None:
        return None
    current = revision is None or row[0] == revision
    granted = frozenset(orjson.loads(row[1])) if current else frozenset()
    return ConsentAndProfile(granted, profile_from_row(row[3:]), row[2])


def record_activities(
    conn: Connection,
    visitor_id: str,
    activities: Sequence[Activity],
    *,
    rules: ProfileMoves,
    now: int,
    depth: str = "standard",
    read: ConsentAndProfile | None = None,
) -> Effects | None:
    """Log ``activities`` in the event log and move the visitor's profile on under ``rules``:
    points (decay applied), purchases, the stage, thresholds (``rules.record``).

    Rows are stored with the ``measurement`` or the ``personalisation`` consent (as the visitor
    row holds it, or as ``read`` by :func:`consent_and_profile` in the same transaction) and
    where ``depth`` (the data_depth) keeps an event log; the profile moves only with
    ``personalisation``. Returns what changed beyond the profile, or None when the visitor has
    no row or no profile (then nothing or only the event rows were stored).
    """
    if read is None:
        read = consent_and_profile(conn, visitor_id)
        if read is None:
            return None
    granted, stored, number = read
    if not granted & {"measurement", "personalisation"}:
        return None
    _insert_activities(conn, visitor_id, activities, depth=depth, number=number)
    if "personalisation" not in granted:
        return None
    profile, effects = rules.record(stored, activities, now=now, visitor_id=visitor_id)
    conn.execute(UPDATE_PROFILE, (*profile_values(profile), visitor_id))
    _insert_effects(conn, visitor_id, effects, depth=depth, at=now, tz=rules.timezone)
    return effects


def _insert_activities(
    conn: Connection,
    visitor_id: str,
    activities: Iterable[Activity],
    *,
    depth: str,
    number: int | None = None,
) -> None:
    if not keeps(depth, "events"):
        return
    rows = [
        (
            a.at,
            a.type,
            None,
            None,
            a.path,
            a.name,
            a.value,
            orjson.dumps(dict(a.props)).decode() if a.props else None,
            a.source,
        )
        for a in activities
    ]
    eventlog.insert(conn, visitor_id, rows, number=number)


def _insert_effects(
    conn: Connection,
    visitor_id: str,
    effects: Effects,
    *,
    depth: str,
    at: int,
    tz: tzinfo,
) -> None:
    rollups.count_effects(conn, effects, at=at, tz=tz)
    if effects.stage_changes and keeps(depth, "stage_history"):
        conn.executemany(
            "INSERT INTO stage_history (visitor_id, at, before, after, reason)"
            " VALUES (?, ?, ?, ?, ?)",
            [(visitor_id, c.at, c.before, c.after, c.reason) for c in effects.stage_changes],
        )
