"""Writes of the server API: pushed events (all or nothing), attributes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..errors import RequestError
from .activity import Activity, Effects
from .datadepth import keeps
from .engine import Connection, dialect_of
from .reader import profile_visitor
from .records import ProfileMoves
from .visitors import record_activities


class UnknownVisitors(RequestError):
    """Events for visitors without a profile; ``indexes`` names them in the batch."""

    status = 404

    def __init__(self, indexes: list[int]) -> None:
        super().__init__("no visitor with a profile for these references")
        self.indexes = indexes


@dataclass
class PushResult:
    stored: int = 0
    duplicates: list[int] = field(default_factory=list)  # purchases whose order_id was known
    # What was stored per visitor id (for the caller's lead scoring and webhooks).
    activities: dict[str, list[Activity]] = field(default_factory=dict)
    effects: dict[str, Effects] = field(default_factory=dict)  # per visitor id
    queued: int = 0  # webhooks queued for what the batch changed


def push_activities(
    conn: Connection,
    batch: Sequence[tuple[tuple[str, str], Activity, dict[str, Any] | None]],
    *,
    revision: int,
    rules: ProfileMoves,
    now: int,
    depth: str = "standard",
) -> PushResult:
    """Store pushed events all or nothing and score them (:func:`record_activities`): raises
    :class:`UnknownVisitors` (and stores none) when a reference names no visitor with a
    profile. A purchase whose ``order_id`` is already recorded is skipped and reported in
    ``duplicates``; its value, currency and items are kept where ``depth`` (the data_depth)
    keeps them."""
    found: dict[tuple[str, str], str | None] = {}
    for ref, _, _ in batch:
        if ref not in found:
            found[ref] = profile_visitor(conn, ref, revision=revision)
    missing = [i for i, (ref, _, _) in enumerate(batch) if found[ref] is None]
    if missing:
        raise UnknownVisitors(missing)
    result = PushResult()
    contents = keeps(depth, "orders", "items")
    for index, (ref, activity, order) in enumerate(batch):
        visitor_id = found[ref]
        assert visitor_id is not None
        if (
            order is not None
            and not conn.execute(
                "INSERT INTO orders (order_id, visitor_id, at, value, currency, items)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (order_id) DO NOTHING",
                (
                    order["order_id"],
                    visitor_id,
                    activity.at,
                    *(
                        (order["value"], order["currency"], orjson.dumps(order["items"]).decode())
                        if contents
                        else (None, None, "[]")
                    ),
                ),
            ).rowcount
        ):
            result.duplicates.append(index)
            continue
        result.activities.setdefault(visitor_id, []).append(activity)
        result.stored += 1
    for visitor_id, activities in result.activities.items():
        effects = record_activities(conn, visitor_id, activities, rules=rules, now=now, depth=depth)
        if effects is not None:
            result.effects[visitor_id] = effects
    return result


def set_attributes(
    conn: Connection, ref: tuple[str, str], values: dict[str, Any], *, revision: int
) -> dict[str, Any] | None:
    """Set (or, with None, clear) attributes of the profile ``ref`` names; returns all its
    attributes, or None without such a profile."""
    visitor_id = profile_visitor(conn, ref, revision=revision)
    if visitor_id is None:
        return None
    row = conn.execute(
        f"SELECT data FROM visitors WHERE id = ?{dialect_of(conn).for_update}", (visitor_id,)
    ).fetchone()
    data = orjson.loads(row[0])
    attributes = dict(data.get("attributes") or {})
    for name, value in values.items():
        if value is None:
            attributes.pop(name, None)
        else:
            attributes[name] = value
    if attributes:
        data["attributes"] = attributes
    else:
        data.pop("attributes", None)
    conn.execute(
        "UPDATE visitors SET data = ? WHERE id = ?", (orjson.dumps(data).decode(), visitor_id)
    )
    return attributes
