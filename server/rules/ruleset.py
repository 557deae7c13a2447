"""Loading and validating the marketers' rules files (``rules/*.yaml``).

Rules are data, never code: each file describes one campaign, and ``site.yaml`` holds the
site-wide settings (time zone, session length, the gap between popups, interests). Every problem
is reported as ``file:line:column``, with the key and a hint where a common mistake is
recognisable. Loading is all-or-nothing: a :class:`Ruleset` is only built from a set of files
without errors, so a running server keeps its last good rules when an edit breaks them.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..audience import conditions
from ..audience.conditions import Compiler, Condition
from ..audience.geolocation import NO_GEOLOCATION
from ..coupons import pools as coupons
from ..coupons.pools import Pool, Pools
from ..profiles.rules import ProfileRules
from ..render.templates import Templates
from ..store.rollups import Goal
from ..syntax.files import Problem, RulesError
from ..syntax.matchers import FOREVER, moment, parse_duration
from . import couponfiles, folder, profilefiles
from .campaigns import KEYS, TRIGGERS, Campaign, CampaignFile
from .site import Site, load_site

# Campaign, KEYS and TRIGGERS are defined in campaigns.py; re-exported as the rules reference.
__all__ = [
    "FOREVER",
    "KEYS",
    "TRIGGERS",
    "Campaign",
    "Problem",
    "RulesError",
    "Ruleset",
    "load",
    "parse_duration",
]

log = logging.getLogger("touchpoint.rules")
SITE_FILE = "site.yaml"
CANDIDATE_PATHS = 4096  # paths whose candidates a ruleset remembers


@dataclass(frozen=True)
class Ruleset:
    """A validated set of campaigns, highest priority first, ties broken by campaign id."""

    campaigns: tuple[Campaign, ...]
    templates: Templates
    site: Site = field(default_factory=Site)
    warnings: tuple[Problem, ...] = ()
    profile: ProfileRules = field(default_factory=ProfileRules)  # scoring and lifecycle
    pools: Pools = field(default_factory=Pools)  # coupons.yaml
    by_id: dict[str, Campaign] = field(init=False)
    # The pools campaigns use that can run out (imported codes, generated up to a limit).
    finite_pools: dict[str, Pool] = field(init=False)
    goals: dict[str, Goal] = field(init=False)  # campaign id -> its goal, where it has one
    # Campaigns by the leading literal path segments of their page.path patterns: a page view
    # only evaluates the campaigns indexed under its own path's prefixes.
    index: dict[tuple[str, ...], tuple[int, ...]] = field(init=False)
    # candidates() of the paths asked for lately; bounded, since visitors choose the paths.
    _candidates: dict[str, tuple[Campaign, ...]] = field(
        init=False, default_factory=dict, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", {c.id: c for c in self.campaigns})
        used = set().union(*(c.pools for c in self.campaigns))
        finite = {name: self.pools[name] for name in sorted(used) if self.pools[name].finite}
        object.__setattr__(self, "finite_pools", finite)
        goals = {c.id: c.goal for c in self.campaigns if c.goal is not None}
        object.__setattr__(self, "goals", goals)
        index: dict[tuple[str, ...], set[int]] = {}
        for rank, campaign in enumerate(self.campaigns):
            for key in {_index_key(p) for p in campaign.paths} or {()}:
                index.setdefault(key, set()).add(rank)
        object.__setattr__(self, "index", {k: tuple(sorted(v)) for k, v in index.items()})

    def candidates(self, path: str) -> tuple[Campaign, ...]:
        """The campaigns that may match ``path``, in priority order."""
        known = self._candidates.get(path)
        if known is not None:
            return known
        parts = path.split("/")[1:]
        found: list[tuple[int, ...]] = []
        for depth in range(len(parts) + 1):
            ranks = self.index.get(tuple(parts[:depth]))
            if ranks:
                found.append(ranks)
        ranked = found[0] if len(found) == 1 else sorted(set().union(*found))
        campaigns = tuple(self.campaigns[r] for r in ranked)
        if len(self._candidates) >= CANDIDATE_PATHS:
            self._candidates.clear()
        self._candidates[path] = campaigns
        return campaigns


def _index_key(pattern: str) -> tuple[str, ...]:
    """The complete path segments before the first wildcard: /shop/shoes/*.html -> (shop, shoes)."""
    literal = re.split(r"[*?]", pattern, maxsplit=1)
    segments = pattern.split("/")[1:]
    if len(literal) == 1:  # no wildcard: the whole path
        return tuple(segments)
    return tuple(literal[0].split("/")[1:-1])


def load(
    rules_dir: Path | str, *, now: float | None = None, geolocation: bool | None = None
) -> Ruleset:
    """Load and validate ``site.yaml``, ``scoring.yaml``, ``lifecycle.yaml``, ``coupons.yaml``
    and every other ``*.yaml`` file (a campaign) in ``rules_dir``.

    Raises :class:`RulesError` listing every error; warnings end up in ``Ruleset.warnings``.
    ``geolocation=False`` (no source configured) warns at every ``country`` condition.
    """
    rules_dir = Path(rules_dir)
    if not rules_dir.is_dir():
        raise RulesError([Problem(str(rules_dir), 1, 1, "", "rules folder not found")])
    templates = Templates(rules_dir / "templates")
    problems: list[Problem] = []
    site = load_site(rules_dir / SITE_FILE, problems)
    profile = profilefiles.load(rules_dir, problems, site)
    pools, pool_problems = couponfiles.load_pools(rules_dir, timezone=site.timezone)
    problems += pool_problems
    exclude = _coupon_exclude(pools, problems, site)
    campaigns: list[Campaign] = []
    readers: dict[str, CampaignFile] = {}
    for path in folder.yaml_files(rules_dir):
        if path.name == SITE_FILE or path.stem in (*profilefiles.STEMS, coupons.STEM):
            continue
        reader = CampaignFile(path, problems, site, pools)
        campaign = reader.campaign(templates)
        if campaign is None:
            continue
        if campaign.pools:
            own = any(pools[name].codes != "static" for name in campaign.pools)
            campaign = replace(campaign, exclude=exclude, own_codes=own)
        if campaign.id in readers:
            reader.problem("campaign", f"campaign id already used in {readers[campaign.id].name}")
            continue
        readers[campaign.id] = reader
        campaigns.append(campaign)
        if geolocation is False:
            for key in reader.compiler.country_refs:
                reader.problem(key, NO_GEOLOCATION, severity="warning")
    for reader in readers.values():
        for key, ref in reader.compiler.campaign_refs:
            if ref not in readers:
                reader.problem(key, f"unknown campaign {ref!r} (no rules file has that id)")
    if any(p.severity == "error" for p in problems):
        raise RulesError(problems)
    campaigns.sort(key=lambda c: (-c.priority, c.id))
    _warn_unreachable(campaigns, readers, time.time() if now is None else now)
    return Ruleset(tuple(campaigns), templates, site, tuple(problems), profile, pools)


def _coupon_exclude(pools: Pools, problems: list[Problem], site: Site) -> Condition | None:
    """``exclude`` of coupons.yaml: who never gets a code, whichever campaign offers it."""
    if pools.exclude is None:
        return None
    compiler = Compiler(pools.reporter(problems).problem, interests=frozenset(site.interests))
    return compiler.conditions(pools.exclude, "exclude")


def _warn_unreachable(
    campaigns: list[Campaign], files: dict[str, CampaignFile], now: float
) -> None:
    """Warn about campaigns that can never show: their schedule has ended, or a higher-priority
    campaign competing for the same trigger (or slot) always wins."""
    for campaign in campaigns:
        file = files[campaign.id]
        schedule = file.data.get("schedule")
        until = schedule.get("until") if isinstance(schedule, dict) else None
        # A day's grace: the schedule is in the site's time zone.
        if until is not None and moment(until, end=True).timestamp() < now - 86400:
            file.problem("schedule.until", f"ended on {until}: never shown", severity="warning")
    # Only campaigns competing for the same trigger or slot can beat one another, and only one
    # without frequency limits or holdout beats the others always.
    dominant: dict[str, list[Campaign]] = {}
    for low in campaigns:
        what = _rivalry(low)
        rivals = dominant.setdefault(what, [])
        for high in rivals:
            if high.audience is conditions.TRUE or high.audience.text == low.audience.text:
                audience = (
                    "no audience" if high.audience is conditions.TRUE else "the same audience"
                )
                files[low.id].problem(
                    "priority",
                    f"never shown: {high.id} ({high.source}) has a higher priority, the same"
                    f" {what}, {audience} and no frequency limit",
                    severity="warning",
                )
                break
        if not low.limited and not any(v.control for v in low.variants):
            rivals.append(low)


def _rivalry(campaign: Campaign) -> str:
    """What a campaign competes for: its slot, or its popup trigger."""
    if campaign.trigger is None:
        return f"slot {campaign.slot}"
    return f"trigger {campaign.trigger.key}"


def log_warnings(ruleset: Ruleset) -> None:
    for warning in ruleset.warnings:
        log.warning("%s", warning)


def check(
    rules_dir: Path | str, *, geolocation: bool | None = None
) -> tuple[list[Problem], Ruleset | None]:
    """Every problem in ``rules_dir`` (errors, or the warnings of valid rules) and the rules."""
    try:
        ruleset = load(rules_dir, geolocation=geolocation)
    except RulesError as exc:
        return exc.problems, None
    return list(ruleset.warnings), ruleset
