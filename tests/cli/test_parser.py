"""The touchpoint command's parser: shared options everywhere, every option explained, serve's
settings grouped by topic."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest
from touchpoint.cli import parser as cli_parser
from touchpoint.settings import Settings

PARSER = cli_parser.build_parser()
SHARED = {
    "--data-dir": ("data_dir", "D"),
    "--rules-dir": ("rules_dir", "R"),
    "--json": ("json", True),
}


def runnable() -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command a user can run: the leaves of the tree, and ``webhooks``, whose action is
    optional."""
    for path, each in cli_parser.parsers(PARSER):
        subcommands = [a for a in each._actions if isinstance(a, argparse._SubParsersAction)]
        if path and (not subcommands or not subcommands[0].required):
            yield path, each


def required_arguments(each: argparse.ArgumentParser) -> list[str]:
    """Values for what ``each`` requires: its positionals, its required options and one of each
    required group."""
    words: list[str] = []
    for action in each._actions:
        if action.option_strings and action.required:  # admin user add --role
            value = str(next(iter(action.choices))) if action.choices else "1"
            words += [action.option_strings[0], value]
            continue
        if action.option_strings or isinstance(action, argparse._SubParsersAction):
            continue
        if action.nargs in ("*", "?"):
            continue
        words.append(str(next(iter(action.choices))) if action.choices else "1")
    for group in each._mutually_exclusive_groups:
        if group.required:
            words += [group._group_actions[0].option_strings[0], "x"]
    return words


COMMANDS = [pytest.param(path, id=" ".join(path)) for path, _ in runnable()]


def test_the_walk_finds_every_command() -> None:
    names = {" ".join(path) for path, _ in runnable()}
    assert {
        "serve",
        "check",
        "apikey create",
        "webhooks",
        "webhooks retry",
        "consent summary",
    } <= names
    assert "apikey" not in names and "coupons" not in names  # they need an action
    assert {"report", "report campaign", "report lifecycle", "demo-traffic"} <= names
    assert {"admin user add", "admin user list", "admin user password"} <= names
    assert "db copy" in names
    assert len(names) == 29


@pytest.mark.parametrize("path", COMMANDS)
def test_every_command_takes_the_shared_options_in_every_position(path: tuple[str, ...]) -> None:
    each = dict(runnable())[path]
    rest = required_arguments(each)
    for flag, (dest, expected) in SHARED.items():
        option = [flag] if flag == "--json" else [flag, str(expected)]
        # before the command, between the command words, and after everything
        for at in range(len(path) + 1):
            argv = [*path[:at], *option, *path[at:], *rest]
            args = PARSER.parse_args(argv)
            assert getattr(args, dest) == expected, argv
        args = PARSER.parse_args([*path, *rest, *option])
        assert getattr(args, dest) == expected
    # not given: the defaults that leave the settings alone
    args = PARSER.parse_args([*path, *rest])
    assert (args.data_dir, args.rules_dir, args.json) == (None, None, False)


@pytest.mark.parametrize("path", COMMANDS)
def test_a_commands_settings_flags_work_after_its_action(path: tuple[str, ...]) -> None:
    """A settings flag of ``apikey`` (--api-keys-file) or ``webhooks`` (--database) works
    after the action too, like the shared options."""
    tree = dict(cli_parser.parsers(PARSER))
    fields = {field.name for field in Settings.fields()}
    rest = required_arguments(tree[path])
    for depth in range(1, len(path)):
        for action in tree[path[:depth]]._actions:
            if action.dest in fields and action.option_strings:
                flag = action.option_strings[0]
                args = PARSER.parse_args([*path, *rest, flag, "x"])
                assert getattr(args, action.dest) == "x", (path, flag)


def test_the_last_of_two_positions_wins() -> None:
    args = PARSER.parse_args(["--data-dir", "A", "apikey", "--data-dir", "B", "list"])
    assert args.data_dir == "B"
    args = PARSER.parse_args(["apikey", "--data-dir", "A", "list", "--data-dir", "C"])
    assert args.data_dir == "C"


def test_every_option_and_argument_is_explained() -> None:
    for path, each in cli_parser.parsers(PARSER):
        for action in each._actions:
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    assert choice.help, f"{' '.join(path)} {choice.dest}: no help"
                continue
            name = "/".join(action.option_strings) or action.dest
            assert action.help and action.help != argparse.SUPPRESS, (
                f"touchpoint {' '.join(path)} {name}: no help"
            )


def test_settings_flags_are_explained_from_the_settings_table() -> None:
    fields = {field.name: field for field in Settings.fields()}
    seen = set()
    for path, each in cli_parser.parsers(PARSER):
        for action in each._actions:
            field = fields.get(action.dest)
            if field is not None and action.option_strings:
                assert action.help is not None
                assert action.help.startswith(field.metadata["help"]), (path, action.dest)
                assert f"TOUCHPOINT_{field.name.upper()}" in action.help
                seen.add(field.name)
    assert seen == set(fields)  # serve takes them all


def help_of(*words: str) -> str:
    each = dict(cli_parser.parsers(PARSER))[words]
    return " ".join(each.format_help().split())  # argparse wraps lines


def test_check_and_schema_explain_their_options_and_choices() -> None:
    check = help_of("check")
    assert "1 error, 1 warning" in check
    assert "--geoip-database" in check and "MaxMind-format country database" in check
    assert "--json print the result as JSON" in check
    schema = help_of("schema")
    for kind, what in [
        ("campaign", "a campaign file"),
        ("site", "site.yaml"),
        ("openapi-public", "the OpenAPI document of the public routes"),
    ]:
        assert f"{kind}: {what}" in schema


def test_serve_groups_every_setting_by_topic() -> None:
    text = dict(cli_parser.parsers(PARSER))[("serve",)].format_help()
    blocks = {block.split(":\n")[0]: block for block in text.split("\n\n") if ":\n" in block}
    titles = [title + " settings" for title, _ in cli_parser.TOPICS]
    assert [b for b in blocks if b.endswith(" settings")] == titles
    for field in Settings.fields():
        title = cli_parser.topic(field.name)
        assert title is not None, f"setting {field.name} is in no group of serve --help"
        flag = "--" + field.name.replace("_", "-")
        assert flag in blocks[title + " settings"], (field.name, title)
    assert "--port" not in blocks["options"]
    assert set(blocks) >= {"storage settings", "rules settings", "webhooks settings"}
