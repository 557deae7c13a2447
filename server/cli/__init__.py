"""The ``touchpoint`` command: ``serve``, ``check``, ``simulate``, ``preview``, ``schema``,
``apikey``, ``webhooks``, ``coupons``, ``purge`` and the data subject requests ``export``,
``erase``, ``consent`` (their bodies in server/simulation.py, server/couponstock.py,
server/retention.py and server/subjects.py).

Every setting in :class:`~touchpoint.settings.Settings` is a ``--flag`` of ``serve``; errors in
the settings or the rules end the command with one clear message and exit status 1.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from .. import __version__, store
from ..api.keys import SCOPES, ApiKeys
from ..coupons import stock as couponstock
from ..decide import geolocation, simulation
from ..decide.preview import Preview, Previews, resolve
from ..errors import ConfigError, RequestError, TouchpointError
from ..privacy import subjects
from ..rules import ruleset as rules_module
from ..rules.matchers import FOREVER, parse_duration
from ..settings import ENV_PREFIX, Settings


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
        "simulate", help="what a visitor would get on a page, and why every other campaign lost"
    )
    simulate.add_argument("url", help="the page: a path or URL, e.g. /products/x?utm_source=y")
    who = simulate.add_mutually_exclusive_group()
    who.add_argument("--visitor", help="a visitor id from the database (default: anonymous)")
    who.add_argument(
        "--profile",
        help="a what-if visitor as JSON (or @file.json): profile fields, e.g. "
        '\'{"visits": 3, "stage": "lead", "campaigns": {"x": {"last_closed_at": 0}}}\'; '
        "all consent categories count as granted",
    )
    simulate.add_argument("--referrer", default="", help="the referring URL")
    simulate.add_argument("--context", default="{}", help="page context as JSON")
    simulate.add_argument("--slot", action="append", default=[], help="a slot on the page")
    simulate.add_argument("--user-agent", default="", help="the browser's User-Agent")
    simulate.add_argument("--language", default="", help="Accept-Language, e.g. de-AT,de")
    where = simulate.add_mutually_exclusive_group()
    where.add_argument("--country", help="the visitor's country, e.g. AT (what-if)")
    where.add_argument("--ip", help="the visitor's address, looked up in geoip_database")
    simulate.add_argument("--trigger", help="which popup shows when this trigger fires")
    simulate.add_argument("--at", type=int, help="the time as Unix seconds (default: now)")
    simulate.add_argument("--json", action="store_true", help="print the result as JSON")
    for name in ("rules_dir", "data_dir", "database", "consent_revision", "geoip_database"):
        simulate.add_argument("--" + name.replace("_", "-"), dest=name, metavar=name.upper())
    schema = commands.add_parser(
        "schema",
        help="print the JSON Schema of campaign files, site.yaml, scoring.yaml, lifecycle.yaml"
        " or coupons.yaml, for editors",
    )
    schema.add_argument(
        "which", choices=["campaign", "site", "scoring", "lifecycle", "coupons", "openapi"]
    )
    apikey = commands.add_parser("apikey", help="create, list or revoke keys of the server API")
    keys = apikey.add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="create a key; its token is printed once")
    create.add_argument("name", help="who uses the key, e.g. shop or crm")
    create.add_argument(
        "--scope", action="append", default=[], choices=SCOPES, help="a scope (repeatable)"
    )
    keys.add_parser("list", help="names, scopes and creation dates (no tokens)")
    revoke = keys.add_parser("revoke", help="delete a key; requests with it get 401")
    revoke.add_argument("name")
    for name in ("data_dir", "api_keys_file"):
        apikey.add_argument("--" + name.replace("_", "-"), dest=name, metavar=name.upper())
    check = commands.add_parser(
        "check", help="validate the rules files; prints file:line for each problem"
    )
    for name in ("rules_dir", "geoip_database"):
        check.add_argument("--" + name.replace("_", "-"), dest=name, metavar=name.upper())
    preview = commands.add_parser(
        "preview", help="a signed link that shows one campaign on the live site, recording nothing"
    )
    preview.add_argument("campaign", help="the campaign id")
    preview.add_argument("--variant", help="the variant id (default: the first one that shows)")
    preview.add_argument("--url", default="", help="the page to open, e.g. https://shop.example/")
    preview.add_argument("--ttl", default="24h", help="how long the link works (default 24h)")
    for name in ("rules_dir", "data_dir", "secret_key"):
        preview.add_argument("--" + name.replace("_", "-"), dest=name, metavar=name.upper())
    hooks = commands.add_parser(
        "webhooks", help="the webhook outbox: counts, pending and failed deliveries; retry"
    )
    hooks.add_argument("--json", action="store_true", help="print the outbox as JSON")
    hooks.add_argument("--limit", type=int, default=50, help="rows to list (newest first)")
    actions = hooks.add_subparsers(dest="action")
    retry = actions.add_parser("retry", help="send failed webhooks again, with fresh attempts")
    retry.add_argument("ids", nargs="*", type=int, metavar="ID", help="outbox row ids")
    retry.add_argument("--all-failed", action="store_true", help="every failed row")
    for sub in (hooks, retry):
        for name in ("rules_dir", "data_dir", "database"):
            sub.add_argument(
                "--" + name.replace("_", "-"),
                dest=name,
                metavar=name.upper(),
                default=None if sub is hooks else argparse.SUPPRESS,
            )
    _add_coupons(commands)
    subjects.add_parsers(commands)
    purge = commands.add_parser(
        "purge", help="delete what is past retention; per table, what went (docs/privacy.md)"
    )
    purge.add_argument("--dry-run", action="store_true", help="count only; change nothing")
    purge.add_argument("--json", action="store_true", help="print the counts as JSON")
    for name in ("data_dir", "database", "retention_events_days", "retention_profiles_days",
                 "retention_consent_days", "webhook_keep_days", "purge_batch_rows"):  # fmt: skip
        purge.add_argument("--" + name.replace("_", "-"), dest=name, metavar=name.upper())
    return parser


def _add_coupons(commands: Any) -> None:
    coupons = commands.add_parser(
        "coupons", help="coupon pools: import codes, generate codes in advance, list the stock"
    )
    actions = coupons.add_subparsers(dest="action", required=True)
    load = actions.add_parser(
        "import", help="add the codes of a CSV file (first column, or the one headed code)"
    )
    load.add_argument("pool", help="an imported pool of coupons.yaml")
    load.add_argument("file", help="the CSV file; - reads standard input")
    generate = actions.add_parser(
        "generate", help="make codes of a generated pool in advance; prints them, one a line"
    )
    generate.add_argument("pool", help="a generated pool of coupons.yaml")
    generate.add_argument("count", type=int, help="how many codes")
    listing = actions.add_parser("list", help="free, assigned and redeemed codes per pool")
    listing.add_argument("--json", action="store_true", help="print the pools as JSON")
    for sub in (load, generate, listing):
        for name in ("rules_dir", "data_dir", "database"):
            sub.add_argument("--" + name.replace("_", "-"), dest=name, metavar=name.upper())


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Only settings are overrides; a command's own arguments (url, --visitor ...) are not.
    names = {field.name for field in Settings.fields()}
    overrides = {k: v for k, v in vars(args).items() if k in names and v is not None}
    try:
        settings = Settings.load(overrides)
        if args.command == "check":
            return check(settings)
        if args.command == "schema":
            print(json.dumps(_schema(args.which, settings), indent=2))
            return 0
        if args.command == "apikey":
            return apikey(settings, args)
        if args.command == "simulate":
            return simulation.command(settings, args)
        if args.command == "preview":
            return preview(settings, args)
        if args.command == "webhooks":
            return webhooks(settings, args)
        if args.command == "coupons":
            return couponstock.command(settings, args)
        if args.command in subjects.COMMANDS:
            return subjects.run(settings, args)
        if args.command == "purge":
            from ..privacy import retention

            return retention.command(settings, args)
        return serve(settings, overrides)
    except TouchpointError as exc:
        print(f"touchpoint: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # an unreadable key file, rules folder or database folder
        print(f"touchpoint: {exc.filename or ''}: {exc.strerror}", file=sys.stderr)
        return 1


def _schema(which: str, settings: Settings) -> dict[str, Any]:
    if which == "openapi":
        from ..api.spec import openapi

        return openapi(settings.prefix + "/v1/api")
    from ..rules.schema import SCHEMAS

    return SCHEMAS[which]()


def apikey(settings: Settings, args: argparse.Namespace) -> int:
    """Create, list or revoke server API keys (docs/api.md#keys)."""
    keys = ApiKeys(settings.api_keys_path)
    if args.action == "create":
        token = keys.create(args.name, args.scope, now=int(time.time()))
        print(token)
        print(f"key {args.name} created; the token above is shown only now", file=sys.stderr)
    elif args.action == "revoke":
        keys.revoke(args.name)
        print(f"key {args.name} revoked", file=sys.stderr)
    else:
        for key in keys.keys():
            created = time.strftime("%Y-%m-%d", time.gmtime(key.created_at))
            print(f"{key.name}\t{' '.join(key.scopes)}\t{created}")
    return 0


def check(settings: Settings) -> int:
    source = geolocation.open_source(settings.geoip_database)  # a bad file ends here
    problems, ruleset = rules_module.check(settings.rules_dir, geolocation=source is not None)
    for problem in problems:
        print(problem, file=sys.stderr)
    if note := geolocation.check_note(problems):
        print(note, file=sys.stderr)
    if ruleset is None:
        print(f"{len(problems)} problem(s) in {settings.rules_dir}", file=sys.stderr)
        return 1
    warned = f", {len(problems)} warning(s)" if problems else ""
    scoring = ruleset.profile.scoring
    scored = (
        f", {len(scoring.points)} scoring rule(s), {len(scoring.thresholds)} threshold(s)"
        if scoring.points or scoring.thresholds
        else ""
    )
    pools = f", {len(ruleset.pools)} coupon pool(s)" if ruleset.pools else ""
    print(
        f"ok: {len(ruleset.campaigns)} campaign(s){scored}{pools} in {settings.rules_dir}{warned}"
    )
    return 0


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
    url = args.url or "/"
    joiner = "&" if "?" in url else "?"
    fragment = ""
    if "#" in url:
        url, fragment = url.split("#", 1)
        fragment = "#" + fragment
    print(f"{url}{joiner}tp_preview={token}{fragment}")
    expiry = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(expires))
    print(f"works until {expiry}; shows {args.campaign} whatever its rules say", file=sys.stderr)
    return 0


def webhooks(settings: Settings, args: argparse.Namespace) -> int:
    """List the outbox (docs/webhooks.md#the-outbox), or queue failed rows again."""
    with store.database(settings.database_path) as conn:
        if args.action == "retry":
            if bool(args.ids) == bool(args.all_failed):
                raise ConfigError("webhooks retry: give row ids or --all-failed")
            with store.immediate(conn):
                count = store.retry_webhooks(
                    conn, now=time.time(), ids=args.ids, all_failed=args.all_failed
                )
            print(f"{count} webhook(s) queued again")
            return 0 if count or args.all_failed else 1
        counts, rows = store.webhook_outbox(conn, limit=args.limit)
    try:
        endpoints = rules_module.load(settings.rules_dir).site.webhooks
    except TouchpointError:  # the outbox is still worth seeing with broken rules
        endpoints = {}
    summary = {
        name: {
            **counts.get(name, {"pending": 0, "delivered": 0, "failed": 0}),
            "configured": name in endpoints,
            "ready": name in endpoints and endpoints[name].ready,
        }
        for name in sorted(set(counts) | set(endpoints))
    }
    if args.json:
        print(json.dumps({"endpoints": summary, "rows": rows}, indent=2))
        return 0
    print(f"{'endpoint':<20} {'pending':>8} {'delivered':>10} {'failed':>7}")
    for name, n in summary.items():
        note = ""
        if not n["configured"]:
            note = "  not in site.yaml: its rows wait"
        elif not n["ready"]:
            note = f"  {endpoints[name].secret_env} is not set: its rows wait"
        print(f"{name:<20} {n['pending']:>8} {n['delivered']:>10} {n['failed']:>7}{note}")
    if rows:
        print()
    for row in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(row["next_attempt_at"]))
        status = f"next attempt {when} UTC" if row["state"] == "pending" else "failed"
        if row["lease_until"] and row["lease_until"] > time.time():
            status = "being sent"
        error = f": {row['last_error']}" if row["last_error"] else ""
        print(f"#{row['id']} {row['endpoint']} {row['event']} — {status} after "
              f"{row['attempts']} attempt(s){error}")  # fmt: skip
    return 0


def serve(settings: Settings, overrides: dict[str, Any]) -> int:
    import uvicorn

    # Fail before forking workers: bad rules, an unreadable key, database or geolocation
    # database end here, once.
    geolocation.open_source(settings.geoip_database)
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
    # Touchpoint's own messages (rules reloaded, what the purge deleted) next to uvicorn's.
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["loggers"]["touchpoint"] = {
        "handlers": ["default"], "level": settings.log_level.upper(), "propagate": False
    }  # fmt: skip
    uvicorn.run(
        "touchpoint.app:create_app_from_env",
        log_config=log_config,
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
