"""Identification (``POST /tp/v1/identify``): tying the browser's visitor to a person, as one
unit of the writer that also queues the webhooks of what it changed (docs/profiles.md)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .. import store
from ..store import Connection
from ..store.records import Identity
from ..webhooks import delivery as webhooks
from .rules import ProfileRules


def identify(
    visitor_id: str,
    who: Identity,
    *,
    now: int,
    depth: str,
    rules: ProfileRules,
    endpoints: Mapping[str, webhooks.Endpoint],
) -> Callable[[Connection], tuple[store.Identified, int]]:
    """The writer unit that identifies ``visitor_id`` as ``who`` (store.identify_visitor),
    scored under ``rules``; it returns what happened and the webhooks queued."""

    def write(conn: Connection) -> tuple[store.Identified, int]:
        """Identify, and queue the webhooks of what it changed in the same transaction."""
        outcome = store.identify_visitor(conn, visitor_id, who, now=now, keep=depth, rules=rules)
        survivor = outcome.visitor_id
        queued = webhooks.report(conn, endpoints, survivor, outcome.effects, now=now)
        if endpoints and (outcome.newly_identified or outcome.merged_from):
            payload = {
                **webhooks.visitor(conn, survivor),
                "merged_from": outcome.merged_from,
                "first_name": who.first_name,
                "verified": who.verified,
                "time": now,
            }
            key = f"visitor.identified:{survivor}:{now}:{outcome.merged_from or ''}"
            queued += webhooks.enqueue(
                conn, endpoints, "visitor.identified", payload, now=now, key=key
            )
        return outcome, queued

    return write
