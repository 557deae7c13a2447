"""The ``touchpoint`` command (docs/operations.md): one parser (cli/parser.py) and one dispatch
table, :data:`COMMANDS`. Each command's body sits with its domain: ``simulate`` in
decide/simulation.py, ``coupons`` in coupons/stock.py, ``export``, ``erase`` and ``consent`` in
privacy/subjects.py, ``purge`` in privacy/retention.py; the commands that only print what
another package computes (``serve``, ``check``, ``schema``, ``preview``, ``apikey``,
``webhooks``, ``admin``) are the modules beside this one.

Every setting in :class:`~touchpoint.settings.Settings` is a ``--flag`` of ``serve``; errors in
the settings or the rules end the command with one clear message and exit status 1.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Sequence

from ..coupons import stock
from ..decide import simulation
from ..errors import TouchpointError
from ..privacy import retention, subjects
from ..rules.couponfiles import load_pools
from ..settings import Settings
from ..syntax.files import RulesError
from . import admin, db, demotraffic, keys, report, rules, serve, webhooks
from .folders import server_folder
from .parser import build_parser


def coupons(settings: Settings, args: argparse.Namespace) -> int:
    """``touchpoint coupons import | generate | list`` with the pools of coupons.yaml."""
    pools, problems = load_pools(settings.rules_dir)
    if any(p.severity == "error" for p in problems):
        raise RulesError(problems)
    if args.action != "list":  # import and generate create the database in the server's folder
        flag = "--database" if settings.database else "--data-dir"
        server_folder(settings.database_url, what="coupon codes", flag=flag)
    return stock.command(settings, args, pools)


Command = Callable[[Settings, argparse.Namespace], int]
COMMANDS: dict[str, Command] = {
    "serve": serve.serve,
    "check": rules.check,
    "schema": rules.schema,
    "simulate": simulation.command,
    "preview": rules.preview,
    "apikey": keys.apikey,
    "webhooks": webhooks.webhooks,
    "db": db.command,
    "coupons": coupons,
    "export": subjects.run,
    "erase": subjects.run,
    "consent": subjects.run,
    "purge": retention.command,
    "report": report.command,
    "demo-traffic": demotraffic.command,
    "admin": admin.command,
}


# Options whose value is a visitor id: an id is URL-safe base64 and may start with "-", which
# argparse would take for an option ("--visitor -fX..." -> "expected one argument").
ID_OPTIONS = ("--visitor",)


def _glue_ids(argv: Sequence[str]) -> list[str]:
    """``--visitor ID`` as ``--visitor=ID``, so that an id starting with "-" stays its value."""
    out, args = [], list(argv)
    while args:
        arg = args.pop(0)
        if arg in ID_OPTIONS and args:
            arg = f"{arg}={args.pop(0)}"
        out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(_glue_ids(sys.argv[1:] if argv is None else argv))
    # Only settings are overrides; a command's own arguments (url, --visitor ...) are not.
    names = {field.name for field in Settings.fields()}
    args.overrides = {k: v for k, v in vars(args).items() if k in names and v is not None}
    try:
        status = COMMANDS[args.command](Settings.load(args.overrides), args)
        sys.stdout.flush()  # a closed pipe fails here, not in the interpreter's exit
        return status
    except BrokenPipeError:
        # The reader went away (touchpoint simulate --json | head): stop quietly, as cat does.
        # Python flushes stdout again on exit; point it at /dev/null so that cannot fail too.
        # https://docs.python.org/3/library/signal.html#note-on-sigpipe
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except TouchpointError as exc:
        print(f"touchpoint: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # an unreadable key file, rules folder or database folder
        print(f"touchpoint: {exc.filename or ''}: {exc.strerror}", file=sys.stderr)
        return 1
