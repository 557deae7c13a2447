"""``rules/coupons.yaml``: loading the coupon pools (coupons.pools.Pool) and the exclusion that
applies to every coupon campaign; problems named by ``file:line:column`` (docs/coupons.md)."""

from __future__ import annotations

import datetime as dt
import difflib
from pathlib import Path
from typing import Any

from ..coupons.pools import KINDS, POOL_NAME, Pool, Pools, pattern_problem
from ..store.stock import code_problem
from ..syntax.files import Problem, YamlFile
from ..syntax.matchers import moment
from .site import load_site

# Every key the file may use, by where it sits; docs/coupons.md documents each (a test checks).
KEYS: dict[str, tuple[str, ...]] = {
    "coupons": ("exclude", "pools"),
    "coupons.pools.NAME": ("codes", "pattern", "code", "limit", "low_stock", "valid"),
    "coupons.pools.NAME.valid": ("days", "until"),
}


def load_pools(
    rules_dir: Path | str, *, timezone: dt.tzinfo | None = None
) -> tuple[Pools, list[Problem]]:
    """The pools of ``rules_dir/coupons.yaml`` and the problems found (warnings have
    ``severity`` ``warning``). No file: no pools. ``timezone`` is the site's (``valid.until``
    ends at midnight there); by default it is read from site.yaml."""
    rules_dir = Path(rules_dir)
    problems: list[Problem] = []
    path = next(
        (p for p in (rules_dir / "coupons.yaml", rules_dir / "coupons.yml") if p.exists()), None
    )
    if path is None:
        return Pools(), problems
    if timezone is None:
        timezone = load_site(rules_dir / "site.yaml", []).timezone
    file = _CouponsFile(path, problems)
    pools = file.pools(timezone, now=int(dt.datetime.now(dt.UTC).timestamp()))
    return pools, problems


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


class _CouponsFile(YamlFile):
    def pools(self, tz: dt.tzinfo, *, now: int) -> Pools:
        start = len(self.problems)
        data = self.load()
        empty = Pools(source=self.path, positions=self.positions)
        if data is None or (data := self.mapping(data, "")) is None:
            return empty
        self.known_keys(data, KEYS["coupons"], "")
        exclude = data.get("exclude")
        if exclude is not None:
            self.mapping(exclude, "exclude")
        value = data.get("pools")
        if not isinstance(value, dict) or not value:
            self.problem(
                "pools", "required: pool names, each with codes: generated, imported or static"
            )
            return empty
        found: dict[str, Pool] = {}
        for name, item in value.items():
            pool = self._pool(str(name), item, tz, now)
            if pool is not None:
                found[pool.name] = pool
        statics: dict[str, str] = {}
        for pool in found.values():
            if pool.code is not None and pool.code in statics:
                taken = f"{pool.code} is already the code of {statics[pool.code]}"
                self.problem(f"pools.{pool.name}.code", taken)
            elif pool.code is not None:
                statics[pool.code] = pool.name
        if any(p.severity == "error" for p in self.problems[start:]):
            return empty
        return Pools(found, exclude, self.path, self.positions)

    def _pool(self, name: str, item: Any, tz: dt.tzinfo, now: int) -> Pool | None:
        key = f"pools.{name}"
        if not POOL_NAME.match(name):
            self.problem(key, "a pool name uses lowercase letters, digits, - and _")
        if (item := self.mapping(item, key)) is None:
            return None
        self.known_keys(item, KEYS["coupons.pools.NAME"], key)
        before = len(self.problems)
        kind = item.get("codes")
        if kind not in KINDS:
            close = difflib.get_close_matches(str(kind), KINDS, n=1)
            hint = f"did you mean `{close[0]}`? " if close and kind is not None else ""
            self.problem(f"{key}.codes", f"{hint}required: one of {', '.join(KINDS)}")
            return None
        pattern, code = item.get("pattern"), item.get("code")
        if kind == "generated":
            if problem := pattern_problem(pattern):
                self.problem(f"{key}.pattern", problem)
        elif "pattern" in item:
            self.problem(f"{key}.pattern", "only generated codes have a pattern")
        if kind == "static":
            if not isinstance(code, str):
                self.problem(
                    f"{key}.code",
                    "required for a static pool: the code everybody gets, e.g. FREESHIP",
                )
            elif problem := code_problem(code):
                self.problem(f"{key}.code", f"{code}: {problem}")
        elif "code" in item:
            self.problem(f"{key}.code", f"only a static pool has one code; {kind} pools hold many")
        limit, low_stock = item.get("limit"), item.get("low_stock")
        if limit is not None and kind != "generated":
            self.problem(
                f"{key}.limit",
                "only generated codes have a limit; an imported pool holds the codes it was given",
            )
        elif limit is not None and not _count(limit):
            self.problem(f"{key}.limit", "a whole number from 1: how many codes, at most")
        if low_stock is not None:
            if not _count(low_stock):
                self.problem(f"{key}.low_stock", "a whole number from 1: warn when fewer remain")
            elif kind == "static":
                self.problem(f"{key}.low_stock", "a static pool never runs out")
            elif kind == "generated" and limit is None:
                self.problem(
                    f"{key}.low_stock",
                    "a generated pool without limit never runs out: give it a limit",
                )
        days, until = self._valid(item.get("valid"), key, tz, now)
        if any(p.severity == "error" for p in self.problems[before:]):
            return None
        return Pool(
            name,
            kind,
            pattern if kind == "generated" else None,
            code if kind == "static" else None,
            low_stock,
            days,
            until,
            limit,
            self.position(key),
        )

    def _valid(
        self, value: Any, key: str, tz: dt.tzinfo, now: int
    ) -> tuple[int | None, int | None]:
        if value is None:
            return None, None
        key = f"{key}.valid"
        if (value := self.mapping(value, key)) is None:
            return None, None
        self.known_keys(value, KEYS["coupons.pools.NAME.valid"], key)
        if not ({"days", "until"} & set(value)):
            self.problem(
                key,
                "days: 14 (from when the visitor gets the code), until: a date,"
                " or both (the earlier counts)",
            )
        days, until = value.get("days"), value.get("until")
        if days is not None and not _count(days):
            self.problem(f"{key}.days", "a whole number of days from 1")
            days = None
        end = None
        if until is not None:
            try:
                end = int(moment(until, end=True).replace(tzinfo=tz).timestamp())
            except ValueError as exc:
                self.problem(f"{key}.until", str(exc))
            if end is not None and end < now:
                self.problem(
                    f"{key}.until",
                    f"{until} has passed: the pool hands out nothing",
                    severity="warning",
                )
        return days, end
