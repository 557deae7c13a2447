"""What each ``data_depth`` level stores: one table of tables and columns, which the store
consults before writing, docs/privacy.md shows (:func:`markdown` renders it, a test compares)
and the tests check a database against after a visit at each level.

- ``minimal``: what targeting needs and no history. The profile's counters, score and
  stage, popup suppression (``campaign_state``), identifiers as keyed hashes, the consent log;
  no event log, no stage history, orders only by their id (so that a retried push is not
  counted twice), no first name.
- ``standard`` (default): also the event log, the stage history, the orders' contents and
  the first name (to greet the person and pre-fill forms).
- ``full``: also the e-mail address in clear (to pre-fill forms).

A level is what is *written* from now on: lowering it leaves rows already stored until the
retention purge or an erasure removes them. Pure: no I/O.
"""

from __future__ import annotations

import functools

from .rollups import CAMPAIGN_COUNTS

LEVELS = ("minimal", "standard", "full")


def _at(level: str, *columns: str) -> dict[str, str]:
    return dict.fromkeys(columns, level)


# table -> column -> the lowest level that writes it. The JSON column `visitors.data` is listed
# key by key as `data.KEY`. Every table and column of the schema is here
# (tests/store/test_datadepth.py fails otherwise), so a new one must be placed before it ships.
WRITTEN: dict[str, dict[str, str]] = {
    "visitors": {
        **_at(
            "minimal",
            "id",
            "num",
            "created_at",
            "consent_revision",
            "consent_granted",
            "consent_at",
            "first_seen_at",
            "last_seen_at",
            "seen_hour",
            "visits",
            "page_views",
            "session_started_at",
            "session_page_views",
            "stage",
            "score",
            "identified",
            "data.first_touch",
            "data.last_touch",
            "data.interests",
            "data.last_category",
            "data.last_product",
            "data.attributes",
            "data.score_at",
            "data.purchases",
            "data.last_purchase_at",
            "data.stage_since",
            "data.scoring",
        ),
        **_at("standard", "data.first_name"),
    },
    "identities": {
        **_at("minimal", "kind", "hash", "visitor_id", "created_at", "verified"),
        **_at("full", "value"),
    },
    "campaign_state": _at(
        "minimal",
        "visitor_id",
        "campaign",
        "impressions",
        "last_seen_at",
        "last_closed_at",
        "last_converted_at",
        "session_impressions",
        "variant",
        "version",
        "exposed_version",
        "converted_version",
        "was_first",
    ),
    "events": _at(
        "standard",
        "id",
        "visitor",
        "at",
        "type",
        "campaign",
        "variant",
        "path",
        "name",
        "value",
        "props",
        "source",
    ),
    "stage_history": _at("standard", "id", "visitor_id", "at", "before", "after", "reason"),
    "orders": {
        **_at("minimal", "order_id", "visitor_id", "at"),
        **_at("standard", "value", "currency", "items"),
    },
    "consent_log": _at(
        "minimal", "id", "visitor_id", "at", "revision", "granted", "denied", "method"
    ),
    "merges": _at("minimal", "id", "from_id", "into_id", "at"),
    "webhook_outbox": _at(
        "minimal",
        "id",
        "endpoint",
        "event",
        "key",
        "visitor_id",
        "body",
        "created_at",
        "state",
        "attempts",
        "next_attempt_at",
        "lease_owner",
        "lease_until",
        "last_status",
        "last_error",
        "delivered_at",
    ),
    "erasures": _at("minimal", "id", "at", "via", "requested_by", "subject", "rows"),
    # Coupons: the code a visitor was given stays theirs, like a popup's
    # suppression; a redemption is the shop's order using it.
    "coupon_codes": _at(
        "minimal",
        "code",
        "pool",
        "added_at",
        "visitor_id",
        "campaign",
        "variant",
        "assigned_at",
        "expires_at",
    ),
    "coupon_reveals": _at(
        "minimal", "pool", "visitor_id", "code", "campaign", "variant", "at", "expires_at"
    ),
    "coupon_redemptions": _at(
        "minimal",
        "order_id",
        "code",
        "pool",
        "visitor_id",
        "campaign",
        "variant",
        "value",
        "currency",
        "at",
    ),
    "coupon_pools": _at("minimal", "pool", "generated"),
    # Which server worker runs the periodic purge (privacy/retention.py): nobody's data.
    "leases": _at("minimal", "name", "owner", "until"),
    # The health check's proof that the database can be written: nobody's data.
    "health": _at("minimal", "id", "checked_at"),
    # Results (store/rollups.py): counts per day, campaign and variant, and of lifecycle moves;
    # nobody's data, so written at every level and kept past the event log's retention.
    "rollup_campaigns": _at("minimal", "day", "campaign", "variant", "version", *CAMPAIGN_COUNTS),
    "rollup_campaign_months": _at(
        "minimal", "campaign", "version", "variant", "month", *CAMPAIGN_COUNTS
    ),
    "rollup_revenue": _at(
        "minimal",
        "day",
        "campaign",
        "variant",
        "version",
        "currency",
        "redemptions",
        "revenue",
        "revenue_squares",
    ),
    "rollup_stages": _at("minimal", "day", "before", "after", "moves"),
    "rollup_thresholds": _at("minimal", "day", "threshold", "crossings"),
    # The console's users (store/admins.py): the shop's own staff, added from the command line;
    # no visitor's data, so the same at every level.
    "admin_users": _at(
        "minimal",
        "name",
        "role",
        "password_hash",
        "created_at",
        "password_changed_at",
        "sessions",
    ),
    # The console's audit log (store/audit.py): which staff member looked up, exported or
    # erased whom; the person only as the reference the store finds them by (an identifier as
    # its keyed hash). Accountability, the same at every level.
    "admin_audit": _at("minimal", "id", "at", "user", "action", "ref_kind", "ref"),
}


@functools.cache
def stored(level: str) -> dict[str, frozenset[str]]:
    """The tables ``level`` writes, each with the columns it fills (one shared mapping: do not
    change it)."""
    if level not in LEVELS:
        raise ValueError(level)
    rank = LEVELS.index(level)
    tables = {
        table: frozenset(c for c, lowest in columns.items() if LEVELS.index(lowest) <= rank)
        for table, columns in WRITTEN.items()
    }
    return {table: columns for table, columns in tables.items() if columns}


@functools.cache  # asked on every write of the hot path
def keeps(level: str, table: str, column: str | None = None) -> bool:
    """Whether ``level`` writes ``table`` at all, or its ``column``."""
    columns = stored(level).get(table, frozenset())
    return column in columns if column is not None else bool(columns)


def markdown() -> str:
    """The table of docs/privacy.md#data-depth."""
    lines = [
        "| table | " + " | ".join(f"`{level}`" for level in LEVELS) + " |",
        "|---" * (len(LEVELS) + 1) + "|",
    ]
    for table, columns in WRITTEN.items():
        cells = [_cell(list(columns), stored(level).get(table, frozenset())) for level in LEVELS]
        lines.append(f"| `{table}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(every: list[str], kept: frozenset[str]) -> str:
    if not kept:
        return "—"
    left = [c for c in every if c not in kept]
    if not left:
        return "all"
    if len(left) <= len(kept):
        return "all but " + ", ".join(f"`{c}`" for c in left)
    return ", ".join(f"`{c}`" for c in every if c in kept)
