"""What a visitor did, recorded under their consent (``POST /tp/v1/events``): campaign events
(impression, close, convert, and exposure: the impression a holdout visitor would have had) for
the frequency caps, with the ``marketing`` consent; behaviour (dwell time, scroll depth, tracked
clicks, custom events, form submissions) with ``measurement`` or ``personalisation``, which
also moves the profile on (points, stage) and reports what that changed as webhooks.

The caller waits for the commit: the answer says what was stored (issue 15), and a database
that cannot be written makes it a 503, never an acknowledgement of what was not kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import store
from ..store import Connection
from ..store.activity import Activity
from ..webhooks import delivery as webhooks
from .model import visit_start
from .rules import ProfileRules


@dataclass
class Batch:
    campaign: list[store.Event] = field(default_factory=list)
    behaviour: list[Activity] = field(default_factory=list)


@dataclass(frozen=True)
class Stored:
    """What the writer unit of a batch did: events stored, webhooks queued, events dropped for
    want of consent."""

    stored: int
    queued: int
    dropped: int


def record(
    batch: Batch,
    visitor: str,
    *,
    rules: ProfileRules,
    session_idle: int,
    endpoints: Mapping[str, webhooks.Endpoint],
    now: int,
    depth: str,
    revision: int,
    goals: Mapping[str, store.Goal] | None = None,
) -> Callable[[Connection], Stored]:
    """The writer unit that stores what the consent of ``visitor`` allows of ``batch``, scored
    under ``rules``, webhooks to ``endpoints``, the campaigns' ``goals`` counted.

    The unit reads the visitor's consent and profile itself, in the transaction that writes:
    one read per batch, none on the event loop, and nothing stored for a visitor erased or a
    consent withdrawn since the request arrived."""
    goals = goals or {}
    sent = len(batch.campaign) + len(batch.behaviour)

    def write(conn: Connection) -> Stored:
        """Store the batch and queue the webhooks of what it changed (score thresholds, stage
        changes, form submissions) in the same transaction."""
        read = store.consent_and_profile(conn, visitor, revision=revision)
        if read is None:
            return Stored(0, 0, sent)
        granted, profile, _number = read
        campaign = batch.campaign if "marketing" in granted else []
        behaviour = batch.behaviour if granted & {"measurement", "personalisation"} else []
        dropped = sent - len(campaign) - len(behaviour)
        stored = 0
        if campaign:
            start = visit_start(
                profile if "personalisation" in granted else None,
                now=now,
                session_idle=session_idle,
            )
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
                conn, visitor, behaviour, rules=rules, now=now, depth=depth, read=read
            )
            queued = webhooks.report(conn, endpoints, visitor, effects, now=now)
            queued += _forms_submitted(conn, endpoints, visitor, behaviour, now=now)
        return Stored(stored + len(behaviour), queued, dropped)

    return write


def _forms_submitted(
    conn: Connection,
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
    conn: Connection,
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
