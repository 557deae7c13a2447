"""Coupon pools (``rules/coupons.yaml``): where the codes campaigns hand out come from.

- ``generated``: codes made from a pattern such as ``WELCOME-XXXX-XXXX``, each ``X`` one
  character of an alphabet without look-alikes, drawn with :mod:`secrets`. They are made when a
  visitor claims one, up to an optional ``limit``; ``touchpoint coupons generate`` makes them in
  advance, to load into the shop.
- ``imported``: codes the shop made, loaded from CSV or through the server API; the pool runs
  empty when every code is handed out.
- ``static``: one code for everybody; who was shown it is recorded for attribution.

The file is optional (no file, no pools) and loads with the rest of the rules: problems are
``file:line:column: key: message``. ``exclude`` is kept as written, with its positions, for the
campaign loader to compile. Storage and claims: server/store/coupons.py; docs/coupons.md.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import store
from ..store import Connection
from ..store.stock import MAX_CODE, code_problem
from ..syntax.files import Problem, YamlFile
from ..webhooks import delivery as webhooks

log = logging.getLogger("touchpoint.coupons")

STEM = "coupons"  # rules/coupons.yaml (or .yml): not a campaign
KINDS = ("generated", "imported", "static")
# No 0/O, 1/I/L: a code read off a screen or a printed voucher is typed back right.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
# At least 31**6 (about 887 million) codes per pattern: collisions stay rare and codes cannot
# be guessed by trying a few.
MIN_RANDOM = 6
POOL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Pool:
    """One pool of coupons.yaml. ``valid_until`` is Unix seconds: the end of that day (or
    that minute) in the site's time zone."""

    name: str
    codes: str  # one of KINDS
    pattern: str | None = None  # generated
    code: str | None = None  # static
    low_stock: int | None = None  # warn when fewer codes than this remain
    valid_days: int | None = None  # from the moment a visitor gets the code
    valid_until: int | None = None
    limit: int | None = None  # generated: at most this many codes, ever
    source: str = ""  # "file:line", for messages

    def new_code(self) -> str:
        """A fresh random code of a generated pool."""
        assert self.pattern is not None
        return generate_code(self.pattern)

    def expires(self, assigned_at: int) -> int | None:
        return expiry(self, assigned_at)

    @property
    def finite(self) -> bool:
        """Whether the pool can run out of codes to give: imported codes, a generated pool's
        limit, any pool's ``valid.until`` (after it, the pool counts as empty)."""
        return (
            self.codes == "imported"
            or (self.codes == "generated" and self.limit is not None)
            or self.valid_until is not None
        )


@dataclass(frozen=True)
class Pools(Mapping[str, Pool]):
    """The pools of ``rules/coupons.yaml`` by name, the raw ``exclude`` node and the file."""

    pools: dict[str, Pool] = field(default_factory=dict)
    exclude: Any = None  # as written; compiled by the campaign loader
    source: Path | None = None
    # Dotted key -> (line, column) for every key of the file: see ``reporter``.
    positions: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)

    def __getitem__(self, name: str) -> Pool:
        return self.pools[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.pools)

    def __len__(self) -> int:
        return len(self.pools)

    def static(self, code: str) -> Pool | None:
        """The static pool handing out ``code``, if any."""
        for pool in self.pools.values():
            if pool.codes == "static" and pool.code == code:
                return pool
        return None

    def reporter(self, problems: list[Problem]) -> YamlFile:
        """The file, to report problems into ``problems`` at its keys' positions: the campaign
        loader compiles ``exclude`` with it (``Compiler(pools.reporter(problems).problem)``),
        so a mistake there reads ``rules/coupons.yaml:3:5: exclude.visitor.stag: ...``."""
        file = YamlFile(self.source or Path(STEM + ".yaml"), problems)
        file.positions = dict(self.positions)
        return file


def generate_code(pattern: str) -> str:
    """A code from ``pattern``: each ``X`` becomes a random character of ALPHABET (from
    :mod:`secrets`), ``\\X`` a literal X, everything else stays. Raises ValueError for a
    pattern with fewer than MIN_RANDOM random places."""
    problem = pattern_problem(pattern)
    if problem:
        raise ValueError(problem)
    out: list[str] = []
    escaped = False
    for char in pattern:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "X":
            out.append(secrets.choice(ALPHABET))
        else:
            out.append(char)
    return "".join(out)


def random_places(pattern: str) -> int:
    """How many random characters ``pattern`` makes (its X not escaped)."""
    return len(re.findall(r"\\.|X", pattern)) - len(re.findall(r"\\.", pattern))


def pattern_problem(pattern: Any) -> str | None:
    """What is wrong with a generated pool's pattern, or None."""
    if not isinstance(pattern, str) or not pattern:
        return "required for generated codes: a pattern like WELCOME-XXXX-XXXX (X is random)"
    literal = re.sub(r"\\(.)|X", r"\1", pattern)
    places = random_places(pattern)
    if places < MIN_RANDOM:
        return (
            f"{pattern} has {places} random character(s) (X): at least {MIN_RANDOM}, or the"
            f" {len(ALPHABET)}**{places} possible codes run out and can be guessed"
        )
    if len(literal) + places > MAX_CODE or pattern.endswith("\\"):
        return f"at most {MAX_CODE} characters; \\ makes the next character literal (\\X)"
    problem = code_problem(literal) if literal else None
    return f"{pattern}: {problem}" if problem else None


def expiry(pool: Pool, assigned_at: int) -> int | None:
    """When a code handed out at ``assigned_at`` expires (Unix seconds): the earlier of
    ``valid.days`` later (days of 24 hours) and ``valid.until``; None when it never does."""
    ends = [t for t in (pool.valid_until,) if t is not None]
    if pool.valid_days is not None:
        ends.append(assigned_at + pool.valid_days * 86400)
    return min(ends) if ends else None


# --- webhooks ---------------------------------------------------------------------------------


def queue_claim(
    conn: Connection,
    endpoints: Mapping[str, webhooks.Endpoint],
    pool: Pool,
    claim: store.Claim,
    *,
    visitor_id: str,
    campaign: str | None,
    variant: str | None,
    now: int,
) -> int:
    """Queue what a claim reports, in the claim's writer unit: ``coupon.claimed`` when the code
    is new to the visitor, ``coupon.low_stock`` when this claim took the pool below its
    ``low_stock``. Returns the rows queued."""
    queued = 0
    if claim.low_stock is not None:
        queued += queue_low_stock(conn, endpoints, pool, claim.low_stock, now=now)
    if claim.new and endpoints:
        payload = {
            **webhooks.visitor(conn, visitor_id),
            "pool": pool.name,
            "code": claim.code,
            "campaign": campaign,
            "variant": variant,
            "expires_at": claim.expires_at,
            "time": now,
        }
        key = f"coupon.claimed:{pool.name}:{visitor_id}"
        queued += webhooks.enqueue(conn, endpoints, "coupon.claimed", payload, now=now, key=key)
    return queued


def queue_low_stock(
    conn: Connection,
    endpoints: Mapping[str, webhooks.Endpoint],
    pool: Pool,
    remaining: int,
    *,
    now: int,
) -> int:
    """Log that ``pool`` is running low and queue ``coupon.low_stock``; returns rows queued."""
    log.warning(
        "coupon pool %s is running low: %d code(s) left (low_stock: %s)",
        pool.name,
        remaining,
        pool.low_stock,
    )
    payload = {"pool": pool.name, "remaining": remaining, "low_stock": pool.low_stock, "time": now}
    key = f"coupon.low_stock:{pool.name}:{now}:{remaining}"
    return webhooks.enqueue(conn, endpoints, "coupon.low_stock", payload, now=now, key=key)


def queue_redeemed(
    conn: Connection,
    endpoints: Mapping[str, webhooks.Endpoint],
    redemption: store.Redemption,
    *,
    now: int,
) -> int:
    """Queue ``coupon.redeemed`` (not for a replayed redemption); returns rows queued."""
    if redemption.replay or not endpoints:
        return 0
    who: dict[str, Any] = {"visitor_id": None, "identifiers": []}
    if redemption.visitor_id is not None:
        who = webhooks.visitor(conn, redemption.visitor_id)
    payload = {**who, **redemption.as_json(), "time": now}
    key = f"coupon.redeemed:{redemption.order_id}"
    return webhooks.enqueue(conn, endpoints, "coupon.redeemed", payload, now=now, key=key)


# --- loading ----------------------------------------------------------------------------------
