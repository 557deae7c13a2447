"""Identification: tying a browser's visitor to a person, merging anonymous history into the
known profile, and a fresh visitor on logout."""

from __future__ import annotations

import json
from dataclasses import dataclass

import orjson

from ..errors import RequestError
from . import eventlog
from .activity import Activity, Effects
from .coupons import merge_coupons
from .engine import Connection, dialect_of
from .reader import PROFILE_COLUMNS, profile_from_row
from .records import Identity, ProfileMoves, new_visitor_id
from .visitors import (
    UPDATE_PROFILE,
    profile_values,
    record_activities,
    record_consent,
)


@dataclass(frozen=True)
class Identified:
    """What an identify call did."""

    visitor_id: str  # the surviving visitor: the browser's cookie must name it
    newly_identified: bool  # the surviving profile had no identifier before
    merged_from: str | None = None  # the anonymous visitor merged into it
    switched: bool = False  # the browser now belongs to another visitor than before
    effects: Effects | None = None  # what the identification changed (score, stage)


def identify(
    conn: Connection,
    visitor_id: str,
    identifiers: Identity,
    *,
    now: int,
    keep: str,
    rules: ProfileMoves,
) -> str:
    """Tie ``visitor_id`` to a person; returns the surviving visitor id (see
    :func:`identify_visitor`)."""
    return identify_visitor(
        conn, visitor_id, identifiers, now=now, keep=keep, rules=rules
    ).visitor_id


def identify_visitor(
    conn: Connection,
    visitor_id: str,
    identity: Identity,
    *,
    now: int,
    keep: str,
    rules: ProfileMoves,
) -> Identified:
    """Tie the browser's visitor to the person ``identity`` names. ``keep`` is the data_depth;
    the identification is recorded as an ``identify`` activity, scored under ``rules``.

    A claim (``identity.verified`` false: an address typed into a form or passed by page
    script) never joins another profile and never tells whether the identifiers are known:
    identifiers nobody holds become this visitor's, identifiers another visitor holds stay
    theirs, and this visitor is identified on its own (scored, its webhooks sent). Only a
    verified identity (the shop signed it, docs/security.md#verified-identity) joins:

    - None of the identifiers is known: they are added to this visitor, unless it is already
      known under another identifier of the same kind (another person on a shared computer,
      Mautic #5495): then the browser becomes a fresh visitor, nothing carried over.
    - A verified holder has them and this visitor is anonymous: its history is merged into the
      known profile (Mautic #11527), which survives.
    - A verified holder has them and this visitor is known as somebody else: the browser
      switches to the known profile; neither history moves.
    - Identifiers another visitor only claimed move to the verified one.
    - Identifiers of two different verified people are refused (409).

    The surviving visitor takes this browser's consent, logged under its id with the method
    ``identify``: consent is given per browser, and this browser's answer is the person's latest.
    """
    # On PostgreSQL the row stays locked to the end: another node's write about this visitor
    # waits for this one (engine.Dialect.for_update; SQLite's write lock covers everything).
    lock = dialect_of(conn).for_update
    if not conn.execute(f"SELECT 1 FROM visitors WHERE id = ?{lock}", (visitor_id,)).fetchone():
        raise RequestError("this visitor no longer exists; reload the page", status=409)
    holders: dict[tuple[str, str], tuple[str, bool]] = {}
    for ident in identity.identifiers:
        row = conn.execute(
            "SELECT i.visitor_id, i.verified FROM identities i JOIN visitors v"
            " ON v.id = i.visitor_id WHERE i.kind = ? AND i.hash = ?",
            (ident.kind, ident.hash),
        ).fetchone()
        if row:
            holders[(ident.kind, ident.hash)] = (row[0], bool(row[1]))
    owners = {holder for holder, vouched in holders.values() if vouched}
    if not identity.verified:
        owners = set()  # a claim joins nobody
    if len(owners) > 1:
        raise RequestError("the e-mail and the customer id belong to different people", status=409)
    own = set(
        conn.execute(
            "SELECT kind, hash FROM identities WHERE visitor_id = ?", (visitor_id,)
        ).fetchall()
    )
    target = owners.pop() if owners else None
    merged_from = None
    if target is None or target == visitor_id:
        own_kinds = {kind for kind, _ in own}
        other_person = target is None and any(
            i.kind in own_kinds and (i.kind, i.hash) not in own for i in identity.identifiers
        )
        survivor = new_visitor_id() if other_person else visitor_id
    else:
        survivor = target
    if survivor != visitor_id:
        copy_consent(conn, visitor_id, survivor, at=now, method="identify")
        if not own:  # anonymous until now: its history is the person's
            _merge_visitor(conn, visitor_id, survivor, now=now, rules=rules)
            merged_from = visitor_id
    newly = not conn.execute(
        "SELECT 1 FROM identities WHERE visitor_id = ? LIMIT 1", (survivor,)
    ).fetchone()
    for ident in identity.identifiers:
        holder = holders.get((ident.kind, ident.hash))
        if not identity.verified and holder is not None and holder[0] != survivor:
            continue  # another visitor holds it: a claim does not take it away
        conn.execute(
            "INSERT INTO identities (kind, hash, visitor_id, created_at, value, verified)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kind, hash) DO UPDATE SET"
            " value = excluded.value,"
            " verified = CASE WHEN identities.visitor_id = excluded.visitor_id"
            "   THEN greatest(identities.verified, excluded.verified)"
            "   ELSE excluded.verified END,"
            " visitor_id = excluded.visitor_id",
            (
                ident.kind,
                ident.hash,
                survivor,
                now,
                ident.clear if keep == "full" else None,
                int(identity.verified),
            ),
        )
    _set_identified(conn, survivor, identity.first_name, keep=keep)
    effects = record_activities(
        conn,
        survivor,
        [Activity("identify", now)],
        rules=rules,
        now=now,
        depth=keep,
    )
    return Identified(survivor, newly, merged_from, survivor != visitor_id, effects)


def _set_identified(
    conn: Connection, visitor_id: str, first_name: str | None, *, keep: str
) -> None:
    data = orjson.loads(
        conn.execute(
            f"SELECT data FROM visitors WHERE id = ?{dialect_of(conn).for_update}", (visitor_id,)
        ).fetchone()[0]
    )
    if keep == "minimal":
        data.pop("first_name", None)
    elif first_name:
        data["first_name"] = first_name
    conn.execute(
        "UPDATE visitors SET identified = 1, data = ? WHERE id = ?",
        (orjson.dumps(data).decode(), visitor_id),
    )


def copy_consent(conn: Connection, from_id: str, to_id: str, *, at: int, method: str) -> None:
    """Give ``to_id`` the consent ``from_id`` holds, logged under ``to_id`` with ``method``
    (``identify`` when a browser joins a profile, ``reset`` for a fresh visitor)."""
    row = conn.execute(
        "SELECT consent_revision, consent_granted FROM visitors WHERE id = ?", (from_id,)
    ).fetchone()
    if row is None:  # merged away or erased by a request that was committed first
        raise RequestError("this visitor no longer exists; reload the page", status=409)
    last = conn.execute(
        "SELECT denied FROM consent_log WHERE visitor_id = ? ORDER BY id DESC LIMIT 1", (from_id,)
    ).fetchone()
    record_consent(
        conn,
        to_id,
        at=at,
        revision=row[0],
        granted=json.loads(row[1]),
        denied=json.loads(last[0]) if last else [],
        method=method,
    )


def _merge_visitor(
    conn: Connection, source: str, target: str, *, now: int, rules: ProfileMoves
) -> None:
    """Move everything of the anonymous ``source`` into ``target`` and delete ``source``."""
    read = f"SELECT {PROFILE_COLUMNS} FROM visitors WHERE id = ?{dialect_of(conn).for_update}"
    anonymous = conn.execute(read, (source,)).fetchone()
    known = conn.execute(read, (target,)).fetchone()
    profile = rules.merge(profile_from_row(known), profile_from_row(anonymous), now=now)
    # Keys of the JSON part this module does not know about survive, the known profile's winning.
    data = {**orjson.loads(anonymous[9]), **orjson.loads(known[9]), **profile.data_json()}
    conn.execute(
        UPDATE_PROFILE, (*profile_values(profile)[:-1], orjson.dumps(data).decode(), target)
    )
    # greatest() ignores NULLs: the known time is kept (store/migrations.py: connect).
    conn.execute(
        "INSERT INTO campaign_state AS s (visitor_id, campaign, impressions, last_seen_at,"
        " last_closed_at, last_converted_at, session_impressions, variant, version,"
        " exposed_version, converted_version)"
        " SELECT ?, campaign, impressions, last_seen_at, last_closed_at, last_converted_at,"
        " session_impressions, variant, version, exposed_version, converted_version"
        " FROM campaign_state WHERE visitor_id = ?"
        " ON CONFLICT (visitor_id, campaign) DO UPDATE SET"
        " impressions = s.impressions + excluded.impressions,"
        " session_impressions = s.session_impressions + excluded.session_impressions,"
        " last_seen_at = greatest(s.last_seen_at, excluded.last_seen_at),"
        " last_closed_at = greatest(s.last_closed_at, excluded.last_closed_at),"
        " last_converted_at = greatest(s.last_converted_at, excluded.last_converted_at),"
        " version = CASE WHEN s.variant IS NULL THEN excluded.version ELSE s.version END,"
        " variant = coalesce(s.variant, excluded.variant),"
        # Counted in the results already under either id: not again as the one person.
        " exposed_version = coalesce(s.exposed_version, excluded.exposed_version),"
        " converted_version = coalesce(s.converted_version, excluded.converted_version)",
        (target, source),
    )
    for table in ("campaign_state",):
        conn.execute(f"DELETE FROM {table} WHERE visitor_id = ?", (source,))
    for table in ("orders", "identities", "stage_history"):
        conn.execute(f"UPDATE {table} SET visitor_id = ? WHERE visitor_id = ?", (target, source))
    conn.execute(
        "UPDATE events SET visitor = (SELECT num FROM visitors WHERE id = ?)"
        f" WHERE {eventlog.of_visitor()}",
        (target, source),
    )
    merge_coupons(conn, source, target)
    # The source's consent log rows stay under its id: the log is append-only proof.
    conn.execute(
        "INSERT INTO merges (from_id, into_id, at) VALUES (?, ?, ?)", (source, target, now)
    )
    conn.execute("DELETE FROM visitors WHERE id = ?", (source,))


def reset_visitor(conn: Connection, visitor_id: str, *, now: int) -> str:
    """A fresh anonymous visitor with the consent of ``visitor_id`` (logout on a shared
    computer); ``visitor_id`` and its profile stay as they are."""
    fresh = new_visitor_id()
    copy_consent(conn, visitor_id, fresh, at=now, method="reset")
    return fresh


def find_visitor(conn: Connection, kind: str, value: str) -> str | None:
    """The visitor an API reference names: ``("id", visitor id)`` or ``(kind, hash)``."""
    if kind == "id":
        row = conn.execute("SELECT id FROM visitors WHERE id = ?", (value,)).fetchone()
    else:
        row = conn.execute(
            "SELECT i.visitor_id FROM identities i JOIN visitors v ON v.id = i.visitor_id"
            " WHERE i.kind = ? AND i.hash = ?",
            (kind, value),
        ).fetchone()
    return str(row[0]) if row else None
