"""The ``touchpoint`` command's one parser: every command, its arguments and the settings it
takes as flags. Settings flags come from the settings table (:class:`~touchpoint.settings.
Settings`) through argparse parents, so a setting is spelt, explained and defaulted the same way
by every command that takes it.

The options every command shares (``--data-dir``, ``--rules-dir``, ``--json``) are added in one
place, :func:`share`, to every parser of the tree, so they work in any position: before the
command, between a command and its action, or at the end. Only the top-level parser gives them a
default; the others leave an option that is not given out of their namespace, since argparse
copies a subcommand's defaults over what an earlier position set.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
from collections.abc import Iterator
from typing import Any

from .. import __version__
from ..api.keys import SCOPES
from ..settings import ENV_PREFIX, Settings
from . import admin, db, demotraffic, report

SHARED_SETTINGS = ("data_dir", "rules_dir")
JSON_HELP = "print the result as JSON (docs/operations.md#the-touchpoint-command)"

# serve --help groups its flags by topic; a setting is in the first group whose name or prefix
# (ending in _) it matches, and tests/cli checks that every setting is in one.
TOPICS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("server", ("host", "port", "workers", "prefix", "log_level", "demo", "demo_dir")),
    (
        "network",
        (
            "forwarded_allow_ips",
            "allowed_origins",
            "max_body_bytes",
            "rate_limit_per_minute",
            "api_max_body_bytes",
        ),
    ),
    ("storage", ("data_dir", "database", "group_commit_ms", "api_keys_file")),
    ("rules", ("rules_dir", "reload_rules", "geoip_database")),
    (
        "privacy",
        (
            "secret_key",
            "identity_secret",
            "cookie_",
            "consent_revision",
            "data_depth",
            "ip_handling",
        ),
    ),
    ("retention", ("retention_", "purge_")),
    ("webhooks", ("webhook_",)),
    ("console", ("admin_",)),
)


def topic(name: str) -> str | None:
    """The ``serve --help`` group of the setting ``name``."""
    for title, members in TOPICS:
        if any(name == m or (m.endswith("_") and name.startswith(m)) for m in members):
            return title
    return None


def _add_setting(
    parser: argparse._ActionsContainer,
    field: dataclasses.Field[Any],
    *,
    default: Any = argparse.SUPPRESS,
) -> None:
    """The flag of one setting, explained from the settings table."""
    name = field.name
    flag = "--" + name.replace("_", "-")
    help_text = (
        f"{field.metadata['help']} [env {ENV_PREFIX + name.upper()}; default {field.default!r}]"
    )
    if field.type in ("bool", bool):
        parser.add_argument(
            flag, dest=name, action=argparse.BooleanOptionalAction, default=default, help=help_text
        )
    else:
        parser.add_argument(flag, dest=name, default=default, metavar=name.upper(), help=help_text)


@functools.cache
def settings(*names: str) -> argparse.ArgumentParser:
    """A parent parser with the flags of the settings ``names``; all of them, grouped by topic,
    when none are named (``serve``). A flag that is not given stays out of the namespace, so it
    never hides the same flag given before a subcommand."""
    parser = argparse.ArgumentParser(add_help=False)
    fields = {field.name: field for field in Settings.fields()}
    if names:
        for name in names:
            _add_setting(parser, fields[name])
        return parser
    groups = {title: parser.add_argument_group(title + " settings") for title, _ in TOPICS}
    for field in fields.values():
        _add_setting(groups[topic(field.name) or "server"], field)
    return parser


def parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser of the tree under ``parser`` with the command words that reach it, parents
    before their subcommands."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from parsers(sub, (*path, name))


def share(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the shared options to every parser of the tree that lacks them (the one place they
    are added), and a command's settings flags to its actions (``apikey create ...
    --api-keys-file F`` as well as ``apikey --api-keys-file F create ...``). The top-level
    parser holds the shared options' defaults."""
    fields = {field.name: field for field in Settings.fields()}

    def visit(each: argparse.ArgumentParser, inherited: tuple[str, ...], *, top: bool) -> None:
        have = {a.dest for a in each._actions if a.option_strings}
        for name in dict.fromkeys((*SHARED_SETTINGS, *inherited)):
            if name not in have:
                _add_setting(each, fields[name], default=None if top else argparse.SUPPRESS)
        if "json" not in have:
            each.add_argument(
                "--json",
                action="store_true",
                default=False if top else argparse.SUPPRESS,
                help=JSON_HELP,
            )
        own = tuple(a.dest for a in each._actions if a.dest in fields and a.option_strings)
        for action in each._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    visit(sub, (*inherited, *own), top=False)

    visit(parser, (), top=True)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="touchpoint",
        description="Self-hosted personalisation and popup server. --data-dir, --rules-dir and"
        " --json work with every command, before or after it.",
    )
    parser.add_argument("--version", action="version", version=f"touchpoint {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "serve",
        help="run the server",
        description="Run the server. Every setting is a flag; a flag wins over the setting's"
        " environment variable, which wins over the default (docs/operations.md#settings).",
        usage="%(prog)s [-h] [--json] [SETTING FLAGS ...]",
        parents=[settings()],
    )
    _rules_commands(commands)
    _apikey(commands)
    _webhooks(commands)
    db.add_parser(commands, [settings("database")])
    _coupons(commands)
    _privacy(commands)
    report.add_parser(commands, [settings("database")])
    demotraffic.add_parser(commands, [settings("prefix")])
    admin.add_parser(commands, [settings("database")])
    return share(parser)


def _rules_commands(commands: Any) -> None:
    commands.add_parser(
        "check",
        help="validate the rules files; prints file:line for each problem",
        description="Validate the rules folder: every problem as file:line:column: key: message"
        " on standard error, then a summary (1 error, 1 warning). Exit status 1 when there is"
        " an error; warnings (a campaign that never shows) do not fail.",
        parents=[settings("geoip_database")],
    )
    simulate = commands.add_parser(
        "simulate",
        help="what a visitor would get on a page, and why every other campaign lost",
        description="What a visitor would get on a page, and why every other campaign lost"
        " (docs/rules.md#what-would-a-visitor-get-and-why).",
        parents=[settings("database", "consent_revision", "geoip_database")],
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
    simulate.add_argument(
        "--at",
        metavar="TIME",
        help="the time: a date (2026-12-24, midnight), a date and time (2026-12-24T18:00) in the"
        " site's time zone (site.yaml), one with an offset (2026-12-24T18:00+01:00) or Unix"
        " seconds; default: now",
    )
    kinds = {
        "campaign": "a campaign file",
        "site": "site.yaml",
        "scoring": "scoring.yaml",
        "lifecycle": "lifecycle.yaml",
        "coupons": "coupons.yaml",
        "openapi": "the OpenAPI document of the server API",
        "openapi-public": "the OpenAPI document of the public routes",
    }
    schema = commands.add_parser(
        "schema",
        help="print the JSON Schema of a kind of rules file, or an OpenAPI document",
        description="Print the JSON Schema of one kind of rules file, for editors"
        " (docs/rules.md#editor-support), or an OpenAPI document (docs/api.md). The output is"
        " JSON with or without --json.",
    )
    schema.add_argument(
        "which",
        choices=list(kinds),
        metavar="WHICH",
        help="what to print: " + "; ".join(f"{k}: {v}" for k, v in kinds.items()),
    )
    preview = commands.add_parser(
        "preview",
        help="a signed link that shows one campaign on the live site, recording nothing",
        parents=[settings("secret_key")],
    )
    preview.add_argument("campaign", help="the campaign id")
    preview.add_argument("--variant", help="the variant id (default: the first one that shows)")
    preview.add_argument("--url", default="", help="the page to open, e.g. https://shop.example/")
    preview.add_argument("--ttl", default="24h", help="how long the link works (default 24h)")


def _apikey(commands: Any) -> None:
    apikey = commands.add_parser(
        "apikey",
        help="create, list or revoke keys of the server API",
        parents=[settings("api_keys_file")],
    )
    keys = apikey.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = keys.add_parser("create", help="create a key; its token is printed once")
    create.add_argument("name", help="who uses the key, e.g. shop or crm")
    create.add_argument(
        "--scope", action="append", default=[], choices=SCOPES, help="a scope (repeatable)"
    )
    keys.add_parser("list", help="names, scopes and creation dates (no tokens)")
    revoke = keys.add_parser("revoke", help="delete a key; requests with it get 401")
    revoke.add_argument("name", help="the key's name")


def _webhooks(commands: Any) -> None:
    hooks = commands.add_parser(
        "webhooks",
        help="the webhook outbox: counts, pending and failed deliveries; retry; a new secret",
        parents=[settings("database")],
    )
    hooks.add_argument("--limit", type=int, default=50, help="rows to list (newest first)")
    actions = hooks.add_subparsers(dest="action", metavar="ACTION")
    retry = actions.add_parser(
        "retry",
        help="send failed webhooks again, with fresh attempts",
        parents=[settings("database")],
    )
    retry.add_argument("ids", nargs="*", type=int, metavar="ID", help="outbox row ids")
    retry.add_argument("--all-failed", action="store_true", help="every failed row")
    actions.add_parser(
        "secret", help="print a new endpoint secret (whsec_..., the Standard Webhooks form)"
    )


def _coupons(commands: Any) -> None:
    coupons = commands.add_parser(
        "coupons", help="coupon pools: import codes, generate codes in advance, list the stock"
    )
    actions = coupons.add_subparsers(dest="action", required=True, metavar="ACTION")
    paths = [settings("database")]
    load = actions.add_parser(
        "import",
        help="add the codes of a CSV file (first column, or the one headed code)",
        parents=paths,
    )
    load.add_argument("pool", help="an imported pool of coupons.yaml")
    load.add_argument("file", help="the CSV file; - reads standard input")
    generate = actions.add_parser(
        "generate",
        help="make codes of a generated pool in advance; prints them, one a line",
        parents=paths,
    )
    generate.add_argument("pool", help="a generated pool of coupons.yaml")
    generate.add_argument("count", type=int, help="how many codes")
    actions.add_parser("list", help="free, assigned and redeemed codes per pool", parents=paths)


def _privacy(commands: Any) -> None:
    """The data subject requests and the purge (docs/privacy.md)."""
    person = argparse.ArgumentParser(add_help=False, parents=[settings("database")])
    who = person.add_mutually_exclusive_group(required=True)
    who.add_argument("--visitor", metavar="ID", help="a visitor id (from the cookie or an export)")
    who.add_argument("--email", metavar="ADDRESS", help="the e-mail address given to identify")
    who.add_argument("--customer-id", metavar="ID", help="the customer id given to identify")
    export = commands.add_parser(
        "export",
        help="everything stored about one person, as JSON (GDPR Art. 15, 20)",
        parents=[person],
    )
    export.add_argument("--output", "-o", help="write to this file (mode 0600), not stdout")
    erase = commands.add_parser(
        "erase", help="erase everything stored about one person (GDPR Art. 17)", parents=[person]
    )
    erase.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    consent = commands.add_parser("consent", help="proof of consent: one person's log, totals")
    actions = consent.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("log", help="one person's consent answers", parents=[person])
    summary = actions.add_parser(
        "summary",
        help="answers per consent revision and method: accepted, rejected, customised",
        parents=[settings("database")],
    )
    summary.add_argument(
        "--since",
        metavar="TIME",
        help="from this time: a date (YYYY-MM-DD, UTC), a date and time (ISO 8601, UTC unless"
        " it has an offset) or Unix seconds",
    )
    summary.add_argument("--until", metavar="TIME", help="before this time, written as --since")
    purge = commands.add_parser(
        "purge",
        help="delete what is past retention; per table, what went (docs/privacy.md)",
        parents=[
            settings(
                "database",
                "retention_events_days",
                "retention_profiles_days",
                "retention_consent_days",
                "webhook_keep_days",
                "purge_batch_rows",
            )
        ],
    )
    purge.add_argument("--dry-run", action="store_true", help="count only; change nothing")
