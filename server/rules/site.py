"""``rules/site.yaml``: the site-wide settings the campaigns share.

Time zone (for schedules), the idle time that ends a visit, the minimum gap between two
popups, interests (named path patterns counted per page view in the visitor's profile), how
consent is asked (``consent:``, read by ``banner.py``) and the webhook endpoints
(docs/webhooks.md).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..audience.fields import NAME
from ..consent.banner import ConsentConfig, load_consent
from ..syntax.files import Problem, YamlFile
from ..syntax.matchers import FOREVER, compile_globs, parse_duration
from ..webhooks import signing
from ..webhooks.delivery import EVENTS, Endpoint

KEYS = ("timezone", "session_idle", "popups", "interests", "consent", "webhooks")
POPUP_KEYS = ("min_gap",)
WEBHOOK_KEYS = ("url", "secret_env", "events")
URL = re.compile(r"^https?://[^/\s?#]+[^\s]*$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Site:
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    session_idle: int = 1800
    min_gap: int = 0  # seconds between any two popups shown to one visitor
    interests: dict[str, re.Pattern[str]] = field(default_factory=dict)
    consent: ConsentConfig = field(default_factory=ConsentConfig)
    webhooks: dict[str, Endpoint] = field(default_factory=dict)

    def interests_of(self, path: str) -> tuple[str, ...]:
        return tuple(name for name, regex in self.interests.items() if regex.match(path))


def load_site(
    path: Path, problems: list[Problem], *, environ: Mapping[str, str] | None = None
) -> Site:
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
    webhooks = load_webhooks(
        file, data.get("webhooks", {}), os.environ if environ is None else environ
    )
    return Site(tz, idle or 1800, min_gap or 0, interests, consent, webhooks)


def load_webhooks(file: YamlFile, value: Any, environ: Mapping[str, str]) -> dict[str, Endpoint]:
    """``webhooks:`` name -> {url, secret_env, events}. The secret itself never sits in a rules
    file: ``secret_env`` names the environment variable holding it. While that is unset the
    endpoint's webhooks are queued but wait (a warning, so the rules still load); a secret
    that is not a Standard Webhooks ``whsec_`` secret is an error."""
    endpoints: dict[str, Endpoint] = {}
    for name, spec in (file.mapping(value, "webhooks") or {}).items():
        key = f"webhooks.{name}"
        if not isinstance(name, str) or not NAME.match(name):
            file.problem(key, "endpoint names use letters, digits, - and _")
            continue
        if (spec := file.mapping(spec, key)) is None:
            continue
        file.known_keys(spec, WEBHOOK_KEYS, key)
        url, env, events = spec.get("url", ""), spec.get("secret_env", ""), spec.get("events", [])
        ok = True
        if not isinstance(url, str) or not URL.match(url):
            file.problem(f"{key}.url", "an http:// or https:// URL, like https://crm.example/hook")
            ok = False
        if not isinstance(env, str) or not ENV_NAME.match(env):
            file.problem(
                f"{key}.secret_env",
                "the name of the environment variable holding the signing secret, like "
                "TOUCHPOINT_WEBHOOK_SECRET (the secret itself does not belong in a rules file)",
            )
            ok = False
        if isinstance(events, str):
            events = [events]
        if not isinstance(events, list) or not all(e in EVENTS for e in events):
            file.problem(f"{key}.events", f"a list of events from: {', '.join(EVENTS)}")
            ok = False
        if not ok or not isinstance(url, str) or not isinstance(env, str):
            continue
        endpoint = Endpoint(name, url, environ.get(env, ""), frozenset(events), env)
        if not endpoint.ready:
            file.problem(
                f"{key}.secret_env",
                f"{env} is not set: webhooks to {name} are queued, and sent once the server "
                f"runs with {env} set",
                severity="warning",
            )
        else:
            try:
                signing.keys(endpoint.secret)
            except ValueError as exc:
                # Refused rather than sent: no receiver's library could verify the signature.
                file.problem(f"{key}.secret_env", f"{env} {exc} (docs/webhooks.md#the-secret)")
                continue
        endpoints[name] = endpoint
    return endpoints


def duration(
    file: YamlFile, data: dict[str, Any], key: str, default: Any, *, at: str | None = None
) -> int | None:
    try:
        return parse_duration(data.get(key, default))
    except ValueError as exc:
        file.problem(at or key, str(exc))
        return 0
