"""The rules commands: ``touchpoint check``, ``schema`` and ``preview`` (``simulate``'s body is
decide.simulation)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Any

from ..api.openapi import openapi
from ..audience import geolocation
from ..decide.preview import Preview, Previews, resolve
from ..decide.preview import link as preview_link
from ..errors import ConfigError, RequestError
from ..rules import ruleset as rules_module
from ..rules.schema import SCHEMAS
from ..settings import Settings
from ..syntax.files import Problem
from ..syntax.matchers import FOREVER, parse_duration
from ..web.openapi import public_openapi


def schema(settings: Settings, args: argparse.Namespace) -> int:
    """Print the JSON Schema of one kind of rules file, or an OpenAPI document."""
    print(json.dumps(_schema(args.which, settings), indent=2))
    return 0


def _schema(which: str, settings: Settings) -> dict[str, Any]:
    if which == "openapi":
        return openapi(settings.prefix + "/v1/api")
    if which == "openapi-public":
        return public_openapi(settings.prefix + "/v1")
    return SCHEMAS[which]()


def check(settings: Settings, args: argparse.Namespace) -> int:
    """Validate the rules folder: every problem as ``file:line:column`` on standard error and a
    summary counting errors and warnings apart; with ``--json`` one document on standard output
    (docs/rules.md#checking-and-reloading)."""
    source = geolocation.open_source(settings.geoip_database)  # a bad file ends here
    problems, ruleset = rules_module.check(settings.rules_dir, geolocation=source is not None)
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    note = geolocation.check_note(problems)
    if args.json:
        print(json.dumps(_check_report(settings, problems, ruleset, note), indent=2))
        return 0 if ruleset is not None else 1
    for problem in problems:
        print(problem, file=sys.stderr)
    if note:
        print(note, file=sys.stderr)
    counted = ", ".join(
        [_plural(errors, "error")] * bool(errors) + [_plural(warnings, "warning")] * bool(warnings)
    )
    if ruleset is None:
        print(f"{counted} in {settings.rules_dir}", file=sys.stderr)
        return 1
    scoring = ruleset.profile.scoring
    scored = (
        f", {len(scoring.points)} scoring rule(s), {len(scoring.thresholds)} threshold(s)"
        if scoring.points or scoring.thresholds
        else ""
    )
    pools = f", {len(ruleset.pools)} coupon pool(s)" if ruleset.pools else ""
    warned = f", {counted}" if counted else ""
    print(
        f"ok: {len(ruleset.campaigns)} campaign(s){scored}{pools} in {settings.rules_dir}{warned}"
    )
    return 0


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _check_report(
    settings: Settings,
    problems: list[Problem],
    ruleset: rules_module.Ruleset | None,
    note: str | None,
) -> dict[str, Any]:
    """``touchpoint check --json``; its shape is documented in docs/rules.md."""
    errors = sum(p.severity == "error" for p in problems)
    counts = None
    if ruleset is not None:
        counts = {
            "campaigns": len(ruleset.campaigns),
            "scoring_rules": len(ruleset.profile.scoring.points),
            "thresholds": len(ruleset.profile.scoring.thresholds),
            "coupon_pools": len(ruleset.pools),
        }
    return {
        "ok": ruleset is not None,
        "rules_dir": str(settings.rules_dir),
        "errors": errors,
        "warnings": len(problems) - errors,
        "problems": [dataclasses.asdict(p) for p in problems],
        "note": note,
        "counts": counts,
    }


def preview(settings: Settings, args: argparse.Namespace) -> int:
    """Print a preview link (docs/rules.md#preview)."""
    ruleset = rules_module.load(settings.rules_dir)
    try:
        ttl = parse_duration(args.ttl)
    except ValueError as exc:
        raise ConfigError(f"--ttl: {exc}") from None
    if not ttl or ttl is FOREVER:
        raise ConfigError("--ttl: a duration like 2h or 7d")
    expires = int(time.time()) + ttl
    previews = Previews(settings.resolve_secret_key())
    token = previews.token(args.campaign, args.variant, expires=expires)
    try:
        resolve(Preview(args.campaign, args.variant, expires), ruleset)
    except RequestError as exc:
        raise ConfigError(str(exc)) from None
    link = preview_link(args.url or "/", token)
    expiry = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(expires))
    if args.json:
        report = {"url": link, "campaign": args.campaign, "variant": args.variant}
        print(json.dumps({**report, "expires_at": expires}, indent=2))
    else:
        print(link)
    print(f"works until {expiry}; shows {args.campaign} whatever its rules say", file=sys.stderr)
    return 0
