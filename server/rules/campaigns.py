"""Campaign files (``rules/*.yaml`` other than the site, profile and coupon files): the keys
they may use, and how one file becomes a :class:`Campaign` with its trigger, frequency limits and
variants. Every problem is reported as ``file:line:column`` with the key and a hint.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..audience import conditions, fields
from ..audience.conditions import Compiler, Condition
from ..consent import banner
from ..coupons import pools as coupons
from ..render.templates import TemplateProblem, Templates
from ..store.rollups import GOAL_EVENTS, Goal
from ..syntax.files import Problem, YamlFile
from ..syntax.matchers import FOREVER, compile_globs
from . import site as siteconfig
from .site import Site, duration

CAMPAIGN_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
KINDS = ("popup", "content")
STYLES = ("modal", "slide-in", "bar-top", "bar-bottom", "fullscreen")
# Trigger name -> what its value is. The snippet runs them; docs/rules.md describes each.
TRIGGERS = {
    "load": "none",
    "after_seconds": "seconds",
    "after_seconds_on_site": "seconds",
    "scroll_percent": "percent",
    "inactivity_seconds": "seconds",
    "exit_intent": "options",
    "nth_page_view": "count",
    "click": "selector",
    "event": "name",
}
# The exit-intent signals a campaign can switch off one by one (docs/exit-intent.md): the pointer
# leaving through the top edge, a fast scroll back up on touch screens, a return to the tab.
EXIT_INTENT_SIGNALS = ("desktop", "mobile", "tab_return")
# Every key a rules file may use, by where it sits ("" is the top level). docs/rules.md
# documents each one (and every condition field in fields.FIELDS); a test keeps them in step.
KEYS: dict[str, tuple[str, ...]] = {
    "": (
        "campaign",
        "kind",
        "style",
        "slot",
        "trigger",
        "audience",
        "schedule",
        "frequency",
        "priority",
        "version",
        "goal",
        "variants",
    ),
    "trigger": tuple(TRIGGERS),
    "trigger.exit_intent": ("min_seconds", *EXIT_INTENT_SIGNALS),
    "frequency": ("after_close", "after_convert", "max_impressions", "max_per_session"),
    "goal": ("event", "name", "path", "within"),
    "variants": ("id", "weight", "template", "control", "coupon"),
    "variants.coupon": ("pool",),
    "site": siteconfig.KEYS,
    "site.popups": siteconfig.POPUP_KEYS,
    "site.consent": banner.KEYS,
    "site.consent.texts.LANG": banner.TEXT_KEYS,
    "site.webhooks.NAME": siteconfig.WEBHOOK_KEYS,
}
# scoring.yaml and lifecycle.yaml: profilefiles.KEYS, documented in docs/profiles.md.


@dataclass(frozen=True)
class Trigger:
    name: str  # one of TRIGGERS
    value: Any  # seconds, percent, count, selector, event name, exit-intent ((option, value),)
    key: str  # popups with the same key compete: only the highest-priority one is armed

    def client(self, *, session_seconds: int | None = None) -> dict[str, Any]:
        """The trigger as the snippet runs it; ``session_seconds`` is the visit's age so far."""
        name, value = self.name, self.value
        if name == "after_seconds":
            return {"on": "seconds", "seconds": value}
        if name == "after_seconds_on_site":
            return {"on": "seconds", "seconds": max(0, value - (session_seconds or 0))}
        if name == "scroll_percent":
            return {"on": "scroll", "percent": value}
        if name == "inactivity_seconds":
            return {"on": "inactivity", "seconds": value}
        if name == "exit_intent":
            return {"on": "exit_intent", **dict(value)}
        if name == "click":
            return {"on": "click", "selector": value}
        if name == "event":
            return {"on": "event", "name": value}
        return {"on": "load"}  # load, nth_page_view


@dataclass(frozen=True)
class Variant:
    id: str
    weight: int
    template: str | None  # None for a control (holdout) variant
    control: bool = False
    coupon: str | None = None  # the pool (rules/coupons.yaml) its code is revealed from


@dataclass(frozen=True)
class Campaign:
    id: str
    kind: str  # popup or content
    style: str  # popups: one of STYLES
    slot: str | None  # content: the slot it fills
    trigger: Trigger | None  # popups only
    audience: Condition
    paths: tuple[str, ...]  # top-level page.path patterns, for the index; () = any page
    after_close: int | None  # seconds; FOREVER suppresses for good; 0 never suppresses
    after_convert: int | None
    max_impressions: int | None
    max_per_session: int | None
    priority: int
    version: int
    variants: tuple[Variant, ...]
    source: str  # "file:line", for explanations
    needs: frozenset[str] = frozenset()  # consent categories its conditions read (explanations)
    # Coupon campaigns: coupons.yaml's `exclude` (who never gets a code), the pools they use.
    exclude: Condition | None = None
    pools: frozenset[str] = frozenset()
    own_codes: bool = False  # a pool that gives each visitor a code: needs a visitor id
    goal: Goal | None = None  # what converts its visitors (docs/reports.md#attribution)

    @property
    def variant_ids(self) -> frozenset[str]:
        return frozenset(v.id for v in self.variants)

    @property
    def limited(self) -> bool:
        """Whether frequency rules can ever stop it for a visitor."""
        return bool(
            self.after_close != 0
            or self.after_convert != 0
            or self.max_impressions
            or self.max_per_session
        )


def _seconds(value: Any, *, upto: int = 86400) -> bool:
    """A usable number: not a boolean, not negative, not infinite or NaN, at most ``upto``."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 <= value <= upto
    )


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


class CampaignFile(YamlFile):
    """Validates one campaign file."""

    EMPTY = (
        "the file is empty (or only comments): a campaign needs at least campaign: and"
        " variants:; delete the file to remove the campaign"
    )

    def __init__(
        self, path: Path, problems: list[Problem], site: Site, pools: Mapping[str, Any]
    ) -> None:
        super().__init__(path, problems)
        self.pools = pools
        self.compiler = Compiler(self.problem, interests=frozenset(site.interests))
        self.data: dict[str, Any] = {}

    def campaign(self, templates: Templates) -> Campaign | None:
        unread = len(self.problems)
        data = self.load()
        if not isinstance(data, dict):
            if len(self.problems) == unread:  # not reported yet: a list, a scalar, null
                self.problem("", "a rules file must be a YAML mapping")
            return None
        self.data = data
        before = len(self.problems)
        self.known_keys(data, KEYS[""], "")
        cid = data.get("campaign")
        if not isinstance(cid, str) or not CAMPAIGN_ID.match(cid):
            self.problem("campaign", "required: an id of lowercase letters, digits, - and _")
        kind = data.get("kind", "popup")
        if kind not in KINDS:
            self.problem("kind", f"must be one of {', '.join(KINDS)}")
        style, slot, trigger = "modal", None, None
        if kind == "content":
            slot = data.get("slot")
            if not isinstance(slot, str) or not CAMPAIGN_ID.match(slot):
                self.problem(
                    "slot", 'required for content: the slot name, as in data-tp-slot="hero"'
                )
            for key in ("trigger", "style"):
                if key in data:
                    self.problem(key, "content fills its slot when the page loads: no " + key)
        else:
            style = data.get("style", "modal")
            if style not in STYLES:
                self.problem("style", f"must be one of {', '.join(STYLES)}")
            if "slot" in data:
                self.problem("slot", "only content campaigns fill a slot")
            trigger = self._trigger(data.get("trigger"))
        parts: list[Condition | None] = []
        if "audience" in data:
            parts.append(self.compiler.conditions(data["audience"], "audience"))
        if "schedule" in data:
            parts.append(self.compiler.conditions({"schedule": data["schedule"]}, ""))
        if trigger and trigger.name == "nth_page_view":
            parts.append(
                self.compiler.conditions({"visitor.session_page_views": trigger.value}, "trigger")
            )
        compiled = [p for p in parts if p is not None]
        audience = conditions.TRUE
        if compiled:
            audience = compiled[0] if len(compiled) == 1 else conditions.combine_all(compiled)
        freq = self._frequency(data.get("frequency", {}), kind)
        priority = data.get("priority", 0)
        if not isinstance(priority, int) or isinstance(priority, bool):
            self.problem("priority", "must be a whole number (higher wins)")
        version = data.get("version", 1)
        if not _count(version):
            self.problem("version", "a whole number from 1; raise it to re-bucket all visitors")
        variants = self._variants(data.get("variants"), templates)
        goal = self._goal(data["goal"]) if "goal" in data else None
        if len(self.problems) > before:
            return None
        needs = set(audience.needs)
        if trigger and trigger.name in ("after_seconds_on_site", "nth_page_view"):
            needs.add("personalisation")
        return Campaign(
            id=str(cid),
            kind=kind,
            style=style,
            slot=slot,
            trigger=trigger,
            audience=audience,
            paths=self._index_paths(data.get("audience")),
            after_close=freq[0],
            after_convert=freq[1],
            max_impressions=freq[2],
            max_per_session=freq[3],
            priority=priority,
            version=version,
            variants=variants,
            source=self.position(),
            needs=frozenset(needs),
            pools=frozenset(v.coupon for v in variants if v.coupon),
            goal=goal,
        )

    def _index_paths(self, audience: Any) -> tuple[str, ...]:
        """The page.path patterns every matching page must match (top level of the audience)."""
        if not isinstance(audience, dict):
            return ()
        for name, value in conditions.flatten(audience):
            if name == "page.path" and isinstance(value, (str, list)):
                return tuple(value) if isinstance(value, list) else (value,)
        return ()

    def _trigger(self, value: Any) -> Trigger | None:
        names = ", ".join(TRIGGERS)
        if value is None:
            self.problem("trigger", f"required for popups: one of {names}")
            return None
        if isinstance(value, str) and value in ("load", "exit_intent"):
            value = {value: None}
        if not isinstance(value, dict) or len(value) != 1:
            self.problem("trigger", f"exactly one of {names}, e.g. {{scroll_percent: 50}}")
            return None
        self.known_keys(value, tuple(TRIGGERS), "trigger")
        name, arg = next(iter(value.items()))
        key = f"trigger.{name}"
        kind = TRIGGERS.get(name)
        if kind is None:
            return None
        if kind == "none":
            return Trigger(name, None, "load")
        if kind == "seconds" and not _seconds(arg):
            self.problem(key, "a number of seconds from 0 to 86400, e.g. 20")
        elif kind == "percent" and not _seconds(arg, upto=100):
            self.problem(key, "a percentage of the page's height, from 0 to 100")
        elif kind == "count" and not _count(arg):
            self.problem(key, "which page view of the visit, from 1")
        elif kind == "selector" and not (
            isinstance(arg, str) and 0 < len(arg) <= 256 and "{" not in arg and "<" not in arg
        ):
            self.problem(key, "a CSS selector like '.add-to-cart' or '#chat'")
        elif kind == "name" and not (isinstance(arg, str) and fields.NAME.match(arg)):
            self.problem(key, "the event name the page sends with touchpoint('track', name)")
        elif kind == "options":
            options = self.mapping({} if arg is None else arg, key) or {}
            self.known_keys(options, KEYS["trigger.exit_intent"], key)
            arg = self._exit_intent(options, key)
        competes = {"click": f"click {arg}", "event": f"event {arg}"}.get(name)
        if name == "exit_intent" and not all(dict(arg)[s] for s in EXIT_INTENT_SIGNALS):
            # Exit intent on phones only does not compete with exit intent on desktops only.
            on = [s for s in EXIT_INTENT_SIGNALS if dict(arg)[s]]
            competes = f"exit_intent ({', '.join(on)})"
        on = Trigger(name, arg, "").client()["on"]
        return Trigger(name, arg, competes or on)

    def _exit_intent(self, options: dict[str, Any], key: str) -> tuple[tuple[str, Any], ...]:
        """The options as the snippet gets them: min_seconds and each signal, on by default."""
        seconds = options.get("min_seconds", 1)
        if not _seconds(seconds):
            self.problem(f"{key}.min_seconds", "a number of seconds, e.g. 3")
        out: list[tuple[str, Any]] = [("min_seconds", seconds)]
        for signal in EXIT_INTENT_SIGNALS:
            on = options.get(signal, True)
            if not isinstance(on, bool):
                self.problem(f"{key}.{signal}", "true or false (switches this signal on or off)")
            out.append((signal, on is True))
        if not any(on for _, on in out[1:]):
            self.problem(key, "every signal is switched off: the popup could never show")
        return tuple(out)

    def _goal(self, value: Any) -> Goal | None:
        goal = self.mapping(value, "goal")
        if goal is None:
            return None
        self.known_keys(goal, KEYS["goal"], "goal")
        event, name, path = goal.get("event"), goal.get("name"), goal.get("path")
        if event not in GOAL_EVENTS:
            self.problem("goal.event", f"required: one of {', '.join(GOAL_EVENTS)}")
        if name is not None and (not isinstance(name, str) or not name):
            self.problem("goal.name", "the event's name, as the page sends it")
        elif name is not None and event not in ("form_submit", "custom", "click"):
            self.problem("goal.name", "only form_submit, custom and click events have a name")
        paths = [path] if isinstance(path, str) else path
        if path is not None and (
            not isinstance(paths, list)
            or not all(isinstance(p, str) and p[:1] == "/" for p in paths)
        ):
            self.problem("goal.path", "a path pattern or a list of them, like /checkout/done*")
            paths = None
        within = duration(self, goal, "within", "7d", at="goal.within")
        if within == 0 or within == FOREVER:
            self.problem("goal.within", "a window like 7d after the exposure: not 0 or never")
        return Goal(
            str(event),
            name,
            compile_globs(paths, segments=True) if paths else None,
            within or 0,
        )

    def _frequency(self, value: Any, kind: str) -> tuple[Any, Any, Any, Any]:
        frequency = self.mapping(value, "frequency") or {}
        self.known_keys(frequency, KEYS["frequency"], "frequency")
        defaults = ("1d", "never") if kind == "popup" else (0, 0)
        out: list[Any] = []
        for key, default in zip(("after_close", "after_convert"), defaults, strict=True):
            out.append(duration(self, frequency, key, default, at=f"frequency.{key}"))
        for key in ("max_impressions", "max_per_session"):
            cap = frequency.get(key)
            if cap is not None and not _count(cap):
                self.problem(f"frequency.{key}", "a whole number from 1")
            out.append(cap)
        return out[0], out[1], out[2], out[3]

    def _variants(self, value: Any, templates: Templates) -> tuple[Variant, ...]:
        if not isinstance(value, list) or not value:
            self.problem("variants", "required: a list of variants, each with id and template")
            return ()
        variants = []
        for i, item in enumerate(value):
            key = f"variants.{i}"
            if (item := self.mapping(item, key)) is None:
                continue
            self.known_keys(item, KEYS["variants"], key)
            vid, weight = item.get("id"), item.get("weight", 1)
            template, control = item.get("template"), item.get("control", False)
            if not isinstance(vid, str) or not CAMPAIGN_ID.match(vid):
                self.problem(f"{key}.id", "required: lowercase letters, digits, - and _")
            if not isinstance(weight, int) or isinstance(weight, bool) or weight < 0:
                self.problem(f"{key}.weight", "must be a whole number of 0 or more")
            if not isinstance(control, bool):
                self.problem(f"{key}.control", "true for a holdout group that sees nothing")
            if control:
                if template is not None:
                    self.problem(f"{key}.template", "a control variant shows nothing: no template")
                template = None
            elif not isinstance(template, str):
                self.problem(f"{key}.template", "required: a file name in rules/templates/")
                continue
            else:
                for problem in templates.check(template):
                    self._template_problem(f"{key}.template", problem)
            weight = weight if isinstance(weight, int) else 0
            pool = self._coupon(item.get("coupon"), key, control=control is True)
            variants.append(Variant(str(vid), weight, template, control is True, pool))
        ids = [v.id for v in variants]
        if len(set(ids)) != len(ids):
            self.problem("variants", "variant ids must be unique within the campaign")
        if variants and sum(v.weight for v in variants if not v.control) == 0:
            self.problem("variants", "at least one variant that shows something needs a weight")
        return tuple(variants)

    def _coupon(self, value: Any, key: str, *, control: bool) -> str | None:
        """The pool a variant reveals a code from: ``coupon: {pool: welcome}``."""
        if value is None:
            return None
        key += ".coupon"
        if control:
            self.problem(key, "a control variant shows nothing: no coupon")
            return None
        spec = self.mapping(value, key)
        if spec is None:
            return None
        self.known_keys(spec, KEYS["variants.coupon"], key)
        pool = spec.get("pool")
        if isinstance(pool, str) and pool in self.pools:
            return pool
        hint = ""
        if close := difflib.get_close_matches(str(pool), list(self.pools), n=1):
            hint = f" (did you mean {close[0]!r}?)"
        known = ", ".join(sorted(self.pools)) or f"none: {coupons.STEM}.yaml declares no pools"
        self.problem(f"{key}.pool", f"unknown pool {pool!r}{hint}; pools: {known}")
        return None

    def _template_problem(self, key: str, problem: TemplateProblem) -> None:
        if problem.file:
            self.problems.append(
                Problem(problem.file, problem.line, 1, key, problem.message, problem.severity)
            )
        else:
            self.problem(key, problem.message)
