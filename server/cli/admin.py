"""``touchpoint admin user add | list | remove | password``: the console's users
(docs/admin.md#users)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from typing import Any

from .. import store
from ..admin import users
from ..errors import ConfigError
from ..settings import Settings
from .folders import server_folder


def add_parser(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    admin = commands.add_parser(
        "admin", help="the console's users (docs/admin.md)", parents=parents
    )
    topics = admin.add_subparsers(dest="topic", required=True, metavar="TOPIC")
    user = topics.add_parser("user", help="add, list or remove console users; set a password")
    actions = user.add_subparsers(dest="action", required=True, metavar="ACTION")
    stdin_help = "read the password from the first line of standard input instead of a prompt"
    add = actions.add_parser("add", help="add a user; asks for the password twice")
    add.add_argument("name", help="the user name to sign in with, e.g. ana")
    add.add_argument(
        "--role",
        required=True,
        choices=users.ROLES,
        help="viewer: results, rules status, simulator; editor: also edits rules and looks up"
        " visitors",
    )
    add.add_argument("--password-stdin", action="store_true", help=stdin_help)
    actions.add_parser("list", help="names, roles, creation and password dates")
    remove = actions.add_parser("remove", help="delete a user; their sessions end at once")
    remove.add_argument("name", help="the user's name")
    password = actions.add_parser("password", help="set a new password; the user's sessions end")
    password.add_argument("name", help="the user's name")
    password.add_argument("--password-stdin", action="store_true", help=stdin_help)


def read_password(*, from_stdin: bool) -> str:
    """The new password: one line of standard input, or typed twice at a prompt."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not sys.stdin.isatty():
        raise ConfigError("no terminal to ask for the password: pass --password-stdin")
    else:
        password = getpass.getpass("Password: ")
        users.check_password(password)
        if getpass.getpass("Again: ") != password:
            raise ConfigError("the two passwords differ")
    return users.check_password(password)


def command(settings: Settings, args: argparse.Namespace) -> int:
    path = settings.database_url
    flag = "--database" if settings.database else "--data-dir"
    name = users.check_name(args.name) if hasattr(args, "name") else ""
    if args.action == "add":
        server_folder(path, what="console users", flag=flag)
        store.migrate(path)
        password_hash = users.hash_password(read_password(from_stdin=args.password_stdin))
        with store.database(path) as conn, store.immediate(conn):
            added = store.add_admin_user(
                conn, name, role=args.role, password_hash=password_hash, now=int(time.time())
            )
        if not added:
            raise ConfigError(
                f"a user {name!r} exists already; change their password with"
                f" touchpoint admin user password {name}"
            )
        return _done(
            args,
            {"name": name, "role": args.role, "added": True},
            f"user {name} added ({args.role})",
        )
    with store.database(path) as conn:
        if args.action == "list":
            return _list(args, store.admin_users(conn))
        if store.admin_user(conn, name) is None:
            raise ConfigError(f"no user {name!r}; touchpoint admin user list shows who there is")
        if args.action == "remove":
            with store.immediate(conn):
                store.remove_admin_user(conn, name)
            return _done(args, {"name": name, "removed": True}, f"user {name} removed")
        password_hash = users.hash_password(read_password(from_stdin=args.password_stdin))
        with store.immediate(conn):
            store.set_admin_password(conn, name, password_hash=password_hash, now=int(time.time()))
    return _done(
        args,
        {"name": name, "password_changed": True},
        f"password of {name} changed; their sessions have ended",
    )


def _done(args: argparse.Namespace, result: dict[str, Any], message: str) -> int:
    if args.json:
        print(json.dumps(result, indent=2))
    print(message, file=sys.stderr)
    return 0


def _list(args: argparse.Namespace, listed: list[store.AdminUser]) -> int:
    if args.json:
        rows = [
            {
                "name": u.name,
                "role": u.role,
                "created_at": u.created_at,
                "password_changed_at": u.password_changed_at,
            }
            for u in listed
        ]
        print(json.dumps({"users": rows}, indent=2))
        return 0
    for u in listed:
        created = time.strftime("%Y-%m-%d", time.gmtime(u.created_at))
        changed = time.strftime("%Y-%m-%d", time.gmtime(u.password_changed_at))
        print(f"{u.name}\t{u.role}\tcreated {created}\tpassword {changed}")
    if not listed:
        print(
            "no console users; add one with touchpoint admin user add NAME --role editor",
            file=sys.stderr,
        )
    return 0
