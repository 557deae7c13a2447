"""``touchpoint db copy --to postgresql://...``: move the SQLite database to PostgreSQL
(docs/operations.md#moving-from-sqlite-to-postgresql)."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from typing import Any

from .. import store
from ..errors import ConfigError
from ..settings import Settings


def add_parser(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    db = commands.add_parser("db", help="the database: copy it from SQLite to PostgreSQL")
    actions = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    copy = actions.add_parser(
        "copy",
        help="copy every table of the SQLite database into an empty PostgreSQL database",
        parents=parents,
    )
    copy.add_argument(
        "--to", required=True, metavar="URL", help="the PostgreSQL database (postgresql://...)"
    )


def command(settings: Settings, args: argparse.Namespace) -> int:
    """Copy the server's SQLite database into the PostgreSQL database ``--to``, then count the
    rows of each table on both sides; exit status 1 unless every count agrees."""
    source = settings.database_url
    if store.locate(source).is_postgresql:
        raise ConfigError("db copy: the database is PostgreSQL already; copy from a SQLite file")
    if not store.locate(args.to).is_postgresql:
        raise ConfigError(f"db copy: --to {args.to!r} is not a postgresql:// URL")
    if not store.exists(source):
        raise store.no_database(source)
    store.migrate(source)  # both at the same version of the schema
    store.migrate(args.to)
    lite, pg = store.connect(source), store.connect(args.to)
    assert isinstance(lite, sqlite3.Connection) and isinstance(pg, store.PgConnection)
    try:
        bar = None if args.json else Bar()
        copied = store.copy_database(lite, pg, progress=bar)
    finally:
        lite.close()
        pg.close()
    verified = all(c.verified for c in copied)
    if args.json:
        tables = {c.table: {"sqlite": c.source, "postgresql": c.target} for c in copied}
        print(
            json.dumps(
                {"to": str(store.locate(args.to)), "tables": tables, "verified": verified}, indent=2
            )
        )
    else:
        print(f"{'table':<24} {'SQLite':>12} {'PostgreSQL':>12}")
        for c in copied:
            mark = "" if c.verified else "  differs"
            print(f"{c.table:<24} {c.source:>12,} {c.target:>12,}{mark}")
        total = sum(c.target for c in copied)
        outcome = "every table counted the same" if verified else "COUNTS DIFFER"
        print(f"{total:,} rows copied to {store.locate(args.to)}: {outcome}", file=sys.stderr)
    return 0 if verified else 1


class Bar:
    """A progress bar per table on standard error (a line per table where it is no terminal)."""

    WIDTH = 30

    def __init__(self) -> None:
        self.live = sys.stderr.isatty()

    def __call__(self, table: str, done: int, total: int) -> None:
        if not self.live:
            if done == total:
                print(f"{table}: {done:,} rows", file=sys.stderr)
            return
        filled = self.WIDTH * done // total if total else self.WIDTH
        bar = "#" * filled + "." * (self.WIDTH - filled)
        end = "\n" if done == total else ""
        print(f"\r{table:<24} [{bar}] {done:,}/{total:,}", end=end, file=sys.stderr, flush=True)
