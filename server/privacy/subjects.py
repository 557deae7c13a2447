"""Data subject requests from the command line (docs/privacy.md#data-subject-requests):
``touchpoint export``, ``touchpoint erase`` and ``touchpoint consent log|summary``.

They open the database directly, so they work whether the server runs or not. An erasure
takes the database's write lock (``BEGIN IMMEDIATE``) like the server's writer, so it
commits between two of the writer's groups; a write queued for the person before it finds no
visitor afterwards and stores nothing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .. import store
from ..errors import ConfigError, RequestError
from ..profiles import identity
from ..settings import Settings
from ..store import Connection
from ..store.subjects import ERASED
from ..syntax import times

T = TypeVar("T")


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run ``args.command``: ``export``, ``erase`` or ``consent``."""
    if not store.exists(settings.database_url):
        raise store.no_database(settings.database_url)
    # The server's key, never a new one: e-mail addresses are looked up by their keyed hash and
    # an erasure's pseudonym must be the one the server can find again.
    if not settings.secret_key and not (Path(settings.data_dir) / "secret.key").exists():
        raise ConfigError(
            "no secret key: run with the server's TOUCHPOINT_SECRET_KEY or --data-dir"
        )
    key = identity.identity_key(settings.resolve_secret_key())
    if args.command == "consent" and args.action == "summary":
        return summary(settings, args)
    ref = reference(args, key)
    if args.command == "export":
        return export(settings, args, ref)
    if args.command == "erase":
        return erase(settings, args, ref, key)
    return consent_log(settings, args, ref, key)


def reference(args: argparse.Namespace, key: bytes) -> tuple[str, str]:
    """The store's reference for ``--visitor``, ``--email`` or ``--customer-id``."""
    if args.visitor:
        return "id", args.visitor
    text = f"email:{args.email}" if args.email else f"customer:{args.customer_id}"
    try:
        return identity.reference(text, key)
    except RequestError as exc:
        raise ConfigError(str(exc)) from None


def _with_database(settings: Settings, fn: Callable[[Connection], T]) -> T:
    with store.database(settings.database_url) as conn:
        return fn(conn)


def export(settings: Settings, args: argparse.Namespace, ref: tuple[str, str]) -> int:
    def read(conn: Connection) -> dict[str, Any] | None:
        conn.execute("BEGIN")  # one snapshot for every table
        subject = store.find_subject(conn, ref)
        return None if subject is None else store.export_subject(conn, subject)

    body = _with_database(settings, read)
    if body is None:
        print("touchpoint: nothing is stored about this person", file=sys.stderr)
        return 1
    text = json.dumps({"exported_at": int(time.time()), **body}, indent=2, ensure_ascii=False)
    if args.output:
        # The export is personal data: readable by this user only.
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text + "\n")
        rows = sum(len(rows) for rows in body["tables"].values())
        print(
            f"{rows} row(s) about {len(body['visitor_ids'])} visitor id(s) written to "
            f"{args.output}",
            file=sys.stderr,
        )
    else:
        print(text)
    return 0


def erase(settings: Settings, args: argparse.Namespace, ref: tuple[str, str], key: bytes) -> int:
    def work(conn: Connection) -> store.Erasure | None:
        subject = store.find_subject(conn, ref)
        if subject is None:
            return None
        if not args.yes and not _confirm(conn, subject):
            raise ConfigError("nothing erased")
        with store.immediate(conn):
            return store.erase(conn, ref, key=key, at=int(time.time()), via="cli")

    erasure = _with_database(settings, work)
    if args.json:
        report: dict[str, Any] = {"erased": erasure is not None}
        if erasure is not None:
            report |= {
                "record": erasure.id,
                "deleted": erasure.deleted,
                "pseudonymised": erasure.pseudonymised,
                "anonymised": erasure.anonymised,
            }
        print(json.dumps(report, indent=2))
        return 0
    if erasure is None:
        print("nothing is stored about this person: nothing to erase")
        return 0
    deleted = ", ".join(f"{table} {n}" for table, n in erasure.deleted.items()) or "nothing"
    print(f"erased (record #{erasure.id}): {deleted}")
    for table, n in erasure.pseudonymised.items():
        print(f"kept as proof of consent under a pseudonym: {table} {n}")
    for table, n in erasure.anonymised.items():
        print(f"kept without the visitor id: {table} {n}")
    return 0


def _confirm(conn: Connection, subject: store.Subject) -> bool:
    found = store.export_subject(conn, subject)["tables"]
    rows = ", ".join(f"{table} {len(found[table])}" for table in found if found[table])
    print(f"visitor id(s): {', '.join(subject.visitor_ids)}", file=sys.stderr)
    print(f"rows: {rows}", file=sys.stderr)
    try:
        answer = input("Erase everything stored about this person? This cannot be undone [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def consent_log(
    settings: Settings, args: argparse.Namespace, ref: tuple[str, str], key: bytes
) -> int:
    body = _with_database(settings, lambda conn: store.consent_proof(conn, ref, key=key))
    if not body["entries"] and not body["erasures"]:
        print("touchpoint: no consent answer is stored for this person", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(body, indent=2))
        return 0
    print(f"{'time (UTC)':<20} {'revision':>8}  {'method':<18} {'granted':<40} visitor")
    for row in body["entries"]:
        granted = ", ".join(row["granted"]) or "nothing"
        visitor = row["visitor_id"]
        if visitor.startswith(ERASED):
            visitor = visitor[:19] + "… (erased)"
        print(
            f"{_time(row['at']):<20} {row['revision']:>8}  {row['method']:<18} "
            f"{granted:<40} {visitor}"
        )
    for erasure in body["erasures"]:
        print(f"erased at {_time(erasure['at'])} UTC (requested via {erasure['via']})")
    return 0


def summary(settings: Settings, args: argparse.Namespace) -> int:
    since, until = _when(args.since, "--since"), _when(args.until, "--until")
    revisions = _with_database(
        settings, lambda conn: store.consent_summary(conn, since=since, until=until)
    )
    if args.json:
        print(json.dumps({"revisions": revisions}, indent=2))
        return 0
    if not revisions:
        print("no consent answers in this time")
        return 0
    print(f"{'revision':>8}  {'method':<18} {'accepted':>9} {'rejected':>9} {'customised':>11}")
    for entry in revisions:
        rows = [*entry["methods"].items(), ("all", entry)]
        for method, n in rows:
            print(
                f"{entry['revision']:>8}  {method:<18} {n['accepted']:>9} {n['rejected']:>9} "
                f"{n['customised']:>11}"
            )
        granted = ", ".join(f"{name} {n}" for name, n in entry["granted"].items())
        print(f"{'':>8}  granted: {granted}")
    return 0


def _time(at: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at))


def _when(text: str | None, flag: str) -> int | None:
    if text is None:
        return None
    try:
        return times.instant(text, tz=datetime.UTC)  # the consent log's days are UTC days
    except ValueError as exc:
        raise ConfigError(f"{flag}: {exc}") from None
