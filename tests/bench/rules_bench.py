"""``make bench``, first part: what one decision costs with 20, 200 and 2,000 campaigns loaded.

A generated shop (see :func:`campaigns`) is written as rules files, loaded once with
``touchpoint.rules.load``, and ``touchpoint.targeting.decide`` is timed for one page view: a
category page that a handful of campaigns target. The same campaigns are expressed as GrowthBook
features (one per campaign, a force rule with a MongoDB-style targeting condition) and, for the
same page view, every feature is evaluated: deciding means considering every campaign. Before
timing, both must agree on which campaigns match each page view of :data:`PAGES`.

The goals come from the rules issue: at 200 campaigns a decision costs a tenth of GrowthBook's
or less, and 2,000 campaigns cost at most 1.5x what 20 cost (``Ruleset.candidates`` indexes
campaigns by the literal leading segments of their top-level page.path patterns). A missed goal
prints MISSED and a profile of the decision; the command still succeeds, figures are reported,
never asserted: absolute numbers depend on the machine.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import random
import re
import shutil
import statistics
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from touchpoint.audience.facts import Facts, PageView
from touchpoint.decide import page
from touchpoint.decide.targeting import decide
from touchpoint.rules import ruleset as rules_module
from touchpoint.store import CampaignHistory
from touchpoint.store.records import Profile, Touch

ROOT = Path(__file__).resolve().parents[2]
SIZES = (20, 200, 2000)
GOAL_VS_GROWTHBOOK = 10.0  # at 200 campaigns, GrowthBook's cost over ours
GOAL_SCALING = 1.5  # the cost of 2,000 campaigns over the cost of 20
PER_CATEGORY = 5  # campaigns per shop category
TEMPLATE = "first-order-coupon.html"  # copied with rules/templates/
REPEATS = 7
BATCH_SECONDS = float(os.environ.get("BENCH_BATCH_SECONDS", "0.1"))
NOW = 1_795_459_200  # 2026-11-23, a Monday
VISITOR = "Xy3bench-visitor-0001"
MOBILE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
TRIGGERS: list[Any] = [
    "exit_intent",
    {"scroll_percent": 50},
    {"after_seconds": 20},
    {"click": ".add-to-cart"},
    {"scroll_percent": 75},
]
# The page the table is about; the others only check that both engines agree.
REPRESENTATIVE = "category"
PAGES: dict[str, PageView] = {
    "category": PageView(
        path="/shop/cat-1/",
        title="Running shoes",
        query="?utm_source=Newsletter&utm_medium=email&utm_campaign=spring-sale",
        referrer="https://mail.google.com/",
        host="shop.example",
        context={"cart_value": 64.5, "page_type": "category"},
        user_agent=MOBILE,
        accept_language="de-AT,de;q=0.9,en;q=0.5",
    ),
    "product": PageView(
        path="/shop/cat-1/p-12",
        query="",
        referrer="https://www.google.de/",
        host="shop.example",
        context={"cart_value": 12, "page_type": "product"},
        user_agent=DESKTOP,
        accept_language="de",
    ),
    "home": PageView(path="/", host="shop.example", user_agent=DESKTOP, accept_language="en-GB"),
    "cart": PageView(
        path="/cart",
        referrer="https://shop.example/shop/cat-1/p-12",
        host="shop.example",
        context={"cart_value": 45},
        user_agent=MOBILE,
    ),
    "blog": PageView(
        path="/blog/2026/11/gift-guide",
        referrer="https://www.facebook.com/",
        host="shop.example",
        user_agent=MOBILE,
        accept_language="fr",
    ),
}
PROFILE = Profile(
    first_seen_at=NOW - 40 * 86400,
    last_seen_at=NOW - 600,
    visits=3,
    page_views=17,
    session_started_at=NOW - 600,
    session_page_views=2,
    stage="lead",
    first_touch=Touch("search", "google.de", {}),
    last_touch=Touch("email", "mail.google.com", {"source": "Newsletter", "medium": "email"}),
)
# The visitor closed one popup of the category two days ago and saw another earlier this visit.
HISTORY = {
    "cat-1-mobile-newsletter": CampaignHistory(
        impressions=2, last_seen_at=NOW - 2 * 86400, last_closed_at=NOW - 2 * 86400
    ),
    "cat-1-returning-cart": CampaignHistory(
        impressions=1, last_seen_at=NOW - 300, session_impressions=1, variant="a", version=1
    ),
}


# --- the generated shop ---------------------------------------------------------------------

# Site-wide and section-wide campaigns: a fixed few at every size. A shop that runs 2,000
# campaigns runs them per category and product line; what shows everywhere stays a handful.
FIXED: list[dict[str, Any]] = [
    {
        "campaign": "sitewide-newsletter",
        "trigger": "exit_intent",
        "priority": 1,
        "audience": {"visitor.visits": {"gte": 3}, "not": {"utm.medium": "email"}},
    },
    {
        "campaign": "sitewide-free-shipping",
        "trigger": {"after_seconds": 30},
        "audience": {"context.cart_value": {"gte": 40, "lt": 60}},
    },
    {
        "campaign": "sitewide-search-welcome",
        "trigger": {"scroll_percent": 30},
        "audience": {"referrer.channel": "search", "visitor.returning": False},
    },
    {
        "campaign": "sale-pages",
        "trigger": {"scroll_percent": 50},  # not indexable: /**
        "audience": {"page.path": "/**/sale", "device.type": ["mobile", "tablet"]},
    },
    {
        "campaign": "shop-wide-lead",
        "trigger": {"click": ".wishlist"},
        "priority": 2,
        "audience": {
            "page.path": "/shop/**",
            "visitor.stage": ["visitor", "lead"],
            "any": [{"referrer.channel": ["email", "social"]}, {"visitor.page_views": {"gte": 10}}],
        },
    },
    {
        "campaign": "cart-rescue",
        "trigger": "exit_intent",
        "priority": 30,
        "audience": {"page.path": "/cart", "context.cart_value": {"gt": 30}},
    },
    {
        "campaign": "blog-subscribe",
        "trigger": {"scroll_percent": 75},
        "audience": {"page.path": "/blog/**", "not": {"referrer.channel": "email"}},
    },
]


def category_campaigns(k: int) -> list[dict[str, Any]]:
    """The PER_CATEGORY campaigns of category ``k``: the same at every size (seeded by k)."""
    rng = random.Random(k)
    section = f"/shop/cat-{k}"
    source = rng.choice(["newsletter", "google", "facebook"])
    shapes = [
        (
            "mobile-newsletter",
            {
                "page.path": f"{section}/*",
                "device.type": "mobile",
                "utm.source": source if k != 1 else "newsletter",
            },
        ),
        (
            "returning-cart",
            {
                "page.path": f"{section}/*",
                "visitor.visits": {"gte": 2},
                "context.cart_value": {"gt": rng.choice([30, 50, 80])},
            },
        ),
        (
            "search-arrivals",
            {
                "page.path": [f"{section}/", f"{section}/p-*"],
                "referrer.channel": "search",
                "not": {"device.type": ["bot", "tablet"]},
            },
        ),
        (
            "first-visit",
            {
                "page.path": f"{section}/**",
                "any": [
                    {"visitor.returning": False},
                    {"context.cart_value": {"lt": 20}},
                    {"utm.campaign": "spring-*"},
                ],
            },
        ),
        (
            "product-language",
            {
                "page.path": f"{section}/p-*",
                "language": rng.choice(["de", "en"]),
                "visitor.visits": {"lte": 5},
            },
        ),
    ]
    out = []
    for i, (name, audience) in enumerate(shapes):
        campaign: dict[str, Any] = {
            "campaign": f"cat-{k}-{name}",
            "trigger": TRIGGERS[(k + i) % len(TRIGGERS)],
            "priority": rng.randrange(0, 20),
            "audience": audience,
        }
        if name == "returning-cart":
            campaign["variants"] = [
                {"id": "a", "weight": 1, "template": TEMPLATE},
                {"id": "b", "weight": 1, "template": TEMPLATE},
                {"id": "holdout", "weight": 1, "control": True},
            ]
        out.append(campaign)
    return out


def campaigns(n: int) -> list[dict[str, Any]]:
    """``n`` campaigns: the FIXED few, then PER_CATEGORY per category of the shop."""
    out = list(FIXED)
    k = 0
    while len(out) < n:
        out.extend(category_campaigns(k)[: n - len(out)])
        k += 1
    return out


def write_rules(folder: Path, n: int) -> Path:
    """A rules folder of ``n`` generated campaigns (with the example template) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "rules" / "templates", folder / "templates", dirs_exist_ok=True)
    for spec in campaigns(n):
        data = {
            "campaign": spec["campaign"],
            "kind": "popup",
            "trigger": spec["trigger"],
            "audience": spec["audience"],
            "frequency": {"after_close": "7d", "after_convert": "never", "max_per_session": 1},
            "priority": spec.get("priority", 0),
            "variants": spec.get("variants") or [{"id": "main", "weight": 1, "template": TEMPLATE}],
        }
        text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None)
        (folder / f"{spec['campaign']}.yaml").write_text(text)
    return folder


# --- the same campaigns for GrowthBook ------------------------------------------------------


def glob_regex(pattern: str) -> str:
    """A page.path glob as a regex, written here independently of touchpoint.conditions so
    that the agreement check also tests touchpoint's own translation."""
    parts = re.split(r"(\*\*|\*|\?)", pattern)
    wild = {"**": ".*", "*": "[^/]*", "?": "[^/]"}
    return "".join(wild.get(p, re.escape(p)) for p in parts)


# A channel group in a rules file matches its channels and itself (docs/rules.md#channels).
CHANNEL_GROUPS = {
    "search": ["search", "organic_search", "paid_search"],
    "social": ["social", "organic_social", "paid_social"],
}


def mongo(audience: dict[str, Any]) -> dict[str, Any]:
    """A touchpoint audience (the subset the generator uses) as a GrowthBook condition."""
    out: dict[str, Any] = {}
    for name, value in audience.items():
        if name == "any":
            out["$or"] = [mongo(item) for item in value]
        elif name == "not":
            out["$not"] = mongo(value)
        elif name == "page.path":
            globs = value if isinstance(value, list) else [value]
            out[name] = {"$regex": "^(?:" + "|".join(map(glob_regex, globs)) + ")$"}
        elif name == "referrer.channel":
            channels = value if isinstance(value, list) else [value]
            out[name] = {"$in": [c for v in channels for c in CHANNEL_GROUPS.get(v, [v])]}
        elif name == "language":  # a tag matches itself and its regional variants
            out[name] = {"$regex": f"^{re.escape(value)}(?:-|$)"}
        elif name.startswith("utm."):  # text: case-insensitive, * is a wildcard
            if "*" in value:
                out[name] = {"$regexi": "^" + re.escape(value).replace(r"\*", ".*") + "$"}
            else:
                out[name] = {"$ini": [value]}
        elif isinstance(value, dict):  # numbers: {gte: 2} -> {$gte: 2}
            out[name] = {f"${op}": bound for op, bound in value.items()}
        elif isinstance(value, list):
            out[name] = {"$in": value}
        else:
            out[name] = value
    return out


def growthbook_features(specs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        spec["campaign"]: {
            "defaultValue": False,
            "rules": [{"condition": mongo(spec.get("audience", {})), "force": True}],
        }
        for spec in specs
    }


def attributes(facts: Facts) -> dict[str, Any]:
    """What an application hands GrowthBook for this page view, derived from the same facts."""
    profile = facts.profile
    return {
        "page": {"path": facts.path},
        "device": {"type": facts.device.type},
        "utm": dict(facts.touch.utm),
        "referrer": {"channel": facts.touch.channel, "host": facts.referrer_host},
        "language": facts.languages[0] if facts.languages else None,
        "visitor": {
            "visits": profile.visits,
            "page_views": profile.page_views,
            "returning": profile.returning,
            "stage": profile.stage,
        }
        if profile
        else {},
        "context": dict(facts.context),
    }


# --- measuring ------------------------------------------------------------------------------


def facts_for(view: PageView, ruleset: rules_module.Ruleset) -> Facts:
    """As the decide route builds them (decide.page.facts_for), for a visitor who consented to
    everything."""
    return page.facts_for(ruleset, view, now=NOW, profile=PROFILE, history=HISTORY)


def per_call_us(calls: dict[Any, Callable[[], object]]) -> dict[Any, float]:
    """Microseconds per call of each of ``calls``: the median over REPEATS batches of about
    BATCH_SECONDS each, the batches of all calls taking turns.

    Taking turns spreads a change in the machine's load over every figure alike, so ratios
    hold even when absolute numbers drift. The median rather than timeit's customary minimum:
    other work shares this machine (as it shares a server), and the median of batch means is
    what a decision typically costs there while staying steady from run to run. Garbage
    collection stays on, as in the server.
    """
    timers = {
        key: timeit.Timer(call, setup="import gc; gc.enable()") for key, call in calls.items()
    }
    numbers = {}
    for key, timer in timers.items():
        number, seconds = timer.autorange()
        numbers[key] = max(1, round(number * BATCH_SECONDS / seconds))
    samples: dict[Any, list[float]] = {key: [] for key in calls}
    for _ in range(REPEATS):
        for key, timer in timers.items():
            samples[key].append(timer.timeit(numbers[key]) / numbers[key] * 1e6)
    return {key: statistics.median(values) for key, values in samples.items()}


def check_agreement(ruleset: rules_module.Ruleset, gb: Any, n: int) -> dict[str, int]:
    """Both engines find the same matching campaigns on every page (priority, frequency and
    variants aside); the index never drops a match. Returns matches per page."""
    matches = {}
    for name, view in PAGES.items():
        facts = facts_for(view, ruleset)
        ours = {c.id for c in ruleset.campaigns if c.audience.test(facts)}
        indexed = {c.id for c in ruleset.candidates(view.path) if c.audience.test(facts)}
        gb.set_attributes(attributes(facts))
        theirs = {key for key in gb.get_features() if gb.eval_feature(key).on}
        assert ours == theirs, (n, name, sorted(ours ^ theirs))
        assert indexed == ours, (n, name, sorted(ours - indexed))
        outcome = decide(ruleset, facts, visitor_id=VISITOR, roll=0.5)
        assert {d.campaign.id for d in outcome.popups} <= ours
        matches[name] = len(ours)
    return matches


def prepare(n: int, work: Path) -> dict[str, Any]:
    """Load ``n`` campaigns both ways, check that they agree, and return what to time."""
    from growthbook import GrowthBook

    specs = campaigns(n)
    folder = write_rules(work / f"rules-{n}", n)
    started = time.perf_counter()
    ruleset = rules_module.load(folder, now=NOW)
    load_s = time.perf_counter() - started
    assert len(ruleset.campaigns) == n
    gb = GrowthBook(features=growthbook_features(specs))
    matches = check_agreement(ruleset, gb, n)

    view = PAGES[REPRESENTATIVE]
    tz, idle = ruleset.site.timezone, ruleset.site.session_idle

    def ours() -> object:
        # A fresh Facts per decision, as per request in the server: the query, the channel
        # and the device are derived again each time (the parsed user agent stays cached).
        facts = Facts(view, now=NOW, tz=tz, profile=PROFILE, history=HISTORY, session_idle=idle)
        return decide(ruleset, facts, visitor_id=VISITOR, roll=0.5)

    facts = facts_for(view, ruleset)
    tests = [c.audience.test for c in ruleset.campaigns]

    def every_audience() -> object:
        # No index: every compiled audience is tested (the facts' derived values cached).
        return [test(facts) for test in tests]

    # GrowthBook gets its attributes ready-made: deriving them is not counted against it.
    attrs = attributes(facts)
    keys = list(gb.get_features())

    def theirs() -> object:
        gb.set_attributes(attrs)
        return [gb.eval_feature(key).on for key in keys]

    return {
        "load_s": load_s,
        "candidates": len(ruleset.candidates(view.path)),
        "matches": matches[REPRESENTATIVE],
        "calls": {"touchpoint": ours, "no_index": every_audience, "growthbook": theirs},
    }


def profile(call: Callable[[], object], title: str) -> None:
    """Where a decision's time goes: the top functions by their own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(1000):
        call()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(12)
    print(f"\nprofile of 1,000 decisions with {title}, by own time:")
    print("\n".join(line for line in out.getvalue().splitlines()[4:] if line.strip()))


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="touchpoint-rules-bench-"))
    try:
        rows = {n: prepare(n, work) for n in SIZES}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    timed = per_call_us(
        {(n, name): call for n, row in rows.items() for name, call in row["calls"].items()}
    )
    view = PAGES[REPRESENTATIVE]
    print(
        f"rules engine: one decision on {view.path}, a category page; matching campaigns"
        f" agree with GrowthBook's on {len(PAGES)} pages at every size"
    )
    print(
        f"{'campaigns':>9} {'load s':>6} {'cands':>5} {'match':>5} {'touchpoint µs':>13} "
        f"{'no-index µs':>11} {'growthbook µs':>13} {'gb/tp':>7}"
    )
    for n, row in rows.items():
        ours, theirs = timed[n, "touchpoint"], timed[n, "growthbook"]
        print(
            f"{n:>9} {row['load_s']:>6.2f} {row['candidates']:>5} {row['matches']:>5} "
            f"{ours:>13.1f} {timed[n, 'no_index']:>11.1f} {theirs:>13.1f} {theirs / ours:>7.1f}"
        )
    print(
        "  cands: campaigns the index leaves to test on this page; match: those whose audience"
        " holds\n  touchpoint: decide() with a fresh Facts, as per request; no-index: every"
        " compiled audience\n  tested once; growthbook: set_attributes and eval_feature for"
        " every campaign's feature"
    )
    if any(n > re._MAXCACHE for n in SIZES):
        print(
            f"  GrowthBook compiles each $regex through the re module's cache of"
            f" {re._MAXCACHE} patterns:\n  beyond that many campaigns with a page.path"
            " it compiles them again on every evaluation"
        )
    speedup = timed[200, "growthbook"] / timed[200, "touchpoint"]
    scaling = timed[2000, "touchpoint"] / timed[20, "touchpoint"]
    goals = [
        (
            f"at least {GOAL_VS_GROWTHBOOK:g}x",
            speedup >= GOAL_VS_GROWTHBOOK,
            f"GrowthBook / touchpoint at 200 campaigns = {speedup:.1f}x",
        ),
        (
            f"at most {GOAL_SCALING:g}x",
            scaling <= GOAL_SCALING,
            f"touchpoint 2000 / 20 campaigns = {scaling:.2f}x",
        ),
    ]
    for goal, met, text in goals:
        print(f"goal {goal:<13} {text:<46} {'met' if met else 'MISSED'}")
    if speedup < GOAL_VS_GROWTHBOOK:
        profile(rows[200]["calls"]["touchpoint"], "200 campaigns")
    if scaling > GOAL_SCALING:
        profile(rows[20]["calls"]["touchpoint"], "20 campaigns")
        profile(rows[2000]["calls"]["touchpoint"], "2000 campaigns")


if __name__ == "__main__":
    main()
