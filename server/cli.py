"""The ``touchpoint`` command: ``serve`` and ``check``.

Every setting in :class:`~touchpoint.settings.Settings` is a ``--flag`` of ``serve``; errors in
the settings or the rules end the command with one clear message and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from . import __version__, consent, store, targeting
from . import rules as rules_module
from .errors import ConfigError, TouchpointError
from .settings import ENV_PREFIX, Settings


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    for field in Settings.fields():
        flag = "--" + field.name.replace("_", "-")
        env = ENV_PREFIX + field.name.upper()
        help_text = f"{field.metadata['help']} [env {env}; default {field.default!r}]"
        if field.type in ("bool", bool):
            parser.add_argument(
                flag,
                dest=field.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        else:
            parser.add_argument(
                flag, dest=field.name, default=None, metavar=field.name.upper(), help=help_text
            )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="touchpoint", description="Self-hosted personalisation and popup server."
    )
    parser.add_argument("--version", action="version", version=f"touchpoint {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server")
    _add_setting_flags(serve)
    simulate = commands.add_parser(
        "simulate", help="which popup a visitor would get on a page, and why (or why not)"
    )
    simulate.add_argument("path", help="the page path, e.g. /demo/products/trail-runner.html")
    simulate.add_argument("--visitor", help="a visitor id from the database (default: anonymous)")
    simulate.add_argument("--at", type=int, help="the time as Unix seconds (default: now)")
    simulate.add_argument("--json", action="store_true", help="print the result as JSON")
    for name in ("rules_dir", "data_dir", "database", "consent_revision"):
        simulate.add_argument("--" + name.replace("_", "-"), dest=name, metavar=name.upper())
    check = commands.add_parser(
        "check", help="validate the rules files; prints file:line for each problem"
    )
    check.add_argument("--rules-dir", dest="rules_dir", default=None, metavar="RULES_DIR")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    own = {"command", "path", "visitor", "at", "json"}
    overrides = {k: v for k, v in vars(args).items() if k not in own and v is not None}
    try:
        settings = Settings.load(overrides)
        if args.command == "check":
            return check(settings)
        if args.command == "simulate":
            return simulate(
                settings, args.path, visitor_id=args.visitor, at=args.at, as_json=args.json
            )
        return serve(settings, overrides)
    except TouchpointError as exc:
        print(f"touchpoint: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # an unreadable key file, rules folder or database folder
        print(f"touchpoint: {exc.filename or ''}: {exc.strerror}", file=sys.stderr)
        return 1


def check(settings: Settings) -> int:
    problems = list(rules_module.iter_problems(settings.rules_dir))
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) in {settings.rules_dir}", file=sys.stderr)
        return 1
    ruleset = rules_module.load(settings.rules_dir)
    print(f"ok: {len(ruleset.campaigns)} campaign(s) in {settings.rules_dir}")
    return 0


def simulate(
    settings: Settings, path: str, *, visitor_id: str | None, at: int | None, as_json: bool
) -> int:
    """Print the decision for one page view and, for every campaign, why it lost."""
    ruleset = rules_module.load(settings.rules_dir)
    record = None
    if visitor_id:
        if not settings.database_path.exists():
            raise ConfigError(f"no database at {settings.database_path}")
        reader = store.Reader(settings.database_path)
        try:
            record = reader.visitor(visitor_id)
        finally:
            reader.close()
        if record is None:
            raise ConfigError(f"no visitor {visitor_id!r} in {settings.database_path}")
    visitor = consent.targeting_visitor(record, settings.consent_revision)
    now = int(time.time()) if at is None else at
    outcome = targeting.decide(ruleset, visitor, targeting.Page(path), now)
    chosen = outcome.decision
    rows: list[dict[str, Any]] = [
        {
            "campaign": c.id,
            "priority": c.priority,
            "source": c.source,
            "shown": chosen is not None and chosen.campaign is c,
            "reason": outcome.reasons.get(c.id),
        }
        for c in ruleset.campaigns
    ]
    result = {
        "popup": {"campaign": chosen.campaign.id, "variant": chosen.variant.id} if chosen else None,
        "visitor": {
            "id": visitor_id,
            "consent": sorted(consent.granted(record, settings.consent_revision)),
            "history_used": bool(visitor.id),
        },
        "campaigns": rows,
    }
    if as_json:
        print(json.dumps(result, indent=2))
        return 0
    who = f"visitor {visitor_id}" if visitor_id else "an anonymous visitor"
    print(f"{path} for {who} at {now}:")
    if chosen:
        print(f"  popup {chosen.campaign.id} (variant {chosen.variant.id})")
    else:
        print("  no popup")
    for row in rows:
        verdict = "shown" if row["shown"] else f"not shown: {row['reason']}"
        print(f"  {row['campaign']:<32} {verdict}")
    return 0


def serve(settings: Settings, overrides: dict[str, Any]) -> int:
    import uvicorn

    # Fail before forking workers: bad rules, an unreadable key or database end here, once.
    rules_module.load(settings.rules_dir)
    settings.resolve_secret_key()
    try:
        store.migrate(settings.database_path)
    except Exception as exc:
        raise ConfigError(f"cannot open database {settings.database_path}: {exc}") from exc
    # Workers rebuild the settings from the environment (uvicorn imports the app by name).
    for name, value in overrides.items():
        os.environ[ENV_PREFIX + name.upper()] = str(value)
    print(
        f"Touchpoint on http://{settings.host}:{settings.port}{settings.prefix}/"
        + (
            f" — demo shop at http://{settings.host}:{settings.port}/demo/" if settings.demo else ""
        ),
        file=sys.stderr,
    )
    uvicorn.run(
        "touchpoint.app:create_app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        # The access log would record visitors' addresses: personal data stays out of logs.
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
