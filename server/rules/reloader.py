"""Hot reload of the rules: a changed file takes effect within a second, without a restart.

The rules folder is polled (two stat() calls per file and second: cheaper and more portable
than inotify, and it sees edits made through any editor, sync tool or bind mount). A change is
loaded in a worker thread; a valid set replaces the running one, an invalid one is logged and
reported by ``/tp/healthz`` while the last good set keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from . import ruleset as rules_module

log = logging.getLogger("touchpoint.rules")

Fingerprint = tuple[tuple[str, int, int, int], ...]


def fingerprint(rules_dir: Path) -> Fingerprint:
    """Name, inode, size and modification time of every file the rules are built from."""
    files = [*rules_dir.glob("*.y*ml"), *(rules_dir / "templates").rglob("*")]
    out = []
    for path in sorted(files):
        try:
            stat = path.stat()
        except OSError:  # removed between glob and stat: the next poll sees it gone
            continue
        out.append((str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return tuple(out)


class RulesReloader:
    def __init__(
        self,
        rules_dir: Path | str,
        apply: Callable[[rules_module.Ruleset], None],
        *,
        interval: float = 0.5,
        geolocation: bool | None = None,
    ) -> None:
        self.rules_dir = Path(rules_dir)
        self.geolocation = geolocation  # whether a source is configured (rules.load)
        self.apply = apply
        self.interval = interval
        self.seen = fingerprint(self.rules_dir)
        self.problems: list[rules_module.Problem] = []  # of the newest, rejected, edit

    def report(self) -> list[str]:
        """The rejected edit's problems, with paths relative to the rules folder (for healthz,
        which the internet can reach: no server paths)."""
        root = str(self.rules_dir) + "/"
        return [str(p).removeprefix(root) for p in self.problems]

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            await self.poll()

    async def poll(self) -> None:
        current = await asyncio.to_thread(fingerprint, self.rules_dir)
        if current == self.seen:
            return
        self.seen = current
        try:
            ruleset = await asyncio.to_thread(
                rules_module.load, self.rules_dir, geolocation=self.geolocation
            )
        except rules_module.RulesError as exc:
            self.problems = exc.problems
            for problem in exc.problems:
                log.warning("rules not reloaded, keeping the last good set: %s", problem)
            return
        self.apply(ruleset)
        self.problems = []
        log.info("rules reloaded: %d campaign(s)", len(ruleset.campaigns))
        rules_module.log_warnings(ruleset)
