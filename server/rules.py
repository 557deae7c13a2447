"""Loading and validating the marketers' rules files (``rules/*.yaml``).

Rules are data, never code: each file is a YAML mapping describing one campaign. Every problem
is reported with file, line and key, and a hint where a common mistake is recognisable. Loading
is all-or-nothing: a :class:`Ruleset` is only built from a set of files without errors, so a
running server keeps its last good rules when an edit breaks them.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import TouchpointError
from .rendering import TemplateProblem, Templates

CAMPAIGN_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
DURATION = re.compile(r"^(\d+)([smhd])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
KINDS = ("popup",)
TRIGGERS = ("exit_intent", "after_seconds")
FOREVER = None  # an `after_close: never` suppression
# Every key a rules file may use, by the mapping it sits in ("" is the top level, "variants"
# each variant). docs/rules.md documents each one; a test keeps the two in step.
KEYS: dict[str, tuple[str, ...]] = {
    "": ("campaign", "kind", "trigger", "audience", "frequency", "priority", "variants"),
    "trigger": TRIGGERS,
    "trigger.exit_intent": ("min_seconds",),
    "audience": ("page",),
    "audience.page": ("path",),
    "frequency": ("after_close", "after_convert"),
    "variants": ("id", "weight", "template"),
}


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        where = f" ({self.key})" if self.key else ""
        return f"{self.file}:{self.line}{where}: {self.message}"


class RulesError(TouchpointError):
    """The rules do not validate; ``problems`` lists every one found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class Trigger:
    kind: str  # one of TRIGGERS
    options: dict[str, Any]


@dataclass(frozen=True)
class Variant:
    id: str
    weight: int
    template: str


@dataclass(frozen=True)
class Campaign:
    id: str
    kind: str
    trigger: Trigger
    paths: tuple[re.Pattern[str], ...]
    after_close: int | None  # seconds; FOREVER suppresses for good; 0 never suppresses
    after_convert: int | None
    priority: int
    variants: tuple[Variant, ...]
    source: str  # "file:line", for explanations

    def matches_path(self, path: str) -> bool:
        return not self.paths or any(p.match(path) for p in self.paths)


@dataclass(frozen=True)
class Ruleset:
    """A validated set of campaigns, highest priority first, ties broken by campaign id."""

    campaigns: tuple[Campaign, ...]
    templates: Templates
    by_id: dict[str, Campaign] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", {c.id: c for c in self.campaigns})


def load(rules_dir: Path | str) -> Ruleset:
    """Load and validate every ``*.yaml`` file in ``rules_dir``; raises :class:`RulesError`."""
    rules_dir = Path(rules_dir)
    if not rules_dir.is_dir():
        raise RulesError([Problem(str(rules_dir), 0, "", "rules folder not found")])
    templates = Templates(rules_dir / "templates")
    problems: list[Problem] = []
    campaigns: list[Campaign] = []
    seen: dict[str, str] = {}
    for path in sorted(rules_dir.glob("*.y*ml")):
        reader = _FileReader(path, problems)
        campaign = reader.campaign(templates)
        if campaign is None:
            continue
        if campaign.id in seen:
            reader.problem("campaign", f"campaign id already used in {seen[campaign.id]}")
            continue
        seen[campaign.id] = campaign.source
        campaigns.append(campaign)
    if problems:
        raise RulesError(problems)
    campaigns.sort(key=lambda c: (-c.priority, c.id))
    return Ruleset(tuple(campaigns), templates)


def parse_duration(value: Any) -> int | None:
    """``7d``, ``12h``, ``30m``, ``45s`` to seconds; ``never`` to FOREVER. Raises ValueError."""
    if value == "never":
        return FOREVER
    if isinstance(value, int) and not isinstance(value, bool) and value == 0:
        return 0
    match = DURATION.match(str(value).strip()) if isinstance(value, str) else None
    if not match:
        hint = ""
        words = re.match(r"^\s*(\d+)\s*([a-z])", str(value))
        if words:
            hint = f" — write `{words.group(1)}{words.group(2)}`"
        raise ValueError(f"expected a duration like 7d, 12h, 30m or never, got {value!r}{hint}")
    return int(match.group(1)) * UNITS[match.group(2)]


def compile_glob(pattern: str) -> re.Pattern[str]:
    """``*`` matches within one path segment, ``**`` across segments, ``?`` one character."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _seconds(value: Any) -> bool:
    """A usable number of seconds: not a boolean, not negative, not infinite or NaN."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 <= value <= 86400
    )


class _FileReader:
    """Validates one file, collecting problems with line numbers from the YAML node tree."""

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        self.path = path
        self.name = str(path)
        self.problems = problems
        self.lines: dict[tuple[str, ...], int] = {}

    def problem(self, key: str, message: str) -> None:
        path = tuple(key.split(".")) if key else ()
        while path and path not in self.lines:
            path = path[:-1]
        self.problems.append(Problem(self.name, self.lines.get(path, 1), key, message))

    def campaign(self, templates: Templates) -> Campaign | None:
        data = self._parse()
        if data is None:
            return None
        before = len(self.problems)
        self._known_keys(data, "")
        cid = data.get("campaign")
        if not isinstance(cid, str) or not CAMPAIGN_ID.match(cid):
            self.problem(
                "campaign",
                "required: an id of lowercase letters, digits, - and _ (e.g. spring-sale)",
            )
        kind = data.get("kind", "popup")
        if kind not in KINDS:
            self.problem("kind", f"must be one of {', '.join(KINDS)}")
        trigger = self._trigger(data.get("trigger"))
        paths = self._audience(data.get("audience", {}))
        after_close, after_convert = self._frequency(data.get("frequency", {}))
        priority = data.get("priority", 0)
        if not isinstance(priority, int) or isinstance(priority, bool):
            self.problem("priority", "must be a whole number (higher wins)")
        variants = self._variants(data.get("variants"), templates)
        if len(self.problems) > before or trigger is None:
            return None
        return Campaign(
            id=str(cid),
            kind=kind,
            trigger=trigger,
            paths=paths,
            after_close=after_close,
            after_convert=after_convert,
            priority=priority,
            variants=variants,
            source=f"{self.name}:{self.lines.get((), 1)}",
        )

    def _parse(self) -> dict[str, Any] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
            # One parse: the node tree gives line numbers, the same tree builds the data.
            loader = yaml.SafeLoader(text)
            try:
                node = loader.get_single_node()
                data = loader.construct_document(node) if node is not None else None
            finally:
                loader.dispose()
        except UnicodeDecodeError:
            self.problems.append(Problem(self.name, 1, "", "not UTF-8 text"))
            return None
        except OSError as exc:
            self.problems.append(Problem(self.name, 1, "", f"cannot read: {exc.strerror}"))
            return None
        except yaml.MarkedYAMLError as exc:
            line = exc.problem_mark.line + 1 if exc.problem_mark else 1
            self.problems.append(Problem(self.name, line, "", f"YAML syntax: {exc.problem}"))
            return None
        except yaml.reader.ReaderError as exc:  # a control character; it has no mark, a position
            line = text[: exc.position].count("\n") + 1
            message = f"YAML: character #x{exc.character:04x} is not allowed"
            self.problems.append(Problem(self.name, line, "", message))
            return None
        if node is not None:
            self._index(node, ())
        if not isinstance(data, dict):
            self.problems.append(Problem(self.name, 1, "", "a rules file must be a YAML mapping"))
            return None
        return data

    def _index(self, node: yaml.Node, path: tuple[str, ...]) -> None:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                if key in keys:
                    self.problems.append(
                        Problem(
                            self.name,
                            key_node.start_mark.line + 1,
                            ".".join(path + (key,)),
                            "key appears twice",
                        )
                    )
                keys.add(key)
                self._index(value_node, path + (key,))
                self.lines[path + (key,)] = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._index(item, path + (str(i),))

    def _known_keys(self, data: dict[str, Any], section: str, *, at: str | None = None) -> None:
        """Report keys that KEYS does not list for ``section`` (found at ``at`` in the file)."""
        allowed = KEYS[section]
        where = at if at is not None else section
        for key in data:
            if key not in allowed:
                hint = ", ".join(sorted(allowed))
                path = f"{where}.{key}" if where else str(key)
                close = difflib.get_close_matches(str(key), allowed, n=1)
                guess = f" — did you mean `{close[0]}`?" if close else ""
                self.problem(path, f"unknown key (expected one of: {hint}){guess}")

    def _mapping(self, value: Any, key: str) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.problem(key, "must be a mapping")
            return None
        return value

    def _trigger(self, value: Any) -> Trigger | None:
        if value is None:
            self.problem("trigger", f"required: one of {', '.join(TRIGGERS)}")
            return None
        if (mapping := self._mapping(value, "trigger")) is None:
            return None
        if len(mapping) != 1 or next(iter(mapping)) not in TRIGGERS:
            self.problem("trigger", f"exactly one of {', '.join(TRIGGERS)}")
            return None
        kind, options = next(iter(mapping.items()))
        if kind == "after_seconds":
            if not _seconds(options):
                self.problem("trigger.after_seconds", "must be a number of seconds, e.g. 20")
                return None
            return Trigger(kind, {"seconds": options})
        options = {} if options is None else options
        if (options := self._mapping(options, "trigger.exit_intent")) is None:
            return None
        self._known_keys(options, "trigger.exit_intent")
        min_seconds = options.get("min_seconds", 1)
        if not _seconds(min_seconds):
            self.problem("trigger.exit_intent.min_seconds", "must be a number of seconds")
        return Trigger(kind, {"min_seconds": min_seconds})

    def _audience(self, value: Any) -> tuple[re.Pattern[str], ...]:
        if (audience := self._mapping(value, "audience")) is None:
            return ()
        self._known_keys(audience, "audience")
        page = audience.get("page", {})
        if (page := self._mapping(page, "audience.page")) is None:
            return ()
        self._known_keys(page, "audience.page")
        globs = page.get("path")
        if globs is None:
            return ()
        globs = [globs] if isinstance(globs, str) else globs
        if (
            not isinstance(globs, list)
            or not globs
            or not all(isinstance(g, str) and g.startswith("/") for g in globs)
        ):
            self.problem("audience.page.path", "a list of path patterns like /products/*")
            return ()
        return tuple(compile_glob(g) for g in globs)

    def _frequency(self, value: Any) -> tuple[int | None, int | None]:
        if (frequency := self._mapping(value, "frequency")) is None:
            return 0, 0
        self._known_keys(frequency, "frequency")
        out = []
        for key, default in (("after_close", "1d"), ("after_convert", "never")):
            try:
                out.append(parse_duration(frequency.get(key, default)))
            except ValueError as exc:
                self.problem(f"frequency.{key}", str(exc))
                out.append(0)
        return out[0], out[1]

    def _variants(self, value: Any, templates: Templates) -> tuple[Variant, ...]:
        if not isinstance(value, list) or not value:
            self.problem("variants", "required: a list of variants, each with id and template")
            return ()
        variants = []
        for i, item in enumerate(value):
            key = f"variants.{i}"
            if (item := self._mapping(item, key)) is None:
                continue
            self._known_keys(item, "variants", at=key)
            vid, weight, template = item.get("id"), item.get("weight", 1), item.get("template")
            if not isinstance(vid, str) or not CAMPAIGN_ID.match(vid):
                self.problem(f"{key}.id", "required: lowercase letters, digits, - and _")
            if not isinstance(weight, int) or isinstance(weight, bool) or weight < 0:
                self.problem(f"{key}.weight", "must be a whole number of 0 or more")
            if not isinstance(template, str):
                self.problem(f"{key}.template", "required: a file name in rules/templates/")
                continue
            for problem in templates.check(template):
                self._template_problem(f"{key}.template", problem)
            variants.append(Variant(str(vid), weight if isinstance(weight, int) else 0, template))
        ids = [v.id for v in variants]
        if len(set(ids)) != len(ids):
            self.problem("variants", "variant ids must be unique within the campaign")
        if variants and sum(v.weight for v in variants) == 0:
            self.problem("variants", "at least one variant needs a weight above 0")
        return tuple(variants)

    def _template_problem(self, key: str, problem: TemplateProblem) -> None:
        if problem.file:
            self.problems.append(Problem(problem.file, problem.line, key, problem.message))
        else:
            self.problem(key, problem.message)


def iter_problems(rules_dir: Path | str) -> Iterator[Problem]:
    """Every problem in ``rules_dir`` (empty when the rules are valid); for ``touchpoint check``."""
    try:
        load(rules_dir)
    except RulesError as exc:
        yield from exc.problems
