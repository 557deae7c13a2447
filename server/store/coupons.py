"""Coupon codes: the stock of each pool, claims, redemptions (docs/coupons.md).

Every write runs inside a writer unit (``BEGIN IMMEDIATE``), which SQLite serialises across
processes too: a claim reads the visitor's code or takes the first free one in the same
transaction, and the unique index on (visitor_id, pool) backs it up, so that a visitor gets one
code per pool and no code goes to two visitors, however many server workers there are.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import RequestError

if TYPE_CHECKING:
    from ..coupons import Pool

# Attempts at a fresh code before giving up: with at least 31**6 codes per pattern a collision
# is rare, eight in a row means the pattern's codes are nearly used up.
ATTEMPTS = 8
LISTED = 100  # problems an import report lists by line; the rest are counted
MAX_SHOWN = 80  # characters of an invalid row an import report repeats
_FREE = "visitor_id IS NULL AND assigned_at IS NULL"


class CouponError(RequestError):
    """A redemption that cannot be made; ``status`` says why."""


class UnknownCoupon(CouponError):
    status = 404


class CouponRedeemed(CouponError):
    status = 409


class CouponExpired(CouponError):
    status = 422


@dataclass(frozen=True)
class Claim:
    code: str
    expires_at: int | None  # Unix seconds; None: valid until redeemed
    new: bool  # False: the visitor had this code already
    low_stock: int | None = None  # codes left, when this claim took the pool below low_stock


@dataclass(frozen=True)
class Redemption:
    order_id: str
    code: str
    pool: str
    visitor_id: str | None  # who was given the code (or, for a shared code, who redeemed it)
    campaign: str | None  # the campaign and variant that revealed it
    variant: str | None
    value: float | None
    currency: str | None
    at: int
    replay: bool = False  # the same order and code were redeemed before: nothing changed

    def as_json(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "code": self.code, "pool": self.pool,
                "visitor_id": self.visitor_id, "campaign": self.campaign,
                "variant": self.variant, "value": self.value, "currency": self.currency,
                "redeemed_at": self.at}  # fmt: skip


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
        return {"added": self.added, "duplicates": self.duplicates, "already_stored": self.stored,
                "invalid": self.invalid, "unlisted": self.unlisted,
                "problems": [{position: line + shift, "code": code, "problem": problem}
                             for line, code, problem in self.problems]}  # fmt: skip


# --- claims -----------------------------------------------------------------------------------


def claim_coupon(
    conn: sqlite3.Connection,
    pool: Pool,
    visitor_id: str,
    campaign: str | None,
    variant: str | None,
    now: int,
) -> Claim | None:
    """The visitor's code from ``pool``: the one they were given before (``new`` False), else
    a free one, else (generated pools, under their limit) a fresh one. None when the pool is
    empty or its ``valid.until`` has passed. Run it in a writer unit: atomic and idempotent per
    (pool, visitor) across processes. ``low_stock`` is set once, when this claim took the
    remaining codes below the pool's ``low_stock``.
    """
    if pool.codes == "static":
        return _reveal(conn, pool, visitor_id, campaign, variant, now)
    row = conn.execute(
        "SELECT code, expires_at FROM coupon_codes WHERE visitor_id = ? AND pool = ?",
        (visitor_id, pool.name),
    ).fetchone()
    if row is not None:
        return Claim(row[0], row[1], new=False)
    if pool.valid_until is not None and pool.valid_until <= now:
        return None
    expires_at = pool.expires(now)
    assigned = (visitor_id, campaign, variant, now, expires_at)
    row = conn.execute(
        "UPDATE coupon_codes SET visitor_id = ?, campaign = ?, variant = ?, assigned_at = ?,"
        " expires_at = ? WHERE code = (SELECT code FROM coupon_codes"
        f" WHERE pool = ? AND {_FREE} LIMIT 1) RETURNING code",
        (*assigned, pool.name),
    ).fetchone()
    code = row[0] if row else None
    if code is None and pool.codes == "generated":
        made = _generate(conn, pool, 1, now=now, assigned=assigned)
        code = made[0] if made else None
    if code is None:
        return None
    return Claim(code, expires_at, new=True, low_stock=_crossed(conn, pool))


def _reveal(
    conn: sqlite3.Connection,
    pool: Pool,
    visitor_id: str,
    campaign: str | None,
    variant: str | None,
    now: int,
) -> Claim | None:
    """A static pool's code for the visitor, recorded for attribution."""
    assert pool.code is not None
    row = conn.execute(
        "SELECT code, expires_at FROM coupon_reveals WHERE pool = ? AND visitor_id = ?",
        (pool.name, visitor_id),
    ).fetchone()
    if row is not None:
        if row[0] != pool.code:  # the marketer changed the code: the old one is withdrawn
            conn.execute(
                "UPDATE coupon_reveals SET code = ? WHERE pool = ? AND visitor_id = ?",
                (pool.code, pool.name, visitor_id),
            )
        return Claim(pool.code, row[1], new=False)
    if pool.valid_until is not None and pool.valid_until <= now:
        return None
    expires_at = pool.expires(now)
    conn.execute(
        "INSERT INTO coupon_reveals (pool, visitor_id, code, campaign, variant, at, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (pool.name, visitor_id, pool.code, campaign, variant, now, expires_at),
    )
    return Claim(pool.code, expires_at, new=True)


def _generated(conn: sqlite3.Connection, pool: str) -> int:
    row = conn.execute("SELECT generated FROM coupon_pools WHERE pool = ?", (pool,)).fetchone()
    return int(row[0]) if row else 0


def _generate(
    conn: sqlite3.Connection,
    pool: Pool,
    count: int,
    *,
    now: int,
    assigned: tuple[Any, ...] | None = None,
) -> list[str]:
    """Insert ``count`` fresh codes of a generated pool (free, or ``assigned`` as (visitor_id,
    campaign, variant, assigned_at, expires_at) when count is 1); fewer when the limit is near.
    A code that exists already is drawn again."""
    if pool.limit is not None:
        count = min(count, pool.limit - _generated(conn, pool.name))
    made: list[str] = []
    misses = 0
    while len(made) < count:
        code = pool.new_code()
        inserted = conn.execute(
            "INSERT INTO coupon_codes (code, pool, added_at, visitor_id, campaign, variant,"
            " assigned_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (code) DO NOTHING",
            (code, pool.name, now, *(assigned or (None,) * 5)),
        ).rowcount
        if inserted:
            made.append(code)
            misses = 0
        else:
            misses += 1
            if misses >= ATTEMPTS:
                raise CouponError(
                    f"pool {pool.name}: {ATTEMPTS} fresh codes in a row existed already; the"
                    f" pattern {pool.pattern} is nearly used up: add X to it",
                    status=503,
                )
    if made:
        conn.execute(
            "INSERT INTO coupon_pools (pool, generated) VALUES (?, ?) ON CONFLICT (pool)"
            " DO UPDATE SET generated = generated + excluded.generated",
            (pool.name, len(made)),
        )
    return made


def _remaining(conn: sqlite3.Connection, pool: Pool, cap: int) -> int:
    """The codes ``pool`` can still hand out, counted up to ``cap`` only: the free ones are
    read from the stock index with LIMIT, not counted whole."""
    room = 0
    if pool.codes == "generated" and pool.limit is not None:
        room = max(0, pool.limit - _generated(conn, pool.name))
        if room >= cap:
            return cap
    free = conn.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM coupon_codes WHERE pool = ? AND {_FREE} LIMIT ?)",
        (pool.name, cap - room),
    ).fetchone()[0]
    return int(free) + room


def _crossed(conn: sqlite3.Connection, pool: Pool) -> int | None:
    """The codes left when a claim has just taken the pool below ``low_stock``, else None.
    Each claim takes one code, so the count passes ``low_stock - 1`` exactly once on the way
    down (and again only after the pool was refilled)."""
    if pool.low_stock is None or not pool.finite:
        return None
    remaining = _remaining(conn, pool, pool.low_stock)
    return remaining if remaining == pool.low_stock - 1 else None


def pool_has_codes(conn: sqlite3.Connection, pool: Pool | str, *, now: int | None = None) -> bool:
    """Whether a claim from ``pool`` could get a code now: one probe of the stock index. Given
    a name, only the stock is probed; given the Pool, a static pool always has its code, a
    generated one has codes while under its limit, and none after ``valid.until`` (with
    ``now``)."""
    if not isinstance(pool, str):
        if now is not None and pool.valid_until is not None and pool.valid_until <= now:
            return False
        if pool.codes == "static" or (pool.codes == "generated" and pool.limit is None):
            return True
        if pool.codes == "generated" and _generated(conn, pool.name) < (pool.limit or 0):
            return True
    name = pool if isinstance(pool, str) else pool.name
    row = conn.execute(f"SELECT 1 FROM coupon_codes WHERE pool = ? AND {_FREE} LIMIT 1", (name,))
    return row.fetchone() is not None


# --- redemption -------------------------------------------------------------------------------


def redeem_coupon(
    conn: sqlite3.Connection,
    pools: Mapping[str, Pool],
    code: str,
    order_id: str,
    value: float | None,
    currency: str | None,
    now: int,
    *,
    visitor_id: str | None = None,
) -> Redemption:
    """Record that order ``order_id`` used ``code``, attributed to the campaign and variant
    that revealed it, and count it as that campaign's conversion in the visitor's history.

    The same order and code again answer as the first time (``replay``). Raises
    :class:`CouponRedeemed` (409) when the code was redeemed by another order, or the order
    redeemed another code; :class:`UnknownCoupon` (404); :class:`CouponExpired` (422).
    ``visitor_id`` (optional) names who redeemed it: for a shared static code, the visitor it
    was revealed to, whose campaign it credits.
    """
    code = code.strip()
    prior = conn.execute(
        "SELECT order_id, code, pool, visitor_id, campaign, variant, value, currency, at"
        " FROM coupon_redemptions WHERE order_id = ?",
        (order_id,),
    ).fetchone()
    if prior is not None:
        if prior[1] != code:
            raise CouponRedeemed(f"order {order_id} already redeemed the code {prior[1]}")
        return Redemption(prior[0], prior[1], prior[2], prior[3], prior[4], prior[5],
                          prior[6], prior[7], prior[8], replay=True)  # fmt: skip
    row = conn.execute(
        "SELECT pool, visitor_id, campaign, variant, assigned_at, expires_at FROM coupon_codes"
        " WHERE code = ?",
        (code,),
    ).fetchone()
    if row is not None:
        pool_name, owner, campaign, variant, assigned_at, expires_at = row
        other = conn.execute(
            "SELECT order_id, at FROM coupon_redemptions WHERE code = ? LIMIT 1", (code,)
        ).fetchone()
        if other is not None:
            raise CouponRedeemed(
                f"the code {code} was redeemed by order {other[0]} on {_utc(other[1])}"
            )
        if assigned_at is None and pool_name in pools:  # never handed out: the pool's end
            expires_at = pools[pool_name].valid_until
        _check_expiry(code, expires_at, now)
        if assigned_at is None:  # out of the stock, never to be handed out
            conn.execute("UPDATE coupon_codes SET assigned_at = ? WHERE code = ?", (now, code))
        visitor = owner or visitor_id
    else:
        pool = next((p for p in pools.values() if p.codes == "static" and p.code == code), None)
        if pool is None:
            raise UnknownCoupon(f"no coupon code {code}")
        pool_name, visitor, campaign, variant = pool.name, visitor_id, None, None
        expires_at = pool.valid_until
        if visitor_id is not None:
            reveal = conn.execute(
                "SELECT campaign, variant, expires_at FROM coupon_reveals"
                " WHERE pool = ? AND visitor_id = ?",
                (pool.name, visitor_id),
            ).fetchone()
            if reveal is not None:
                campaign, variant, expires_at = reveal
        _check_expiry(code, expires_at, now)
    redemption = Redemption(order_id, code, pool_name, visitor, campaign, variant, value,
                            currency, now)  # fmt: skip
    conn.execute(
        "INSERT INTO coupon_redemptions (order_id, code, pool, visitor_id, campaign, variant,"
        " value, currency, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (order_id, code, pool_name, visitor, campaign, variant, value, currency, now),
    )
    if visitor is not None and campaign is not None:
        _converted(conn, redemption)
    return redemption


def _utc(at: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at))


def _check_expiry(code: str, expires_at: int | None, now: int) -> None:
    if expires_at is not None and expires_at < now:
        raise CouponExpired(f"the code {code} expired on {_utc(expires_at)}")


def _converted(conn: sqlite3.Connection, r: Redemption) -> None:
    """The redemption in the visitor's event log and campaign history (a conversion: the
    campaign's ``after_convert`` applies), while the visitor exists with marketing consent."""
    row = conn.execute(
        "SELECT consent_granted FROM visitors WHERE id = ?", (r.visitor_id,)
    ).fetchone()
    if row is None or "marketing" not in orjson.loads(row[0]):
        return
    conn.execute(
        "INSERT INTO events (visitor_id, at, type, campaign, variant, name, value, props, source)"
        " VALUES (?, ?, 'redeem', ?, ?, ?, ?, ?, 'api')",
        (r.visitor_id, r.at, r.campaign, r.variant, r.order_id, r.value,
         orjson.dumps({"code": r.code, "pool": r.pool, "currency": r.currency}).decode()),
    )  # fmt: skip
    conn.execute(
        "INSERT INTO campaign_state (visitor_id, campaign, last_converted_at) VALUES (?, ?, ?)"
        " ON CONFLICT (visitor_id, campaign) DO UPDATE SET last_converted_at = max("
        " coalesce(last_converted_at, 0), excluded.last_converted_at)",
        (r.visitor_id, r.campaign, r.at),
    )


# --- stock ------------------------------------------------------------------------------------


def coupon_stats(conn: sqlite3.Connection, pool: str | None = None) -> dict[str, PoolStats]:
    """Counts per pool name, for every pool the database has rows of (or only ``pool``). Each
    count reads an index; none reads the code table whole."""
    counts: dict[str, dict[str, int]] = {}
    only = "" if pool is None else " AND pool = :pool"
    queries = {
        "free": f"SELECT pool, count(*) FROM coupon_codes WHERE {_FREE}{only} GROUP BY pool",
        "assigned": "SELECT pool, count(*) FROM coupon_codes WHERE visitor_id IS NOT NULL"
                    f"{only} GROUP BY pool",
        "revealed": f"SELECT pool, count(*) FROM coupon_reveals WHERE 1{only} GROUP BY pool",
        "redeemed": f"SELECT pool, count(*) FROM coupon_redemptions WHERE 1{only} GROUP BY pool",
        "generated": f"SELECT pool, generated FROM coupon_pools WHERE 1{only}",
    }  # fmt: skip
    for name, sql in queries.items():
        for found, n in conn.execute(sql, {"pool": pool}):
            column = "assigned" if name == "revealed" else name
            entry = counts.setdefault(found, {})
            entry[column] = entry.get(column, 0) + n
    return {pool: PoolStats(**entry) for pool, entry in sorted(counts.items())}


def add_generated(conn: sqlite3.Connection, pool: Pool, count: int, *, now: int) -> list[str]:
    """Make ``count`` codes of a generated pool in advance (to load into the shop); raises
    CouponError when that would pass the pool's limit."""
    if pool.codes != "generated":
        raise CouponError(f"pool {pool.name} is {pool.codes}: only generated pools make codes")
    if pool.limit is not None:
        room = pool.limit - _generated(conn, pool.name)
        if count > room:
            raise CouponError(f"pool {pool.name} has made {pool.limit - room} of its limit of"
                              f" {pool.limit} codes: {room} more fit")  # fmt: skip
    return _generate(conn, pool, count, now=now)


def import_codes(
    conn: sqlite3.Connection,
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
    from ..coupons import code_problem  # the coupons module imports the store

    report = ImportReport()
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS coupon_import (code TEXT PRIMARY KEY,"
        " line INTEGER NOT NULL) WITHOUT ROWID"
    )
    conn.execute("DELETE FROM temp.coupon_import")
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
        conn.execute("DELETE FROM temp.coupon_import")
    report.problems.sort()
    return report


def _import_batch(
    conn: sqlite3.Connection, pool: str, rows: list[tuple[int, str]], now: int, report: ImportReport
) -> None:
    codes = orjson.dumps([code for _, code in rows]).decode()
    seen: dict[str, int] = dict(conn.execute(
        "SELECT code, line FROM temp.coupon_import WHERE code IN (SELECT value FROM json_each(?))",
        (codes,),
    ))  # fmt: skip
    stored: dict[str, str] = dict(conn.execute(
        "SELECT code, pool FROM coupon_codes WHERE code IN (SELECT value FROM json_each(?))",
        (codes,),
    ))  # fmt: skip
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
    conn.executemany("INSERT INTO temp.coupon_import (code, line) VALUES (?, ?)", first)
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


# --- identities -------------------------------------------------------------------------------


def merge_coupons(conn: sqlite3.Connection, source: str, target: str) -> None:
    """On identification, move the anonymous ``source``'s codes to the known ``target``, pool
    by pool, unless ``target`` has one of that pool already: then the code stays where it was
    (still handed out, still redeemable) and a shared code's reveal is dropped."""
    conn.execute(
        "UPDATE coupon_codes SET visitor_id = ? WHERE visitor_id = ? AND pool NOT IN"
        " (SELECT pool FROM coupon_codes WHERE visitor_id = ?)",
        (target, source, target),
    )
    conn.execute(
        "UPDATE coupon_reveals SET visitor_id = ? WHERE visitor_id = ? AND pool NOT IN"
        " (SELECT pool FROM coupon_reveals WHERE visitor_id = ?)",
        (target, source, target),
    )
    conn.execute("DELETE FROM coupon_reveals WHERE visitor_id = ?", (source,))
    conn.execute(
        "UPDATE coupon_redemptions SET visitor_id = ? WHERE visitor_id = ?", (target, source)
    )
