"""The ``touchpoint`` command's one parser: every command, its arguments and the settings it
takes as flags. Settings flags come from the settings table (:class:`~touchpoint.settings.
Settings`) through argparse parents, so a setting is spelt, explained and defaulted the same way
by every command that takes it."""

from __future__ import annotations

import argparse
import functools
from typing import Any

from .. import __version__
from ..api.keys import SCOPES
from ..settings import ENV_PREFIX, Settings


@functools.cache
def settings(*names: str, suppress: bool = False) -> argparse.ArgumentParser:
    """A parent parser with the flags of the settings ``names`` (all of them when none are
    named). ``suppress`` leaves a flag that is not given out of the namespace, so a subcommand's
    copy does not hide its parent command's."""
    parser = argparse.ArgumentParser(add_help=False)
    fields = {field.name: field for field in Settings.fields()}
    for name in names or tuple(fields):
        field = fields[name]
        flag = "--" + name.replace("_", "-")
        default = argparse.SUPPRESS if suppress else None
        if not names:  # serve: the full help, with the environment variable and default
            env = ENV_PREFIX + name.upper()
            help_text = f"{field.metadata['help']} [env {env}; default {field.default!r}]"
            if field.type in ("bool", bool):
                parser.add_argument(
                    flag,
                    dest=name,
                    action=argparse.BooleanOptionalAction,
                    default=default,
                    help=help_text,
                )
                continue
            parser.add_argument(
                flag, dest=name, default=default, metavar=name.upper(), help=help_text
            )
        else:
            parser.add_argument(flag, dest=name, default=default, metavar=name.upper())
    return parser


DATABASE = ("data_dir", "database")
RULES_AND_DATABASE = ("rules_dir", "data_dir", "database")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="touchpoint", description="Self-hosted personalisation and popup server."
    )
    parser.add_argument("--version", action="version", version=f"touchpoint {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the server", parents=[settings()])
    _rules_commands(commands)
    _apikey(commands)
    _webhooks(commands)
    _coupons(commands)
    _privacy(commands)
    return parser


def _rules_commands(commands: Any) -> None:
    commands.add_parser(
        "check",
        help="validate the rules files; prints file:line for each problem",
        parents=[settings("rules_dir", "geoip_database")],
    )
    simulate = commands.add_parser(
        "simulate",
        help="what a visitor would get on a page, and why every other campaign lost",
        parents=[settings(*RULES_AND_DATABASE, "consent_revision", "geoip_database")],
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
    schema = commands.add_parser(
        "schema",
        help="print the JSON Schema of campaign files, site.yaml, scoring.yaml, lifecycle.yaml"
        " or coupons.yaml, for editors; or the OpenAPI document of the server API or of the"
        " public routes",
    )
    kinds = ["campaign", "site", "scoring", "lifecycle", "coupons", "openapi", "openapi-public"]
    schema.add_argument("which", choices=kinds)
    preview = commands.add_parser(
        "preview",
        help="a signed link that shows one campaign on the live site, recording nothing",
        parents=[settings("rules_dir", "data_dir", "secret_key")],
    )
    preview.add_argument("campaign", help="the campaign id")
    preview.add_argument("--variant", help="the variant id (default: the first one that shows)")
    preview.add_argument("--url", default="", help="the page to open, e.g. https://shop.example/")
    preview.add_argument("--ttl", default="24h", help="how long the link works (default 24h)")


def _apikey(commands: Any) -> None:
    apikey = commands.add_parser(
        "apikey",
        help="create, list or revoke keys of the server API",
        parents=[settings("data_dir", "api_keys_file")],
    )
    keys = apikey.add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="create a key; its token is printed once")
    create.add_argument("name", help="who uses the key, e.g. shop or crm")
    create.add_argument(
        "--scope", action="append", default=[], choices=SCOPES, help="a scope (repeatable)"
    )
    keys.add_parser("list", help="names, scopes and creation dates (no tokens)")
    revoke = keys.add_parser("revoke", help="delete a key; requests with it get 401")
    revoke.add_argument("name")


def _webhooks(commands: Any) -> None:
    hooks = commands.add_parser(
        "webhooks",
        help="the webhook outbox: counts, pending and failed deliveries; retry; a new secret",
        parents=[settings(*RULES_AND_DATABASE)],
    )
    hooks.add_argument("--json", action="store_true", help="print the outbox as JSON")
    hooks.add_argument("--limit", type=int, default=50, help="rows to list (newest first)")
    actions = hooks.add_subparsers(dest="action")
    retry = actions.add_parser(
        "retry",
        help="send failed webhooks again, with fresh attempts",
        parents=[settings(*RULES_AND_DATABASE, suppress=True)],
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
    actions = coupons.add_subparsers(dest="action", required=True)
    paths = [settings(*RULES_AND_DATABASE)]
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
    listing = actions.add_parser(
        "list", help="free, assigned and redeemed codes per pool", parents=paths
    )
    listing.add_argument("--json", action="store_true", help="print the pools as JSON")


def _privacy(commands: Any) -> None:
    """The data subject requests and the purge (docs/privacy.md)."""
    person = argparse.ArgumentParser(add_help=False, parents=[settings(*DATABASE)])
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
    actions = consent.add_subparsers(dest="action", required=True)
    log = actions.add_parser("log", help="one person's consent answers", parents=[person])
    log.add_argument("--json", action="store_true", help="print the log as JSON")
    summary = actions.add_parser(
        "summary",
        help="answers per consent revision and method: accepted, rejected, customised",
        parents=[settings(*DATABASE)],
    )
    summary.add_argument("--since", help="from this date (YYYY-MM-DD, UTC) or Unix time")
    summary.add_argument("--until", help="before this date (YYYY-MM-DD, UTC) or Unix time")
    summary.add_argument("--json", action="store_true", help="print the totals as JSON")
    purge = commands.add_parser(
        "purge",
        help="delete what is past retention; per table, what went (docs/privacy.md)",
        parents=[
            settings(
                *DATABASE,
                "retention_events_days",
                "retention_profiles_days",
                "retention_consent_days",
                "webhook_keep_days",
                "purge_batch_rows",
            )
        ],
    )
    purge.add_argument("--dry-run", action="store_true", help="count only; change nothing")
    purge.add_argument("--json", action="store_true", help="print the counts as JSON")
