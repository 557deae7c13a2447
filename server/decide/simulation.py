"""``touchpoint simulate``: what a visitor would get on a page, and why every other campaign
lost (docs/rules.md). The visitor is anonymous, one from the database (``--visitor``) or a
what-if profile (``--profile``); the decision is explained by
:func:`touchpoint.decide.page.decide_page` (``explain=True``).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any
from urllib.parse import urlsplit

from .. import store
from ..audience import geolocation
from ..audience.facts import Facts, PageView
from ..audience.geolocation import Geolocation
from ..consent import categories as consent
from ..coupons.stock import Stock
from ..errors import ConfigError, RequestError
from ..profiles import lifecycle
from ..rules import ruleset as rules_module
from ..settings import Settings
from ..store.records import Profile
from ..syntax import times
from . import page


def _json_arg(text: str, what: str) -> Any:
    try:
        if text.startswith("@"):
            with open(text[1:], encoding="utf-8") as file:
                return json.load(file)
        return json.loads(text)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{what}: {exc}") from None


_PROFILE_TYPES: dict[str, tuple[type, ...]] = {
    **dict.fromkeys(
        (
            "first_seen_at",
            "last_seen_at",
            "visits",
            "page_views",
            "session_started_at",
            "session_page_views",
            "score_at",
            "purchases",
            "last_purchase_at",
            "stage_since",
        ),
        (int,),
    ),
    "score": (int, float),
    "identified": (bool,),
    **dict.fromkeys(("stage", "last_category", "last_product", "first_name"), (str,)),
    **dict.fromkeys(
        ("attributes", "interests", "first_touch", "last_touch", "campaigns", "scoring"), (dict,)
    ),
}


def what_if(data: Any) -> tuple[Profile, dict[str, store.CampaignHistory]]:
    """A profile and campaign history from ``--profile`` JSON."""
    if not isinstance(data, dict):
        raise ConfigError("--profile must be a JSON object")
    data = dict(data)
    for name, value in data.items():
        expected = _PROFILE_TYPES.get(name)
        if (
            expected
            and value is not None
            and not (
                isinstance(value, expected)
                and not (isinstance(value, bool) and bool not in expected)
            )
        ):
            names = " or ".join(t.__name__ for t in expected)
            raise ConfigError(f"--profile: {name} must be {names}, got {value!r}")
    try:
        history = {
            cid: store.CampaignHistory(**h) for cid, h in (data.pop("campaigns", {}) or {}).items()
        }
        extra = Profile.data_fields(data)
        plain = {k: v for k, v in data.items() if k not in extra}
        return Profile(**plain, **{k: v for k, v in extra.items() if k in data}), history
    except TypeError as exc:
        raise ConfigError(f"--profile: {exc}") from None


def simulate(
    ruleset: rules_module.Ruleset,
    url: str,
    *,
    now: int,
    referrer: str = "",
    context: Any = None,
    slots: tuple[str, ...] = (),
    user_agent: str = "",
    language: str = "",
    ip: str = "",
    source: Geolocation | None = None,
    profile: Profile | None = None,
    history: dict[str, store.CampaignHistory] | None = None,
    visitor_id: str | None = None,
    trigger: str | None = None,
    empty_pools: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The decision for one page view with, for every campaign, why it lost: the JSON of
    ``touchpoint simulate --json`` but for ``visitor`` (the CLI and the console add who asked).
    Raises :class:`ConfigError` for a bad context or a what-if value of the wrong type."""
    parts = urlsplit(url)
    try:
        view = PageView(
            path=parts.path or "/",
            query=parts.query,
            referrer=referrer,
            host=parts.netloc,
            context=page.parse_context({} if context is None else context),
            user_agent=user_agent,
            accept_language=language,
            address=ip,
        )
    except RequestError as exc:
        raise ConfigError(f"--context: {exc}") from None
    facts = page.facts_for(
        ruleset, view, now=now, profile=profile, history=history, geolocation=source
    )
    facts.empty_pools = empty_pools
    try:
        decision = page.decide_page(
            ruleset, facts, slots=slots, visitor_id=visitor_id, explain=True, fired=trigger
        )
        result = decision.explained or {}
    except (TypeError, AttributeError) as exc:  # a --profile value of the wrong type
        raise ConfigError(f"--profile: a value has the wrong type ({exc})") from None
    result["country"] = facts.country
    result["at"] = times.iso(now, tz=ruleset.site.timezone)
    result["profile"] = _profile_reading(facts)
    return result


def command(settings: Settings, args: argparse.Namespace) -> int:
    """Print the decision for one page view and, for every campaign, why it lost."""
    ruleset = rules_module.load(settings.rules_dir)
    record = None
    profile, history, visitor_id = None, None, args.visitor
    if args.visitor:
        if not store.exists(settings.database_url):
            raise store.no_database(settings.database_url)
        reader = store.Reader(settings.database_url)
        try:
            record = reader.visitor(args.visitor)
        finally:
            reader.close()
        if record is None:
            place = store.locate(settings.database_url)
            raise ConfigError(f"no visitor {args.visitor!r} in {place}")
        profile, history = consent.usable(record, settings.consent_revision)
        visitor_id = args.visitor if history is not None else None
    elif args.profile:
        profile, history = what_if(_json_arg(args.profile, "--profile"))
        visitor_id = "what-if"
    now = int(time.time()) if args.at is None else at_time(args.at, ruleset)
    result = simulate(
        ruleset,
        args.url,
        now=now,
        referrer=args.referrer,
        context=_json_arg(args.context, "--context"),
        slots=tuple(args.slot),
        user_agent=args.user_agent,
        language=args.language,
        ip=args.ip or "",
        source=geolocation.what_if(settings.geoip_database, country=args.country, address=args.ip),
        profile=profile,
        history=history,
        visitor_id=visitor_id,
        trigger=args.trigger,
        empty_pools=_empty_pools(settings, ruleset),
    )
    result["visitor"] = {
        "id": args.visitor,
        "what_if": bool(args.profile),
        "profile_used": profile is not None,
        "history_used": history is not None,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    who = (
        f"visitor {args.visitor}"
        if args.visitor
        else ("a what-if visitor" if args.profile else "an anonymous visitor")
    )
    where = f" in {result['country']}" if result["country"] else ""
    print(f"{args.url} for {who}{where} at {result['at']}:")
    if reading := result["profile"]:
        since = reading["days_since_last_visit"]
        last = "never" if since is None else f"{since} day(s) ago"
        print(
            f"  score {reading['score']:g}, stage {reading['stage']}, {reading['visits']} visit(s),"
            f" last visit {last}"
        )
    for popup in result["popups"]:
        print(f"  popup {popup['campaign']} ({popup['variant']}) on {popup['trigger']}")
    for slot, cid in result["slots"].items():
        print(f"  slot {slot}: {cid}")
    if not result["popups"] and not result["slots"]:
        print("  nothing")
    if result["fired"]:
        shows = result["fired"]["shows"] or "nothing"
        print(f"  when {args.trigger} fires: {shows}")
    for row in result["campaigns"]:
        verdict = "chosen" if row["chosen"] else f"not chosen: {row['reason']}"
        print(f"  {row['campaign']:<32} {verdict}")
    return 0


def at_time(text: str, ruleset: rules_module.Ruleset) -> int:
    """``--at``: a date or time in the site's time zone, one with an offset, or Unix seconds."""
    try:
        return times.instant(text, tz=ruleset.site.timezone)
    except ValueError as exc:
        raise ConfigError(f"--at: {exc}") from None


def _profile_reading(facts: Facts) -> dict[str, Any] | None:
    """The profile as the decision read it at ``facts.now``: the decayed score and the stage the
    lifecycle rules give (``Facts.score_and_stage``, the live site's reading), the visits and the
    whole days since the last one. None without a usable profile."""
    if not facts.known:
        return None
    return {
        "score": round(facts.score, 2),
        "stage": facts.stage,
        "visits": facts.profile.visits,
        "days_since_last_visit": lifecycle.days_since(facts.profile.last_seen_at, facts.now),
    }


def _empty_pools(settings: Settings, ruleset: rules_module.Ruleset) -> frozenset[str]:
    """The coupon pools without a free code (all that can run out, before any import)."""
    if not ruleset.finite_pools or not store.exists(settings.database_url):
        return frozenset(ruleset.finite_pools)
    reader = store.Reader(settings.database_url)
    try:
        return Stock(ttl=0).empty(ruleset.finite_pools, reader)
    finally:
        reader.close()
