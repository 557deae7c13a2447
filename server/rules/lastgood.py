"""The last good rules and the outcome of the last attempt, shared by the workers through the
data folder.

Each worker of ``touchpoint serve --workers=N`` watches the rules folder itself, so on its own
each would decide at its own moment, and a worker started while the folder is invalid would have
no good set at all. The worker that accepts a set therefore keeps a copy of its files in
``data/last-good-rules/<digest>/`` (written to a temporary folder, then renamed) and points
``current.json`` at it; every attempt's outcome goes to ``status.json``. Both are written to a
temporary file and renamed, so a reader sees the old or the new one, never half. A worker that
finds the folder invalid, or starts while it is, serves the copy (checked against its digest);
``/tp/healthz`` answers from ``status.json``, so every worker says the same.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..syntax.files import Problem, RulesError
from . import folder
from . import ruleset as rules_module

log = logging.getLogger("touchpoint.rules")
FOLDER = "last-good-rules"
CURRENT = "current.json"
STATUS = "status.json"
WORKERS = "workers"  # one file per serving process: which set it serves (the console shows it)
RECENT = 60  # seconds: a copy this young may still be written or read by another worker


@dataclass(frozen=True)
class Saved:
    """The last good set: its digest, when a worker accepted it and where its copy is."""

    digest: str
    accepted_at: float
    path: Path


@dataclass(frozen=True)
class Worker:
    """A process of this server and the set of rules it serves."""

    pid: int
    digest: str
    since: float


@dataclass(frozen=True)
class Status:
    """The outcome of the last attempt to load the rules folder."""

    ok: bool
    digest: str  # of the folder's files as they were tried
    problems: tuple[str, ...]  # relative to the rules folder: healthz is public, no server paths
    at: float


class LastGood:
    """The shared state of the rules of one rules folder, in ``data_dir``."""

    def __init__(self, data_dir: Path | str, rules_dir: Path | str) -> None:
        self.root = Path(data_dir) / FOLDER
        self.rules_dir = Path(rules_dir)
        self.owner = str(self.rules_dir.resolve())  # another rules folder's copy is not ours

    def relative(self, problems: list[Problem]) -> tuple[str, ...]:
        root = str(self.rules_dir) + "/"
        return tuple(str(p).removeprefix(root) for p in problems)

    def save(self, snapshot: folder.Snapshot, *, now: float) -> float:
        """Keep ``snapshot`` as the last good set; returns when it was first accepted."""
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.root / snapshot.digest
        if not target.is_dir():
            temporary = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root))
            for name, data in snapshot.files.items():
                (temporary / name).parent.mkdir(parents=True, exist_ok=True)
                (temporary / name).write_bytes(data)
            try:
                temporary.rename(target)
            except OSError:  # another worker renamed the same set first
                shutil.rmtree(temporary, ignore_errors=True)
        previous = self.saved()
        accepted_at = now
        if previous is not None and previous.digest == snapshot.digest:
            accepted_at = previous.accepted_at
        else:
            record = {"rules_dir": self.owner, "digest": snapshot.digest, "accepted_at": now}
            self._write(CURRENT, record)
            self._prune(keep={snapshot.digest, previous.digest if previous else ""})
        self.record(Status(True, snapshot.digest, (), now))
        return accepted_at

    def saved(self) -> Saved | None:
        data = self._read(CURRENT)
        if data is None or not isinstance(data.get("digest"), str):
            return None
        return Saved(data["digest"], float(data["accepted_at"]), self.root / data["digest"])

    def load(self, saved: Saved, *, geolocation: bool | None = None) -> rules_module.Ruleset | None:
        """The saved set, checked against its digest and loaded; None (logged) if it is not
        intact. Its files are named as in the rules folder."""
        got = folder.read(saved.path)
        if got is None or got[1].digest != saved.digest:
            log.warning("the last good rules in %s are incomplete: not used", saved.path)
            return None
        try:
            ruleset = rules_module.load(saved.path, geolocation=geolocation)
        except RulesError:
            log.warning("the last good rules in %s do not load: not used", saved.path)
            return None
        return _relabel(ruleset, saved.path, self.rules_dir)

    def record(self, status: Status) -> None:
        """Store the outcome of an attempt, unless it is the one stored (keeping its time)."""
        known = self.status()
        if known and (known.ok, known.digest, known.problems) == (
            status.ok,
            status.digest,
            status.problems,
        ):
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self._write(
            STATUS,
            {
                "rules_dir": self.owner,
                "ok": status.ok,
                "digest": status.digest,
                "problems": list(status.problems),
                "at": status.at,
            },
        )

    def status(self) -> Status | None:
        data = self._read(STATUS)
        if data is None:
            return None
        return Status(data["ok"], data["digest"], tuple(data["problems"]), data["at"])

    def announce(self, digest: str, *, since: float, pid: int | None = None) -> None:
        """Say that this process (``pid``) serves the set ``digest`` since ``since``."""
        pid = os.getpid() if pid is None else pid
        (self.root / WORKERS).mkdir(parents=True, exist_ok=True)
        record = {"rules_dir": self.owner, "pid": pid, "digest": digest, "since": since}
        self._write(f"{WORKERS}/{pid}.json", record)

    def withdraw(self, pid: int | None = None) -> None:
        (self.root / WORKERS / f"{os.getpid() if pid is None else pid}.json").unlink(
            missing_ok=True
        )

    def workers(self) -> list[Worker]:
        """The processes serving rules from this folder now, by pid; a record left by a process
        that ended without withdrawing it (killed) is removed."""
        found = []
        for path in sorted((self.root / WORKERS).glob("*.json")):
            data = self._read(f"{WORKERS}/{path.name}")
            if data is None:
                continue
            try:
                os.kill(data["pid"], 0)
            except ProcessLookupError:
                path.unlink(missing_ok=True)
                continue
            except PermissionError:  # alive, another user's
                pass
            found.append(Worker(data["pid"], data["digest"], data["since"]))
        return found

    def _read(self, name: str) -> dict[str, Any] | None:
        try:
            data = json.loads((self.root / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("rules_dir") != self.owner:
            return None
        return data

    def _write(self, name: str, data: dict[str, Any]) -> None:
        target = self.root / name
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=1)
        os.replace(temporary, target)

    def _prune(self, *, keep: set[str]) -> None:
        """Remove older copies. The previous one stays (a worker may be reading it), and so
        does anything younger than a minute (another worker may be writing it)."""
        for path in self.root.iterdir():
            try:
                if path.name in (*keep, WORKERS) or path.stat().st_mtime > time.time() - RECENT:
                    continue
            except OSError:
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)


def _relabel(ruleset: rules_module.Ruleset, old: Path, new: Path) -> rules_module.Ruleset:
    """``ruleset`` with its sources and warnings named in ``new`` instead of ``old``."""

    def name(text: str) -> str:
        prefix = str(old)
        return str(new) + text[len(prefix) :] if text.startswith(prefix) else text

    return replace(
        ruleset,
        campaigns=tuple(replace(c, source=name(c.source)) for c in ruleset.campaigns),
        warnings=tuple(replace(w, file=name(w.file)) for w in ruleset.warnings),
    )
