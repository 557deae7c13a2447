"""Docs are part of done: every setting and every rules key is documented."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import io
import os
import re
import shlex
import shutil
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from touchpoint import cli, store
from touchpoint.app import create_app
from touchpoint.audience.fields import FIELDS
from touchpoint.rules import profilefiles
from touchpoint.rules.ruleset import KEYS, TRIGGERS
from touchpoint.settings import Settings
from touchpoint.syntax.times import instant

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"


def test_every_setting_is_documented() -> None:
    text = (DOCS / "operations.md").read_text()
    for field in Settings.fields():
        flag = "--" + field.name.replace("_", "-")
        row = f"| `{field.name}` | `{flag}` | `TOUCHPOINT_{field.name.upper()}` |"
        assert row in text, f"setting {field.name} is missing from docs/operations.md"
        assert field.metadata["help"] in text


def test_every_rules_key_is_documented() -> None:
    text = (DOCS / "rules.md").read_text()
    for section, keys in KEYS.items():
        for key in keys:
            documented = f"`{key}" in text or f".{key}`" in text
            assert documented, f"rules key {section}.{key} is missing from docs/rules.md"


def test_every_condition_field_and_trigger_is_documented() -> None:
    text = (DOCS / "rules.md").read_text()
    # The first cells of table rows: where the reference names fields and triggers.
    first_cells = "".join(
        line.split("|")[1] for line in text.splitlines() if line.startswith("| `")
    )
    for name, spec in FIELDS.items():
        if name == "campaign":
            shown = "`campaign.ID.seen`"
        elif spec.dynamic:
            shown = f"`{name}.NAME`"
        else:
            shown = f"`{name}`"
        assert shown in first_cells, f"condition field {name} is missing from docs/rules.md"
    for trigger in TRIGGERS:
        assert f" `{trigger}" in first_cells, f"trigger {trigger} is missing from docs/rules.md"


def test_every_scoring_and_lifecycle_key_is_documented() -> None:
    text = (DOCS / "profiles.md").read_text()
    first_cells = "".join(
        line.split("|")[1] for line in text.splitlines() if line.startswith("| `")
    )
    for section, keys in profilefiles.KEYS.items():
        for key in keys:
            assert f"`{key}`" in first_cells or f".{key}`" in first_cells, (
                f"{section}.{key} is missing from docs/profiles.md"
            )


# --- examples of command output -----------------------------------------------------------------
#
# Every ```console block of README.md and docs/*.md is run: each `$ touchpoint ...` line, in a
# site folder holding the shipped rules and a database (`rules/`, `data/`, the working folder),
# must print what the lines after it show, standard error and output as a terminal shows them.
# `$ export NAME=value` sets a variable for the block. A fenced block right before it that names
# a file (see CONSOLE; `# added to rules/FILE` appends) is written there first.
# The database holds what the examples talk about: Ada's consent answers and a few answers of
# others, and four webhooks of `sales`, at fixed times. Only visitor ids are normalised.

RULES_FILE = re.compile(r"# ((?:added to )?rules/\S+)\n")


def fenced_blocks(text: str) -> list[tuple[str, str, int, int]]:
    """Every fenced block of a Markdown text: info string, body, first and last line (from 1)."""
    blocks, opened, body = [], None, []
    for number, line in enumerate(text.splitlines(), start=1):
        if opened is None and line.startswith("```"):
            opened, body = (line[3:].strip(), number), []
        elif opened is not None and line == "```":
            blocks.append((opened[0], "".join(body), opened[1], number))
            opened = None
        elif opened is not None:
            body.append(line + "\n")
    return blocks


VISITOR = re.compile(r"(?<![\w-])(?=[\w-]*\d)[A-Za-z0-9_-]{22}(?![\w-])")  # 16 random bytes
SECRET = re.compile(r"whsec_[A-Za-z0-9+/]{30,}={0,2}")


@dataclasses.dataclass(frozen=True)
class Example:
    doc: str
    line: int
    files: dict[str, str]
    commands: list[tuple[str, list[str]]]  # command line, the lines it prints

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}"


def console_examples() -> list[Example]:
    """The console blocks, each with the file that the block right before it (one blank line
    between) names: in its info string (```csv file=codes.csv) or, in YAML, on its first line
    (# rules/spring.yaml)."""
    examples = []
    for path in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        blocks = fenced_blocks(path.read_text())
        for before, (info, body, first, _) in zip([None, *blocks], blocks, strict=False):
            if info != "console":
                continue
            files = {}
            if before is not None and before[3] == first - 2:
                named = RULES_FILE.match(before[1])
                if "file=" in before[0]:
                    files[before[0].split("file=")[1]] = before[1]
                elif named:
                    files[named[1]] = before[1][named.end() :]
            commands: list[tuple[str, list[str]]] = []
            for line in body.splitlines():
                if line.startswith("$ "):
                    commands.append((line[2:], []))
                else:
                    commands[-1][1].append(line)
            examples.append(Example(str(path.relative_to(ROOT)), first, files, commands))
    return examples


EXAMPLES = console_examples()


def test_command_output_is_shown_in_console_blocks() -> None:
    """A `$ touchpoint` line (a command with its output) outside a console block would escape
    the check below."""
    for path in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        for info, body, first, _ in fenced_blocks(path.read_text()):
            if info != "console":
                assert "\n$ touchpoint" not in "\n" + body, f"{path.name}:{first}: ```console"


def test_the_examples_are_found() -> None:
    names = {e.doc for e in EXAMPLES}
    assert {"docs/rules.md", "docs/privacy.md", "docs/webhooks.md"} <= names
    commands = " ".join(c for e in EXAMPLES for c, _ in e.commands)
    for command in ("touchpoint check", "touchpoint simulate", "touchpoint webhooks"):
        assert command in commands


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_site(tmp_path_factory.mktemp("site"))


def build_site(root: Path) -> Path:
    """A site folder as the examples find it: the shipped rules, a database with answers."""
    shutil.copytree(ROOT / "rules", root / "rules")
    settings = Settings.load(
        {"data_dir": str(root / "data"), "rules_dir": str(root / "rules")}, environ={}
    )
    everything = ["measurement", "personalisation", "marketing"]
    answers = [  # (when, who, method, granted): three visitors, then Ada twice
        ("2026-12-01T08:02:51", "", "banner-accept-all", everything),
        ("2026-12-01T08:30:17", "", "banner-reject-all", []),
        ("2026-12-01T08:45:40", "", "banner-custom", ["measurement"]),
        ("2026-12-01T09:14:03", "ada@example.com", "banner-accept-all", everything),
        ("2026-12-03T18:40:12", "", "banner-custom", ["measurement", "personalisation"]),
    ]
    with TestClient(create_app(settings)) as client:
        for when, email, method, granted in answers:
            at = instant(when, tz=dt.UTC)
            client.app.state.tp.now = lambda at=at: at
            if email or method != "banner-custom" or granted == ["measurement"]:
                client.cookies.clear()  # another visitor, except for Ada's second answer
            client.post("/tp/v1/consent", json={"granted": granted, "method": method})
            if email:
                client.post("/tp/v1/identify", json={"email": email})
    now = instant("2026-12-04T10:00:00", tz=dt.UTC)
    with store.database(settings.database_url) as conn, store.immediate(conn):
        for n, event in enumerate(["score.threshold", "stage.changed"] * 2):
            store.queue_webhook(
                conn, endpoint="sales", event=event, key=f"k{n}", body="{}", now=now
            )
        # 1 and 2 delivered; 4 waits after two attempts; 3 failed after twenty
        for attempt in range(1, 21):
            for row in store.claim_webhooks(
                conn, ["sales"], now=now, owner="w", lease_until=now, limit=4
            ):
                if row.id <= 2:
                    store.webhook_delivered(conn, row.id, now=now, status=200)
                    continue
                pending, last = row.id == 4, attempt == (2 if row.id == 4 else 20)
                store.webhook_attempt_failed(
                    conn,
                    row.id,
                    owner="w",
                    status=502 if pending else None,
                    error="HTTP 502" if pending else "ConnectError: [Errno 111] Connection refused",
                    retry_at=(now + 300 if pending else None) if last else now,
                )
    return root


def normalised(lines: list[str], visitors: list[str]) -> list[str]:
    """``lines`` without what varies from run to run: the visitor ids (the site's, or in the
    docs any 22 characters of base64url with a digit) and new webhook secrets. Times do not
    vary: the examples give simulate its --at, and the site's answers and webhooks have fixed
    times."""
    text = "\n".join(lines).rstrip()
    for visitor in visitors:
        text = text.replace(visitor, "VISITOR")
    text = SECRET.sub("whsec_SECRET", text)  # `touchpoint webhooks secret` makes a new one
    return VISITOR.sub("VISITOR", text).splitlines()


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_command_output_in_the_docs_is_real(
    example: Example, site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "site"
    shutil.copytree(site, work)
    monkeypatch.chdir(work)
    for name in [n for n in os.environ if n.startswith("TOUCHPOINT_")]:
        monkeypatch.delenv(name)
    for name, text in example.files.items():
        if name.startswith("added to "):
            text = (work / name.removeprefix("added to ")).read_text() + text
        (work / name.removeprefix("added to ")).write_text(text)
    with store.database(work / "data" / "touchpoint.db") as conn:
        visitors = [row[0] for row in conn.execute("SELECT id FROM visitors")]
    for command, shown in example.commands:
        words = shlex.split(command, comments=True)
        if words[0] == "export":
            name, _, value = words[1].partition("=")
            monkeypatch.setenv(name, value)
            continue
        assert words[0] == "touchpoint", f"{example}: only touchpoint commands are run"
        terminal = io.StringIO()
        with contextlib.redirect_stdout(terminal), contextlib.redirect_stderr(terminal):
            cli.main(words[1:])
        printed = terminal.getvalue().splitlines()
        assert normalised(printed, visitors) == normalised(shown, visitors), (
            f"{example}: $ {command}"
        )
