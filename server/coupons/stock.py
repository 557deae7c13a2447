"""The stock of the coupon pools: codes read from CSV, codes generated in advance, and the
counts per pool, for the ``touchpoint coupons`` commands and the server API (docs/coupons.md).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

from .. import store
from ..errors import ConfigError
from ..settings import Settings
from ..store import Connection
from .pools import Pool, Pools

BATCH = 50_000  # rows per commit: each commit rewrites the pages it touched
HEADERS = ("code",)  # a first row with a column of this name is a header


def csv_rows(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(line, code) for each row of a CSV file: the first column, or the column headed
    ``code``; the delimiter is a comma, semicolon or tab (whichever the first line has most
    of). Codes are trimmed; blank rows are skipped."""
    lines = iter(lines)
    first = next(lines, None)
    if first is None:
        return
    delimiter = max(",;\t", key=first.count) if any(d in first for d in ",;\t") else ","
    reader = csv.reader(itertools.chain([first], lines), delimiter=delimiter)
    column = None
    for row in reader:
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if column is None:
            named = [i for i, cell in enumerate(cells) if cell.lower() in HEADERS]
            column = named[0] if named else 0
            if named:
                continue
        yield reader.line_num, cells[column] if column < len(cells) else ""


def json_rows(codes: Any) -> list[tuple[int, str]]:
    """(index + 1, code) for a JSON list of codes; raises ValueError if it is not one."""
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        raise ValueError("codes must be a list of strings")
    return [(i + 1, code.strip()) for i, code in enumerate(codes)]


def remaining(pool: Pool | None, stats: store.PoolStats) -> int | None:
    """The codes a pool can still hand out; None when it cannot run out."""
    if pool is None or pool.codes == "imported":
        return stats.free
    if pool.codes == "generated" and pool.limit is not None:
        return stats.free + max(0, pool.limit - stats.generated)
    return None


def stock(pools: Mapping[str, Pool], stats: Mapping[str, store.PoolStats]) -> list[dict[str, Any]]:
    """One entry per pool, of the rules or with codes stored (a pool since removed from
    coupons.yaml has ``codes`` null)."""
    out = []
    for name in sorted(set(pools) | set(stats)):
        pool, counts = pools.get(name), stats.get(name, store.PoolStats())
        left = remaining(pool, counts)
        low_stock = pool.low_stock if pool else None
        out.append(
            {
                "pool": name,
                "codes": pool.codes if pool else None,
                "free": counts.free,
                "assigned": counts.assigned,
                "redeemed": counts.redeemed,
                "generated": counts.generated,
                "limit": pool.limit if pool else None,
                "remaining": left,
                "low_stock": low_stock,
                "low": low_stock is not None and left is not None and left < low_stock,
            }
        )
    return out


class Stock:
    """Which coupon pools have run out, as the decide path sees them in this worker process.

    Probing a pool is one index lookup; it runs at most once per ``ttl`` seconds, so a pool
    emptied by another worker keeps its campaigns showing for at most that long (a reveal then
    answers 410 and the popup keeps the template's fallback text). A claim that finds the pool
    empty marks it at once."""

    def __init__(self, ttl: float = 2.0) -> None:
        self.ttl = ttl
        self._checked = -math.inf
        self._empty: frozenset[str] = frozenset()

    def empty(self, pools: Mapping[str, Pool], reader: store.Reader) -> frozenset[str]:
        now = time.monotonic()
        if now - self._checked >= self.ttl:
            self._checked = now
            at = int(time.time())  # a pool past its valid.until counts as empty
            self._empty = frozenset(
                name
                for name, pool in pools.items()
                # The Pool, not its name: a generated pool has codes while under its limit.
                if pool.finite and not store.pool_has_codes(reader.conn, pool, now=at)
            )
        return self._empty

    def ran_out(self, pool: str) -> bool:
        """Mark ``pool`` empty; true when this worker did not know it yet, so that an emptying
        is logged once, not once per visitor refused after it."""
        news = pool not in self._empty
        self._empty |= {pool}
        return news

    def refilled(self) -> None:
        """Codes were added: probe again at the next decide."""
        self._checked = -math.inf
        self._empty = frozenset()


# --- the touchpoint coupons command -----------------------------------------------------------


def command(settings: Settings, args: argparse.Namespace, pools: Pools) -> int:
    """``touchpoint coupons import | generate | list`` (cli.coupons loads ``pools``)."""
    path = settings.database_url
    if args.action == "list" and not store.exists(path):
        raise store.no_database(path)
    store.migrate(path)
    conn = store.connect(path, large_cache=True)  # an import inserts all over the code index
    try:
        if args.action == "import":
            pool = _pool(pools, args.pool, "imported")
            return import_file(conn, pool, args.file, as_json=args.json)
        if args.action == "generate":
            return generate(
                conn, _pool(pools, args.pool, "generated"), args.count, as_json=args.json
            )
        rows = stock(pools, store.coupon_stats(conn))
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()
    if args.json:
        print(json.dumps({"pools": rows}, indent=2))
        return 0
    print(
        f"{'pool':<20} {'codes':<10} {'free':>9} {'assigned':>9} {'redeemed':>9} {'remaining':>10}"
    )
    for row in rows:
        left = "unlimited" if row["remaining"] is None else f"{row['remaining']:,}"
        note = f"  LOW (below {row['low_stock']:,})" if row["low"] else ""
        if row["codes"] is None:
            note = "  not in coupons.yaml"
        free = "-" if row["codes"] == "static" else f"{row['free']:,}"
        print(
            f"{row['pool']:<20} {row['codes'] or '-':<10} {free:>9} {row['assigned']:>9,}"
            f" {row['redeemed']:>9,} {left:>10}{note}"
        )
    return 0


def _pool(pools: Pools, name: str, kind: str) -> Pool:
    pool = pools.get(name)
    if pool is None:
        known = ", ".join(pools) or "none"
        raise ConfigError(f"no pool {name!r} in coupons.yaml (pools: {known})")
    if pool.codes != kind:
        other = {"imported": "coupons import", "generated": "coupons generate"}
        hint = f"; use touchpoint {other[pool.codes]}" if pool.codes in other else ""
        raise ConfigError(f"pool {name} has {pool.codes} codes, not {kind}{hint}")
    return pool


def import_file(conn: Connection, pool: Pool, file: str, *, as_json: bool = False) -> int:
    """Add the codes of a CSV file (``-``: standard input) to an imported pool, committing
    every BATCH rows so that a running server is never kept waiting for long. Returns 1 when
    rows were invalid."""
    size = 0 if file == "-" else Path(file).stat().st_size
    source: TextIO = sys.stdin
    if file != "-":
        source = open(file, encoding="utf-8-sig", newline="")  # closed below
    progress = Progress(size) if sys.stderr.isatty() else None
    read = [0]

    def lines() -> Iterator[str]:
        for line in source:
            read[0] += len(line)
            yield line

    def committed(report: store.ImportReport) -> None:
        conn.execute("COMMIT")
        if progress is not None:
            progress.show(read[0], report)
        conn.execute(begin)

    begin = store.dialect_of(conn).begin_write
    try:
        conn.execute(begin)
        report = store.import_codes(
            conn,
            pool.name,
            csv_rows(lines()),
            now=int(time.time()),
            batch=BATCH,
            after_batch=committed,
        )
        conn.execute("COMMIT")
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: not UTF-8 text (after {read[0]:,} characters)") from None
    except csv.Error as exc:
        raise ConfigError(f"{file}: {exc}") from None
    finally:
        if source is not sys.stdin:
            source.close()
        if progress is not None:
            progress.done()
    counts = store.coupon_stats(conn, pool.name).get(pool.name, store.PoolStats())
    if as_json:
        problems = [{"line": n, "code": c, "problem": p} for n, c, p in report.problems]
        result = {
            "pool": pool.name,
            "added": report.added,
            "repeated": report.duplicates,
            "already_stored": report.stored,
            "invalid": report.invalid,
            "problems": problems,
            "unlisted_problems": report.unlisted,
            "free": counts.free,
            "low": pool.low_stock is not None and counts.free < pool.low_stock,
        }
        print(json.dumps(result, indent=2))
        return 1 if report.invalid else 0
    for line, code, problem in report.problems:
        print(f"{file}:{line}: {code + ': ' if code else ''}{problem}", file=sys.stderr)
    if report.unlisted:
        print(f"... and {report.unlisted:,} more", file=sys.stderr)
    skipped = [
        f"{n:,} {what}"
        for n, what in (
            (report.duplicates, "repeated in the file"),
            (report.stored, "already stored"),
            (report.invalid, "invalid"),
        )
        if n
    ]
    low = ""
    if pool.low_stock is not None and counts.free < pool.low_stock:
        low = f" — below low_stock ({pool.low_stock:,})"
    print(
        f"{pool.name}: {report.added:,} code(s) added"
        + (f"; skipped {', '.join(skipped)}" if skipped else "")
        + f"; {counts.free:,} free{low}"
    )
    return 1 if report.invalid else 0


def generate(conn: Connection, pool: Pool, count: int, *, as_json: bool = False) -> int:
    """Make ``count`` codes of a generated pool in advance and print them, one a line, or
    ``as_json`` as one document."""
    if count < 1:
        raise ConfigError("coupons generate: how many codes, from 1")
    made = store.coupon_stats(conn, pool.name).get(pool.name, store.PoolStats()).generated
    if pool.limit is not None and made + count > pool.limit:
        raise ConfigError(
            f"pool {pool.name} has made {made:,} of its limit of {pool.limit:,}"
            f" codes: {pool.limit - made:,} more fit"
        )
    done, made_now = 0, []
    while done < count:
        n = min(BATCH, count - done)
        with store.immediate(conn):
            codes = store.add_generated(conn, pool, n, now=int(time.time()))
        if as_json:
            made_now.extend(codes)
        else:
            sys.stdout.write("".join(code + "\n" for code in codes))
        done += n
    if as_json:
        print(json.dumps({"pool": pool.name, "codes": made_now, "made": made + count}, indent=2))
    limit = f" of its limit of {pool.limit:,}" if pool.limit is not None else ""
    print(f"{pool.name}: {count:,} code(s) made, {made + count:,}{limit} so far", file=sys.stderr)
    return 0


class Progress:
    """A one-line progress bar on standard error (a terminal)."""

    def __init__(self, total: int) -> None:
        self.total = total

    def show(self, done: int, report: store.ImportReport) -> None:
        rows = report.added + report.duplicates + report.stored + report.invalid
        if self.total:
            share = min(1.0, done / self.total)
            bar = "#" * int(share * 30)
            sys.stderr.write(f"\r[{bar:<30}] {share:4.0%} {rows:,} rows")
        else:
            sys.stderr.write(f"\r{rows:,} rows")
        sys.stderr.flush()

    def done(self) -> None:
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()
