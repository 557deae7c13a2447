"""The stock of the coupon pools: importing codes, generating them in advance, and the counts
per pool (docs/coupons.md). Claims and redemptions are in store/coupons.py.

An import keeps what it has seen in a temporary table and inserts in batches, so a file of
millions of codes needs little memory and never holds the database for long.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from .coupons import FREE, CouponError, Pool, generate_codes, generated_count
from .engine import Connection, dialect_of

MAX_CODE = 64  # characters of a coupon code


def code_problem(code: str) -> str | None:
    """What is wrong with a coupon code (as imported, or a static pool's), or None."""
    if not code:
        return "empty"
    if len(code) > MAX_CODE:
        return f"longer than {MAX_CODE} characters"
    # Every whitespace character but the space is unprintable: two checks cover them all.
    if " " in code or any(char.isspace() for char in code if not char.isprintable()):
        return "contains a space"
    if not code.isprintable():
        return "contains a control character"
    return None


LISTED = 100  # problems an import report lists by line; the rest are counted
MAX_SHOWN = 80  # characters of an invalid row an import report repeats


@dataclass(frozen=True)
class PoolStats:
    free: int = 0  # codes in stock (imported, or generated in advance)
    assigned: int = 0  # codes handed out (for a static pool: visitors shown the code)
    redeemed: int = 0
    generated: int = 0  # codes a generated pool has made, in advance or on demand


@dataclass
class ImportReport:
    """What an import did: codes added, and every row it skipped by line (the first LISTED)."""

    added: int = 0
    duplicates: int = 0  # repeated within the import
    stored: int = 0  # already stored before, in this pool or another
    invalid: int = 0
    problems: list[tuple[int, str, str]] = field(default_factory=list)  # (line, code, problem)

    def skip(self, kind: str, line: int, code: str, problem: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        if len(self.problems) < LISTED:
            self.problems.append((line, code, problem))

    @property
    def unlisted(self) -> int:
        return self.duplicates + self.stored + self.invalid - len(self.problems)

    def as_json(self, position: str = "line") -> dict[str, Any]:
        """The report as the server API returns it; ``position`` names the line field (``index``
        for a JSON list, counted from 0)."""
        shift = -1 if position == "index" else 0
        return {
            "added": self.added,
            "duplicates": self.duplicates,
            "already_stored": self.stored,
            "invalid": self.invalid,
            "unlisted": self.unlisted,
            "problems": [
                {position: line + shift, "code": code, "problem": problem}
                for line, code, problem in self.problems
            ],
        }


def coupon_stats(conn: Connection, pool: str | None = None) -> dict[str, PoolStats]:
    """Counts per pool name, for every pool the database has rows of (or only ``pool``). Each
    count reads an index; none reads the code table whole."""
    counts: dict[str, dict[str, int]] = {}
    only = "" if pool is None else " AND pool = :pool"
    queries = {
        "free": f"SELECT pool, count(*) FROM coupon_codes WHERE {FREE}{only} GROUP BY pool",
        "assigned": "SELECT pool, count(*) FROM coupon_codes WHERE visitor_id IS NOT NULL"
        f"{only} GROUP BY pool",
        "revealed": f"SELECT pool, count(*) FROM coupon_reveals WHERE TRUE{only} GROUP BY pool",
        "redeemed": f"SELECT pool, count(*) FROM coupon_redemptions WHERE TRUE{only} GROUP BY pool",
        "generated": f"SELECT pool, generated FROM coupon_pools WHERE TRUE{only}",
    }
    for name, sql in queries.items():
        for found, n in conn.execute(sql, {"pool": pool} if pool is not None else ()):
            column = "assigned" if name == "revealed" else name
            entry = counts.setdefault(found, {})
            entry[column] = entry.get(column, 0) + n
    return {pool: PoolStats(**entry) for pool, entry in sorted(counts.items())}


def add_generated(conn: Connection, pool: Pool, count: int, *, now: int) -> list[str]:
    """Make ``count`` codes of a generated pool in advance (to load into the shop); raises
    CouponError when that would pass the pool's limit."""
    if pool.codes != "generated":
        raise CouponError(f"pool {pool.name} is {pool.codes}: only generated pools make codes")
    if pool.limit is not None:
        room = pool.limit - generated_count(conn, pool.name)
        if count > room:
            raise CouponError(
                f"pool {pool.name} has made {pool.limit - room} of its limit of"
                f" {pool.limit} codes: {room} more fit"
            )
    return generate_codes(conn, pool, count, now=now)


def import_codes(
    conn: Connection,
    pool: str,
    rows: Iterable[tuple[int, str]],
    *,
    now: int,
    batch: int = 10_000,
    after_batch: Callable[[ImportReport], None] | None = None,
) -> ImportReport:
    """Add ``rows`` ((line, code), code trimmed) to the stock of ``pool``, in batches of
    ``batch``; ``after_batch`` runs after each (the CLI commits there, so a long import never
    holds the database for long). Invalid codes, codes repeated within the import and codes
    already stored are skipped and reported with their lines.

    What the import has seen is kept in a temporary table rather than in memory, so a file of
    millions of codes needs little of it.
    """
    report = ImportReport()
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS coupon_import (code TEXT PRIMARY KEY,"
        f" line INTEGER NOT NULL){dialect_of(conn).without_rowid}"
    )
    conn.execute("DELETE FROM coupon_import")
    try:
        for chunk in _chunks(rows, batch):
            valid = []
            for line, code in chunk:
                if problem := code_problem(code):
                    report.skip("invalid", line, code[:MAX_SHOWN], problem)
                else:
                    valid.append((line, code))
            _import_batch(conn, pool, valid, now, report)
            if after_batch is not None:
                after_batch(report)
    finally:
        conn.execute("DELETE FROM coupon_import")
    report.problems.sort()
    return report


def _import_batch(
    conn: Connection, pool: str, rows: list[tuple[int, str]], now: int, report: ImportReport
) -> None:
    codes = orjson.dumps([code for _, code in rows]).decode()
    values = dialect_of(conn).json_values
    seen: dict[str, int] = dict(
        conn.execute(f"SELECT code, line FROM coupon_import WHERE code IN ({values})", (codes,))
    )
    stored: dict[str, str] = dict(
        conn.execute(f"SELECT code, pool FROM coupon_codes WHERE code IN ({values})", (codes,))
    )
    first: list[tuple[str, int]] = []
    fresh: list[tuple[str, str, int]] = []
    for line, code in rows:
        if code in seen:
            report.skip("duplicates", line, code, f"repeats line {seen[code]}")
            continue
        seen[code] = line
        first.append((code, line))
        if code in stored:
            where = "" if stored[code] == pool else f" (pool {stored[code]})"
            report.skip("stored", line, code, f"already stored{where}")
            continue
        fresh.append((code, pool, now))
    conn.executemany("INSERT INTO coupon_import (code, line) VALUES (?, ?)", first)
    fresh.sort()  # inserts in key order touch each page of the code index once
    conn.executemany("INSERT INTO coupon_codes (code, pool, added_at) VALUES (?, ?, ?)", fresh)
    report.added += len(fresh)


def _chunks(rows: Iterable[tuple[int, str]], size: int) -> Iterator[list[tuple[int, str]]]:
    chunk: list[tuple[int, str]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
