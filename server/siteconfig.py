"""``rules/site.yaml``: the site-wide settings the campaigns share.

Time zone (for schedules), the idle time that ends a visit, the minimum gap between two
popups, interests (named path patterns counted per page view in the visitor's profile), and how
consent is asked (``consent:``, read by ``banner.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .banner import ConsentConfig, load_consent
from .conditions import NAME
from .matchers import FOREVER, compile_globs, parse_duration
from .yamlfile import Problem, YamlFile

KEYS = ("timezone", "session_idle", "popups", "interests", "consent")
POPUP_KEYS = ("min_gap",)


@dataclass(frozen=True)
class Site:
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    session_idle: int = 1800
    min_gap: int = 0  # seconds between any two popups shown to one visitor
    interests: dict[str, re.Pattern[str]] = field(default_factory=dict)
    consent: ConsentConfig = field(default_factory=ConsentConfig)

    def interests_of(self, path: str) -> tuple[str, ...]:
        return tuple(name for name, regex in self.interests.items() if regex.match(path))


def load_site(path: Path, problems: list[Problem]) -> Site:
    if not path.exists():
        return Site()
    file = YamlFile(path, problems)
    data = file.load()
    if data is None:
        return Site()
    if (data := file.mapping(data, "")) is None:
        return Site()
    file.known_keys(data, KEYS, "")
    site = Site()
    tz = site.timezone
    if "timezone" in data:
        try:
            tz = ZoneInfo(str(data["timezone"]))
        except (ZoneInfoNotFoundError, ValueError):
            file.problem("timezone", "an IANA time zone name like Europe/Berlin")
    idle = duration(file, data, "session_idle", "30m")
    popups = file.mapping(data.get("popups", {}), "popups") or {}
    file.known_keys(popups, POPUP_KEYS, "popups")
    min_gap = duration(file, popups, "min_gap", 0, at="popups.min_gap")
    interests: dict[str, re.Pattern[str]] = {}
    for name, globs in (file.mapping(data.get("interests", {}), "interests") or {}).items():
        key = f"interests.{name}"
        if not isinstance(name, str) or not NAME.match(name):
            file.problem(key, "interest names use letters, digits, - and _")
            continue
        patterns = [globs] if isinstance(globs, str) else globs
        if not isinstance(patterns, list) or not all(
            isinstance(p, str) and p.startswith("/") for p in patterns
        ):
            file.problem(key, "a list of path patterns like /category/running/**")
            continue
        interests[name] = compile_globs(patterns, segments=True)
    consent = load_consent(file, data.get("consent", {}))
    if idle is FOREVER or idle == 0:
        file.problem("session_idle", "a visit must end some time: a duration like 30m")
        idle = 1800
    if min_gap is FOREVER:
        file.problem("popups.min_gap", "a duration like 10m (0 for no gap)")
        min_gap = 0
    return Site(tz, idle or 1800, min_gap or 0, interests, consent)


def duration(
    file: YamlFile, data: dict[str, Any], key: str, default: Any, *, at: str | None = None
) -> int | None:
    try:
        return parse_duration(data.get(key, default))
    except ValueError as exc:
        file.problem(at or key, str(exc))
        return 0
