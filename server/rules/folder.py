"""The files a ruleset is built from, and how to tell that the folder holds still.

Editors that save in place, ``scp``, ``rsync --inplace`` and network shares write a file in
steps: between two steps the folder holds a state nobody meant (an empty file, the first half of
a campaign without its audience). ``signature`` is compared from one poll to the next; a change
is loaded only once it has stayed the same for a whole poll interval (rules/reloader.py).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

# (path relative to the rules folder, inode, size, modification time in ns), sorted by path.
Signature = tuple[tuple[str, int, int, int], ...]


def yaml_files(rules_dir: Path) -> list[Path]:
    """The YAML files the loader reads, sorted: not hidden ones (an editor's lock file
    ``.#x.yaml``, a temporary file of a save in progress) nor backups (``x.yaml~``)."""
    return sorted(p for p in rules_dir.glob("*.y*ml") if not _hidden(Path(p.name)))


def paths(rules_dir: Path) -> list[Path]:
    """Every file the rules are built from: the YAML files the loader reads and the templates,
    but not hidden files and backups among the templates (an editor's swap file, ``x.html~``):
    they change while a template is only open in an editor."""
    templates = rules_dir / "templates"
    return sorted(
        [
            *yaml_files(rules_dir),
            *(
                p
                for p in templates.rglob("*")
                if not _hidden(p.relative_to(templates)) and not p.is_dir()
            ),
        ]
    )


def _hidden(name: Path) -> bool:
    return any(part.startswith(".") or part.endswith("~") for part in name.parts)


def signature(rules_dir: Path) -> Signature:
    """Name, inode, size and modification time of every file (two system calls per file)."""
    out = []
    for path in paths(rules_dir):
        try:
            stat = path.stat()
        except OSError:  # removed between glob and stat: the next poll sees it gone
            continue
        name = path.relative_to(rules_dir).as_posix()
        out.append((name, stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return tuple(out)


def changed_within(sig: Signature, seconds: float, *, now_ns: int | None = None) -> bool:
    """Whether a file of ``sig`` was modified less than ``seconds`` ago (or in the future)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    return any(mtime > now_ns - seconds * 1e9 for *_, mtime in sig)


@dataclass(frozen=True)
class Snapshot:
    """The contents of the rules files, by path relative to the folder, and their digest."""

    files: dict[str, bytes]
    digest: str

    @classmethod
    def of(cls, files: dict[str, bytes]) -> Snapshot:
        digest = hashlib.sha256()
        for name in sorted(files):
            data = files[name]
            digest.update(f"{name}\0{len(data)}\0".encode())
            digest.update(data)
        return cls(files, digest.hexdigest())


def read(rules_dir: Path) -> tuple[Signature, Snapshot] | None:
    """The files' contents and the signature they were read under, or None when a file changed
    while they were read (try again at the next poll)."""
    before = signature(rules_dir)
    files: dict[str, bytes] = {}
    for name, *_ in before:
        try:
            files[name] = (rules_dir / name).read_bytes()
        except OSError:
            return None
    if signature(rules_dir) != before:
        return None
    return before, Snapshot.of(files)
