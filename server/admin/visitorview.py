"""What the visitor lookup shows of one person: their stored rows (store/subjects.py's export,
one snapshot) arranged for the page, and their lead score's decay over the coming days as
the profile rules' decay computes it (profiles/scoring.py). Pure: ``now`` is passed in."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ..errors import RequestError
from ..profiles import identity, scoring
from ..store.records import Profile

KINDS = ("email", "customer", "id")  # how a person can be named, as the CLI's flags do
DECAY_DAYS = 60  # how far the decay curve looks ahead
RECENT_EVENTS = 50
DAY = 86400


@dataclass(frozen=True)
class Asked:
    """A reference as typed into the form, and the store's reference it parses into."""

    kind: str  # one of KINDS
    text: str  # as typed (an e-mail address stays on the page only, never in the audit log)
    ref: tuple[str, str]  # ("id", visitor id) or (kind, keyed hash)


class BadReference(RequestError):
    """The form's reference cannot name anybody; ``key`` is the text explaining why."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def asked(kind: str, text: str, key: bytes) -> Asked:
    """The reference of the lookup form, parsed as the CLI's ``--email``, ``--customer-id``
    and ``--visitor`` are (privacy/subjects.py ``reference``). A visitor id may be pasted as
    the whole ``tp_vid`` cookie: the id is the part before the first ``.``."""
    text = text.strip()
    if kind not in KINDS:
        raise BadReference("visitors.bad_kind")
    if not text:
        raise BadReference("visitors.empty")
    if kind == "id":
        visitor = text.split(".", 1)[0]
        if not visitor or len(visitor) > 200:
            raise BadReference("visitors.bad_id")
        return Asked(kind, text, ("id", visitor))
    try:
        return Asked(kind, text, identity.reference(f"{kind}:{text}", key))
    except RequestError:
        raise BadReference("visitors.bad_" + kind) from None


def when(at: int | float | None) -> str:
    """A time as the console shows it: UTC, to the minute."""
    if at is None:
        return "—"
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M")


def decay_curve(
    profile: Profile, decay: scoring.Decay, *, now: int, days: int = DECAY_DAYS
) -> dict[str, Any] | None:
    """The score from today over the next ``days`` days if the person does nothing, one
    point a day (UTC days): the chart's ``data-series`` (snippet/admin/README.md). None when
    the score cannot change: no score, or no decay in scoring.yaml."""
    if not profile.score or decay.half_life is None:
        return None
    start = dt.datetime.fromtimestamp(now, dt.UTC).date()
    x, values = [], []
    for day in range(days + 1):
        x.append((start + dt.timedelta(days=day)).isoformat())
        score = scoring.decayed(profile.score, profile.score_at, now + day * DAY, decay)
        values.append(round(score, 2))
    return {"x": x, "y": "conversions", "series": [{"label": "score", "values": values}]}


def score_now(profile: Profile, decay: scoring.Decay, *, now: int) -> float:
    return scoring.decayed(profile.score, profile.score_at, now, decay)


def summary(body: dict[str, Any]) -> dict[str, Any]:
    """The page's sections from an export (``export_subject``): newest first where a list
    grows with time, recent events only, identifiers without their hashes."""
    tables: dict[str, list[dict[str, Any]]] = body["tables"]

    def newest(name: str, limit: int | None = None) -> list[dict[str, Any]]:
        rows = sorted(tables.get(name, []), key=lambda row: row.get("at") or 0, reverse=True)
        return rows[:limit] if limit else rows

    return {
        "visitor_ids": body["visitor_ids"],
        "identities": [
            {"kind": row["kind"], "verified": bool(row["verified"]), "at": row["created_at"]}
            for row in tables.get("identities", [])
        ],
        "stage_history": newest("stage_history"),
        "events": newest("events", RECENT_EVENTS),
        "event_count": len(tables.get("events", [])),
        "campaigns": sorted(
            tables.get("campaign_state", []),
            key=lambda row: row.get("last_seen_at") or 0,
            reverse=True,
        ),
        "codes": newest_by(tables.get("coupon_codes", []), "assigned_at"),
        "reveals": newest("coupon_reveals"),
        "redemptions": newest("coupon_redemptions"),
        "orders": newest("orders"),
        "rows": {name: len(rows) for name, rows in tables.items() if rows},
    }


def newest_by(rows: list[dict[str, Any]], column: str) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda row: row.get(column) or 0, reverse=True)
