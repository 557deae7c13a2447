"""Coupon codes: claims and redemptions (docs/coupons.md); the stock (imports, codes generated
in advance, counts per pool) is in store/stock.py.

Every write runs inside a writer unit (``BEGIN IMMEDIATE``), which SQLite serialises across
processes too: a claim reads the visitor's code or takes the first free one in the same
transaction, and the unique index on (visitor_id, pool) backs it up, so that a visitor gets one
code per pool and no code goes to two visitors, however many server workers there are.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from ..errors import RequestError
from . import eventlog
from .engine import Connection, dialect_of, one_at_a_time


class Pool(Protocol):
    """What the store needs of a coupon pool (coupons.pools.Pool, from coupons.yaml)."""

    @property
    def name(self) -> str: ...
    @property
    def codes(self) -> str: ...  # generated, imported or static
    @property
    def pattern(self) -> str | None: ...
    @property
    def code(self) -> str | None: ...
    @property
    def low_stock(self) -> int | None: ...
    @property
    def valid_until(self) -> int | None: ...
    @property
    def limit(self) -> int | None: ...
    @property
    def finite(self) -> bool: ...
    def new_code(self) -> str: ...
    def expires(self, assigned_at: int) -> int | None: ...


# Attempts at a fresh code before giving up: with at least 31**6 codes per pattern a collision
# is rare, eight in a row means the pattern's codes are nearly used up.
ATTEMPTS = 8
# A code in stock: never handed out (redeeming a code straight from the stock sets assigned_at).
FREE = "visitor_id IS NULL AND assigned_at IS NULL"


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
        return {
            "order_id": self.order_id,
            "code": self.code,
            "pool": self.pool,
            "visitor_id": self.visitor_id,
            "campaign": self.campaign,
            "variant": self.variant,
            "value": self.value,
            "currency": self.currency,
            "redeemed_at": self.at,
        }


# --- claims -----------------------------------------------------------------------------------


def claim_coupon(
    conn: Connection,
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
    one_at_a_time(conn, f"claim {pool.name} {visitor_id}")  # across nodes
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
        f" WHERE pool = ? AND {FREE} LIMIT 1{dialect_of(conn).skip_locked}) RETURNING code",
        (*assigned, pool.name),
    ).fetchone()
    code = row[0] if row else None
    if code is None and pool.codes == "generated":
        made = generate_codes(conn, pool, 1, now=now, assigned=assigned)
        code = made[0] if made else None
    if code is None:
        return None
    return Claim(code, expires_at, new=True, low_stock=_crossed(conn, pool))


def _reveal(
    conn: Connection,
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


def generated_count(conn: Connection, pool: str) -> int:
    """The codes a generated pool has made so far, in advance or on demand."""
    row = conn.execute("SELECT generated FROM coupon_pools WHERE pool = ?", (pool,)).fetchone()
    return int(row[0]) if row else 0


def generate_codes(
    conn: Connection,
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
        count = min(count, pool.limit - generated_count(conn, pool.name))
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
            " DO UPDATE SET generated = coupon_pools.generated + excluded.generated",
            (pool.name, len(made)),
        )
    return made


def _remaining(conn: Connection, pool: Pool, cap: int) -> int:
    """The codes ``pool`` can still hand out, counted up to ``cap`` only: the free ones are
    read from the stock index with LIMIT, not counted whole."""
    room = 0
    if pool.codes == "generated" and pool.limit is not None:
        room = max(0, pool.limit - generated_count(conn, pool.name))
        if room >= cap:
            return cap
    free = conn.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM coupon_codes WHERE pool = ? AND {FREE} LIMIT ?) AS f",
        (pool.name, cap - room),
    ).fetchone()[0]
    return int(free) + room


def _crossed(conn: Connection, pool: Pool) -> int | None:
    """The codes left when a claim has just taken the pool below ``low_stock``, else None.
    Each claim takes one code, so the count passes ``low_stock - 1`` exactly once on the way
    down (and again only after the pool was refilled)."""
    if pool.low_stock is None or not pool.finite:
        return None
    remaining = _remaining(conn, pool, pool.low_stock)
    return remaining if remaining == pool.low_stock - 1 else None


def pool_has_codes(conn: Connection, pool: Pool | str, *, now: int | None = None) -> bool:
    """Whether a claim from ``pool`` could get a code now: one probe of the stock index. Given
    a name, only the stock is probed; given the Pool, a static pool always has its code, a
    generated one has codes while under its limit, and none after ``valid.until`` (with
    ``now``)."""
    if not isinstance(pool, str):
        if now is not None and pool.valid_until is not None and pool.valid_until <= now:
            return False
        if pool.codes == "static" or (pool.codes == "generated" and pool.limit is None):
            return True
        if pool.codes == "generated" and generated_count(conn, pool.name) < (pool.limit or 0):
            return True
    name = pool if isinstance(pool, str) else pool.name
    row = conn.execute(f"SELECT 1 FROM coupon_codes WHERE pool = ? AND {FREE} LIMIT 1", (name,))
    return row.fetchone() is not None


# --- redemption -------------------------------------------------------------------------------


def redeem_coupon(
    conn: Connection,
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
        return Redemption(
            prior[0],
            prior[1],
            prior[2],
            prior[3],
            prior[4],
            prior[5],
            prior[6],
            prior[7],
            prior[8],
            replay=True,
        )
    row = conn.execute(
        "SELECT pool, visitor_id, campaign, variant, assigned_at, expires_at FROM coupon_codes"
        f" WHERE code = ?{dialect_of(conn).for_update}",
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
    redemption = Redemption(
        order_id, code, pool_name, visitor, campaign, variant, value, currency, now
    )
    conn.execute(
        "INSERT INTO coupon_redemptions (order_id, code, pool, visitor_id, campaign, variant,"
        " value, currency, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (order_id, code, pool_name, visitor, campaign, variant, value, currency, now),
    )
    if visitor is not None and campaign is not None:
        _converted(conn, redemption, visitor)
    return redemption


def _utc(at: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at))


def _check_expiry(code: str, expires_at: int | None, now: int) -> None:
    if expires_at is not None and expires_at < now:
        raise CouponExpired(f"the code {code} expired on {_utc(expires_at)}")


def _converted(conn: Connection, r: Redemption, visitor: str) -> None:
    """The redemption in the visitor's event log and campaign history (a conversion: the
    campaign's ``after_convert`` applies), while the visitor exists with marketing consent."""
    sql = "SELECT consent_granted, num FROM visitors WHERE id = ?"
    row = conn.execute(sql, (visitor,)).fetchone()
    if row is None or "marketing" not in orjson.loads(row[0]):
        return
    props = orjson.dumps({"code": r.code, "pool": r.pool, "currency": r.currency}).decode()
    event = (r.at, "redeem", r.campaign, r.variant, None, r.order_id, r.value, props, "api")
    eventlog.insert(conn, visitor, [event], number=row[1])
    conn.execute(
        "INSERT INTO campaign_state (visitor_id, campaign, last_converted_at) VALUES (?, ?, ?)"
        " ON CONFLICT (visitor_id, campaign) DO UPDATE SET last_converted_at = greatest("
        " campaign_state.last_converted_at, excluded.last_converted_at)",
        (r.visitor_id, r.campaign, r.at),
    )


# --- identities -------------------------------------------------------------------------------


def merge_coupons(conn: Connection, source: str, target: str) -> None:
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
