"""What a visitor did, recorded under their consent (``POST /tp/v1/events``): campaign events
(impression, close, convert, and exposure: the impression a holdout visitor would have had) for
the frequency caps, with the ``marketing`` consent; behaviour (dwell time, scroll depth, tracked
clicks, custom events, form submissions) with ``measurement`` or ``personalisation``, which
also moves the profile on (points, stage) and reports what that changed as webhooks.

The caller waits for the commit: the answer says what was stored (issue 15), and a database
that cannot be written makes it a 503, never an acknowledgement of what was not kept.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import store
from ..consent import categories as consent
from ..store.activity import Activity
from ..webhooks import delivery as webhooks
from .model import visit_start
from .rules import ProfileRules


@dataclass
class Batch:
    campaign: list[store.Event] = field(default_factory=list)
    behaviour: list[Activity] = field(default_factory=list)


@dataclass(frozen=True)
class Recording:
    """A batch as it will be stored: the writer ``unit`` returns (events stored, webhooks
    queued); ``dropped`` events lacked consent."""

    unit: Callable[[sqlite3.Connection], tuple[int, int]]
    dropped: int


def record(
    batch: Batch,
    record: store.VisitorRecord | None,
    *,
    rules: ProfileRules,
    session_idle: int,
    endpoints: Mapping[str, webhooks.Endpoint],
    now: int,
    depth: str,
    revision: int,
    goals: Mapping[str, store.Goal] | None = None,
) -> Recording | None:
    """The unit of work that stores what the visitor's consent allows of ``batch``, scored
    under ``rules``, webhooks to ``endpoints``, the campaigns' ``goals`` counted; None when
    consent allows nothing of it."""
    goals = goals or {}
    granted = consent.granted(record, revision)
    profile, history = consent.usable(record, revision)
    campaign = batch.campaign if history is not None else []
    behaviour = batch.behaviour if granted & {"measurement", "personalisation"} else []
    dropped = len(batch.campaign) - len(campaign) + len(batch.behaviour) - len(behaviour)
    if record is None or not (campaign or behaviour):
        return None
    visitor = record.id
    start = visit_start(profile, now=now, session_idle=session_idle)

    def write(conn: sqlite3.Connection) -> tuple[int, int]:
        """Store the batch and queue the webhooks of what it changed (score thresholds, stage
        changes, form submissions) in the same transaction: (events stored, webhooks queued).
        Nothing for a visitor erased since the request read it."""
        if not store.visitor_exists(conn, visitor):
            return 0, 0
        stored = 0
        if campaign:  # (its own check that the visitor exists is a read the batch can spare)
            stored = store.record_events(
                conn,
                visitor,
                campaign,
                at=now,
                visit_start=start,
                depth=depth,
                tz=rules.timezone,
                goals=goals,
            )
        queued = 0
        for activity in behaviour:
            if activity.type == "form_submit" and activity.name:
                store.count_form(conn, visitor, activity.name, store.day(now, rules.timezone))
        store.count_goals(conn, visitor, behaviour, goals, rules.timezone)
        if behaviour:
            effects = store.record_activities(
                conn, visitor, behaviour, rules=rules, now=now, depth=depth
            )
            queued = webhooks.report(conn, endpoints, visitor, effects, now=now)
            queued += _forms_submitted(conn, endpoints, visitor, behaviour, now=now)
        return stored + len(behaviour), queued

    return Recording(write, dropped=dropped)


def _forms_submitted(
    conn: sqlite3.Connection,
    endpoints: Mapping[str, webhooks.Endpoint],
    visitor: str,
    activities: list[Activity],
    *,
    now: int,
) -> int:
    """``form.submitted`` for each form sent in a popup: its name (the campaign), the fields the
    snippet sends (never e-mail, name, phone or password fields: those go to identify), the page."""
    queued = 0
    for index, activity in enumerate(activities if endpoints else ()):
        if activity.type != "form_submit":
            continue
        payload = {
            **webhooks.visitor(conn, visitor),
            "form": activity.name,
            "fields": dict(activity.props),
            "path": activity.path,
            "time": activity.at,
        }
        key = f"form.submitted:{visitor}:{activity.name}:{now}:{index}"
        queued += webhooks.enqueue(conn, endpoints, "form.submitted", payload, now=now, key=key)
    return queued


def push(
    conn: sqlite3.Connection,
    batch: list[tuple[tuple[str, str], Activity, dict[str, Any] | None]],
    revision: int,
    profile_rules: ProfileRules,
    endpoints: Mapping[str, webhooks.Endpoint],
    now: int,
    depth: str,
    goals: Mapping[str, store.Goal] | None = None,
) -> store.PushResult:
    """Store a batch the server API pushed and queue the webhooks of what it changed, in one
    transaction (store.push_activities); a purchase may reach a campaign's goal."""
    result = store.push_activities(
        conn, batch, revision=revision, rules=profile_rules, now=now, depth=depth
    )
    for visitor_id, activities in result.activities.items():
        store.count_goals(conn, visitor_id, activities, goals or {}, profile_rules.timezone)
    for visitor_id, effects in result.effects.items():
        result.queued += webhooks.report(conn, endpoints, visitor_id, effects, now=now)
    return result
