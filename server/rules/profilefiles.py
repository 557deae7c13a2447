"""``rules/scoring.yaml`` and ``rules/lifecycle.yaml``: loading them into the profile rules
(profiles.rules.ProfileRules, profiles.scoring, profiles.lifecycle).

Both files are optional: without ``scoring.yaml`` nothing earns points, without
``lifecycle.yaml`` the built-in stages apply (lifecycle.DEFAULT_STAGES). They load with the
rest of the rules, all-or-nothing, problems named by ``file:line:column``.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any

from ..audience import channels as channel_groups
from ..audience.fields import NAME
from ..profiles import lifecycle
from ..profiles.lifecycle import StageRule
from ..profiles.rules import ProfileRules
from ..profiles.scoring import Decay, PointRule, ScoringRules, Threshold
from ..store.activity import TYPES
from ..store.records import STAGES
from ..syntax import matchers
from ..syntax.files import Problem, YamlFile
from . import folder
from .site import Site

# rules/scoring.yaml and rules/lifecycle.yaml (or .yml): not campaigns.
STEMS = ("scoring", "lifecycle")
# Every key the two files may use, by where it sits. docs/profiles.md documents each one; a
# test keeps them in step.
KEYS: dict[str, tuple[str, ...]] = {
    "scoring": ("points", "decay", "thresholds"),
    "scoring.points": (
        "id",
        "activity",
        "points",
        "path",
        "name",
        "min_value",
        "returning",
        "channel",
        "first_time",
        "max_per_day",
        "max_per_visit",
    ),
    "scoring.decay": ("half_life", "after"),
    "scoring.thresholds": ("name", "at", "actions"),
    "scoring.thresholds.actions": ("webhook", "stage", "attribute"),
    "lifecycle": ("stages",),
    "lifecycle.stages": ("stage", "when"),
    "lifecycle.stages.when": tuple(lifecycle.CONDITIONS),
}


def load(rules_dir: Path, problems: list[Problem], site: Site) -> ProfileRules:
    """``scoring.yaml`` and ``lifecycle.yaml`` of ``rules_dir``, each optional; problems are
    appended to ``problems`` (the caller refuses the whole ruleset if there are any)."""
    scoring = ScoringRules(timezone=site.timezone)
    stages: tuple[StageRule, ...] = lifecycle.DEFAULT_STAGES
    for path in folder.yaml_files(rules_dir):
        if path.stem == "scoring":
            scoring = _ScoringFile(path, problems).rules(site) or scoring
        elif path.stem == "lifecycle":
            stages = _LifecycleFile(path, problems).stages() or stages
    return ProfileRules(scoring, stages)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


class _ScoringFile(YamlFile):
    def rules(self, site: Site) -> ScoringRules | None:
        data = self.load()
        if data is None:
            return ScoringRules(timezone=site.timezone)
        if (data := self.mapping(data, "")) is None:
            return None
        self.known_keys(data, KEYS["scoring"], "")
        before = len(self.problems)
        points = self._points(data.get("points", []))
        decay = self._decay(data.get("decay"))
        thresholds = self._thresholds(data.get("thresholds", []))
        if len(self.problems) > before:
            return None
        for i, threshold in enumerate(thresholds):
            if threshold.webhook is not None and threshold.webhook not in site.webhooks:
                self.problem(
                    f"thresholds.{i}.actions.webhook",
                    f"no endpoint {threshold.webhook!r} under webhooks: in site.yaml: nothing is"
                    " sent until one is configured",
                    severity="warning",
                )
        return ScoringRules(points, decay, thresholds, site.timezone)

    def _points(self, value: Any) -> tuple[PointRule, ...]:
        if not isinstance(value, list):
            self.problem("points", "a list like [{id: webinar, activity: webinar, points: 10}]")
            return ()
        out: list[PointRule] = []
        for i, item in enumerate(value):
            key = f"points.{i}"
            if (item := self.mapping(item, key)) is None:
                continue
            self.known_keys(item, KEYS["scoring.points"], key)
            rule = self._point(item, key)
            if rule is None:
                continue
            if any(r.id == rule.id for r in out):
                self.problem(f"{key}.id", f"id {rule.id!r} is used by another rule")
            out.append(rule)
        return tuple(out)

    def _point(self, item: dict[str, Any], key: str) -> PointRule | None:
        before = len(self.problems)
        rid, on, points = item.get("id"), item.get("activity"), item.get("points")
        if not isinstance(rid, str) or not NAME.match(rid):
            self.problem(f"{key}.id", "required: a name of letters, digits, - and _")
        if on not in TYPES:
            close = difflib.get_close_matches(str(on), TYPES, n=1)
            hint = f"did you mean `{close[0]}`? " if close else ""
            self.problem(f"{key}.activity", f"{hint}required: one of {', '.join(TYPES)}")
        if not _number(points):
            self.problem(f"{key}.points", "required: a number (negative to take points away)")
        path = name = None
        try:
            if "path" in item:
                path = matchers.globs(item["path"], segments=True, want_slash=True)[0]
        except ValueError as exc:
            self.problem(f"{key}.path", str(exc))
        try:
            if "name" in item:
                name = matchers.text(item["name"])[0]
        except ValueError as exc:
            self.problem(f"{key}.name", str(exc))
        min_value = item.get("min_value")
        if min_value is not None and not _number(min_value):
            self.problem(f"{key}.min_value", "a number: seconds for dwell, percent for scroll")
        for flag in ("returning", "first_time"):
            if flag in item and not isinstance(item[flag], bool):
                self.problem(f"{key}.{flag}", "true or false")
        channels = item.get("channel", [])
        channels = [channels] if isinstance(channels, str) else channels
        if not isinstance(channels, list) or not all(c in channel_groups.VALUES for c in channels):
            self.problem(f"{key}.channel", f"one or a list of {', '.join(channel_groups.VALUES)}")
            channels = []
        for cap in ("max_per_day", "max_per_visit"):
            if item.get(cap) is not None and not _count(item[cap]):
                self.problem(f"{key}.{cap}", "a whole number from 1")
        if len(self.problems) > before:
            return None
        return PointRule(
            id=str(rid),
            activity=str(on),
            points=float(points),  # type: ignore[arg-type]  # checked above
            path=path,
            name=name,
            min_value=None if min_value is None else float(min_value),
            returning=item.get("returning"),
            channels=channel_groups.expand(channels),
            first_time=item.get("first_time", False),
            max_per_day=item.get("max_per_day"),
            max_per_visit=item.get("max_per_visit"),
            source=self.position(key),
        )

    def _decay(self, value: Any) -> Decay:
        if value is None:
            return Decay()
        if (value := self.mapping(value, "decay")) is None:
            return Decay()
        self.known_keys(value, KEYS["scoring.decay"], "decay")
        try:
            half_life = matchers.parse_duration(value.get("half_life", "never"))
        except ValueError as exc:
            self.problem("decay.half_life", str(exc))
            half_life = None
        if half_life == 0:
            self.problem("decay.half_life", "a duration like 30d, or never")
        try:
            after = matchers.parse_duration(value.get("after", 0))
        except ValueError as exc:
            self.problem("decay.after", str(exc))
            after = 0
        if after is matchers.FOREVER:
            self.problem(
                "decay.after",
                "a duration like 7d (0 to decay at once); for no decay write half_life: never",
            )
            after = 0
        return Decay(half_life or None, after or 0)

    def _thresholds(self, value: Any) -> tuple[Threshold, ...]:
        if not isinstance(value, list):
            self.problem("thresholds", "a list like [{name: sales-ready, at: 150, actions: ...}]")
            return ()
        out: list[Threshold] = []
        for i, item in enumerate(value):
            key = f"thresholds.{i}"
            if (item := self.mapping(item, key)) is None:
                continue
            self.known_keys(item, KEYS["scoring.thresholds"], key)
            name, at = item.get("name"), item.get("at")
            if not isinstance(name, str) or not NAME.match(name):
                self.problem(f"{key}.name", "required: a name of letters, digits, - and _")
            elif any(t.name == name for t in out):
                self.problem(f"{key}.name", f"name {name!r} is used by another threshold")
            if not _number(at) or at <= 0:  # type: ignore[operator]
                self.problem(f"{key}.at", "required: the score that crosses it, above 0")
            actions = self.mapping(item.get("actions", {}), f"{key}.actions") or {}
            self.known_keys(actions, KEYS["scoring.thresholds.actions"], f"{key}.actions")
            webhook, stage = actions.get("webhook"), actions.get("stage")
            attributes = actions.get("attribute", {})
            if webhook is not None and not (isinstance(webhook, str) and NAME.match(webhook)):
                self.problem(f"{key}.actions.webhook", "an endpoint name from site.yaml webhooks")
            if stage is not None and stage not in STAGES:
                self.problem(f"{key}.actions.stage", f"one of {', '.join(STAGES)}")
            if not isinstance(attributes, dict) or not all(
                isinstance(k, str) and NAME.match(k) and (isinstance(v, (str, bool)) or _number(v))
                for k, v in attributes.items()
            ):
                self.problem(
                    f"{key}.actions.attribute", "a mapping of names to strings, numbers or booleans"
                )
                attributes = {}
            if isinstance(name, str) and isinstance(at, (int, float)) and _number(at):
                out.append(
                    Threshold(name, float(at), webhook, stage, dict(attributes), self.position(key))
                )
        return tuple(out)


class _LifecycleFile(YamlFile):
    def stages(self) -> tuple[StageRule, ...] | None:
        data = self.load()
        if data is None or (data := self.mapping(data, "")) is None:
            return None
        self.known_keys(data, KEYS["lifecycle"], "")
        value = data.get("stages")
        if not isinstance(value, list) or not value:
            self.problem("stages", "required: a list of stages, the first that matches wins")
            return None
        before = len(self.problems)
        out: list[StageRule] = []
        for i, item in enumerate(value):
            key = f"stages.{i}"
            if (item := self.mapping(item, key)) is None:
                continue
            self.known_keys(item, KEYS["lifecycle.stages"], key)
            stage = item.get("stage")
            if stage not in STAGES:
                self.problem(f"{key}.stage", f"required: one of {', '.join(STAGES)}")
                continue
            when = item.get("when", [])
            alternatives = when if isinstance(when, list) else [when]
            compiled: list[dict[str, Any]] = []
            for n, conditions in enumerate(alternatives):
                at = f"{key}.when.{n}" if isinstance(when, list) else f"{key}.when"
                if (conditions := self.mapping(conditions, at)) is None:
                    continue
                self.known_keys(conditions, KEYS["lifecycle.stages.when"], at)
                for name, cond in conditions.items():
                    if name in lifecycle.CONDITIONS:
                        try:
                            lifecycle.compile_condition(name, cond)
                        except ValueError as exc:
                            self.problem(f"{at}.{name}", str(exc))
                compiled.append(conditions)
            if len(self.problems) == before:
                out.append(lifecycle.rule(stage, *compiled, source=self.position(key)))
        if len(self.problems) > before:
            return None
        return tuple(out)
