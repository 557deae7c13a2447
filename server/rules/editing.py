"""Editing one rules file from the console (docs/admin.md#editing-rules): read it with its
version, check a changed text with the checks of ``touchpoint check``, save it so that the
server never loads half of it, keep every version with who saved it and when, restore one.

- **No lost update.** A read returns the file's version (a digest of its bytes); a save names
  the version it was made from and is refused (409) when the file changed since, in the console
  or on disk. The saves of every worker take one lock (a file lock in the history folder).
- **Never invalid.** The changed folder is checked in a copy first; a text with an error is
  refused (422) with its problems as ``file:line:column``, and nothing is written.
- **Atomic.** The text goes to a hidden temporary file beside the target, is flushed to disk
  and renamed over it (rules/folder.py ignores hidden files): the reloader sees the old file or
  the new one, never a part.
- **History.** ``DATA_DIR/rules-history/``: the texts by digest and one JSON line per version
  (file, when, who, what). A file changed on disk since its last recorded version is recorded as
  it was (``on disk``) before a save replaces it, so a restore can always go back to it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import RequestError
from ..syntax.files import Problem
from . import folder
from . import ruleset as rules_module

HISTORY = "rules-history"
MAX_BYTES = 256 * 1024
# A new file's name: a YAML file of the folder or a template, without folders of its own.
_NEW_NAME = re.compile(r"(?:[a-z0-9][a-z0-9_-]*\.ya?ml|templates/[a-z0-9][a-z0-9_.-]*\.html)")


@dataclass(frozen=True)
class Draft:
    """A rules file as read: its name relative to the folder, its text and version ("" for a
    file that does not exist yet)."""

    name: str
    text: str
    version: str


@dataclass(frozen=True)
class Revision:
    """One recorded version of a file."""

    id: int
    file: str
    at: float
    author: str
    action: str  # "save", "restore of #N" or "on disk"
    digest: str


class Conflict(RequestError):
    """The file changed since it was opened: saving would overwrite someone else's change."""

    status = 409

    def __init__(self, current: Draft) -> None:
        super().__init__(
            f"{current.name} changed since you opened it (in the console or on disk):"
            " open it again, then apply your change"
        )
        self.current = current


class Invalid(RequestError):
    """The changed rules do not pass the checks; nothing was written."""

    status = 422

    def __init__(self, problems: list[Problem]) -> None:
        errors = [p for p in problems if p.severity == "error"]
        super().__init__(
            "; ".join(str(p) for p in errors[:3]) + (" ..." if len(errors) > 3 else "")
        )
        self.problems = problems


def version_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files(rules_dir: Path) -> list[str]:
    """The names of every file the rules are built from, as the console lists them."""
    return [p.relative_to(rules_dir).as_posix() for p in folder.paths(rules_dir)]


def _target(rules_dir: Path, name: str) -> Path:
    if name in files(rules_dir) or _NEW_NAME.fullmatch(name):
        return rules_dir / name
    raise RequestError(
        f"{name!r} is not a rules file: a name like offer.yaml or templates/offer.html",
        status=404,
    )


def read(rules_dir: Path, name: str) -> Draft:
    """The file ``name`` with its version; an empty draft for a new file's name."""
    path = _target(rules_dir, name)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Draft(name, "", "")
    return Draft(name, data.decode("utf-8", errors="replace"), version_of(data))


def check(
    rules_dir: Path, name: str, text: str, *, geolocation: bool | None = None
) -> list[Problem]:
    """Every problem of the rules folder with ``name`` holding ``text`` (errors, or the
    warnings of rules that load), named relative to the folder as ``check`` prints them."""
    return trial(rules_dir, name, text, geolocation=geolocation)[0]


def trial(
    rules_dir: Path, name: str, text: str, *, geolocation: bool | None = None
) -> tuple[list[Problem], rules_module.Ruleset | None]:
    """:func:`check`, and the rules the folder would load with ``text`` (None with an error):
    what the console simulates a change with before it is saved. The rules' templates are
    read from a copy that is gone when this returns: decide with them, never render."""
    _target(rules_dir, name)
    text = text.replace("\r\n", "\n")
    if len(text.encode()) > MAX_BYTES:
        return [Problem(name, 1, 1, "", f"larger than {MAX_BYTES // 1024} KiB")], None
    with tempfile.TemporaryDirectory(prefix="touchpoint-edit-") as tmp:
        copy = Path(tmp) / "rules"
        for other in files(rules_dir):
            (copy / other).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(rules_dir / other, copy / other)
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_text(text, encoding="utf-8")
        problems, ruleset = rules_module.check(copy, geolocation=geolocation)
        prefix = str(copy) + os.sep
        return [
            Problem(p.file.removeprefix(prefix), p.line, p.column, p.key, p.message, p.severity)
            for p in problems
        ], ruleset


class History:
    """The recorded versions of the rules files, in ``DATA_DIR/rules-history``."""

    def __init__(self, data_dir: Path | str) -> None:
        self.root = Path(data_dir) / HISTORY
        self.index = self.root / "index.jsonl"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One save at a time, across the workers of the server and the CLI."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def revisions(self, name: str | None = None) -> list[Revision]:
        """Every version of ``name`` (of all files without), the newest first."""
        try:
            lines = self.index.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        found = [Revision(**json.loads(line)) for line in lines if line.strip()]
        return [r for r in reversed(found) if name is None or r.file == name]

    def text(self, revision: Revision) -> str:
        return (self.root / "texts" / revision.digest).read_text(encoding="utf-8")

    def revision(self, name: str, revision_id: int) -> Revision:
        for revision in self.revisions(name):
            if revision.id == revision_id:
                return revision
        raise RequestError(f"{name} has no version #{revision_id}", status=404)

    def record(self, name: str, data: bytes, *, author: str, action: str, at: float) -> Revision:
        """Keep ``data`` as the newest version of ``name`` (call it holding :meth:`locked`)."""
        digest = version_of(data)
        texts = self.root / "texts"
        texts.mkdir(parents=True, exist_ok=True)
        if not (texts / digest).exists():
            _write_atomically(texts / digest, data)
        last = self.revisions()
        revision = Revision((last[0].id + 1) if last else 1, name, at, author, action, digest)
        with open(self.index, "a", encoding="utf-8") as index:
            index.write(json.dumps(revision.__dict__) + "\n")
            index.flush()
            os.fsync(index.fileno())
        return revision


def save(
    rules_dir: Path,
    history: History,
    name: str,
    text: str,
    *,
    version: str,
    author: str,
    at: float,
    action: str = "save",
    geolocation: bool | None = None,
) -> Revision:
    """Write ``text`` to the rules file ``name`` if it still has ``version`` and the folder
    passes the checks with it; record it in ``history``. Raises :class:`Conflict` or
    :class:`Invalid` (nothing written)."""
    path = _target(rules_dir, name)
    text = text.replace("\r\n", "\n")  # a browser sends a textarea's lines with CRLF
    data = text.encode("utf-8")
    with history.locked():
        current = read(rules_dir, name)
        if current.version != version:
            raise Conflict(current)
        problems = check(rules_dir, name, text, geolocation=geolocation)
        if any(p.severity == "error" for p in problems):
            raise Invalid(problems)
        recorded = history.revisions(name)
        if current.version and (not recorded or recorded[0].digest != current.version):
            history.record(
                name, current.text.encode("utf-8"), author="on disk", action="on disk", at=at
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, data)
        return history.record(name, data, author=author, action=action, at=at)


def restore(
    rules_dir: Path,
    history: History,
    name: str,
    revision_id: int,
    *,
    version: str,
    author: str,
    at: float,
    geolocation: bool | None = None,
) -> Revision:
    """Save the recorded version ``revision_id`` of ``name`` again (checked like any save)."""
    old = history.revision(name, revision_id)
    return save(
        rules_dir,
        history,
        name,
        history.text(old),
        version=version,
        author=author,
        at=at,
        action=f"restore of #{revision_id}",
        geolocation=geolocation,
    )


def _write_atomically(path: Path, data: bytes) -> None:
    """A hidden temporary file beside ``path``, flushed to disk, renamed over it; the folder's
    entry flushed too. The file keeps its mode."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "xb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(temporary, path.stat().st_mode & 0o777)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
