"""Hot reload of the rules: a change takes effect once the folder holds still, without a restart.

The rules folder is polled (a few stat() calls per file and poll: cheaper and more portable
than inotify, and it sees edits made through any editor, sync tool or bind mount). A change is
loaded only when the folder's signature (name, inode, size and modification time of every file)
is the same at two polls in a row, a whole interval apart: a file written in steps (an editor
saving in place, ``scp``, ``rsync --inplace``, a network share) is never read half written
unless a step pauses longer than the interval. A valid set replaces the running one and becomes
the shared last good set (rules/lastgood.py); an invalid one is logged and recorded, and every
worker keeps serving the last good set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..syntax.files import Problem, RulesError
from . import folder
from . import ruleset as rules_module
from .lastgood import LastGood, Status

log = logging.getLogger("touchpoint.rules")
INTERVAL = 0.5  # seconds between polls; a change is published one to two intervals after it


@dataclass(frozen=True)
class Serving:
    """The rules a worker serves and where they came from."""

    ruleset: rules_module.Ruleset
    digest: str  # of its files
    accepted_at: float
    signature: folder.Signature | None  # the folder state handled; None: not yet looked at
    problems: tuple[Problem, ...] = ()  # the folder's, when it was refused


def start(
    rules_dir: Path | str,
    last_good: LastGood,
    *,
    geolocation: bool | None = None,
    interval: float | None = INTERVAL,
) -> Serving:
    """The rules a worker starts with: the folder's, or the last good set while the folder is
    invalid (``problems`` says why). A folder changed less than ``interval`` ago may be half
    written: the start waits until it holds still, as the reloader would (``interval=None``:
    no waiting, for a server without reload). Raises :class:`RulesError` when the folder is
    invalid and no last good set is kept."""
    rules_dir = Path(rules_dir)
    got = _read(rules_dir)
    saved = last_good.saved()
    if got is not None and saved is not None and got[1].digest != saved.digest and interval:
        got = _settled(rules_dir, got, interval)
        if got is None:  # still changing: the last good set until it holds still
            ruleset = last_good.load(saved, geolocation=geolocation)
            if ruleset is not None:
                log.info("the rules keep changing: the last good set serves until they stop")
                return Serving(ruleset, saved.digest, saved.accepted_at, None)
    now = time.time()
    try:
        ruleset = rules_module.load(rules_dir, geolocation=geolocation)
    except RulesError as exc:
        kept = last_good.load(saved, geolocation=geolocation) if saved else None
        if kept is None or saved is None:
            raise
        digest = got[1].digest if got else ""
        last_good.record(Status(False, digest, last_good.relative(exc.problems), now))
        return Serving(
            kept, saved.digest, saved.accepted_at, got[0] if got else None, tuple(exc.problems)
        )
    if got is None or folder.signature(rules_dir) != got[0]:  # changed while it loaded
        return Serving(ruleset, "", now, None)  # the reloader looks again when it holds still
    try:
        now = last_good.save(got[1], now=now)
    except OSError as exc:  # served all the same; other workers cannot fall back on it
        log.warning("rules: cannot keep the last good set in %s: %s", last_good.root, exc)
    return Serving(ruleset, got[1].digest, now, got[0])


def _read(rules_dir: Path) -> tuple[folder.Signature, folder.Snapshot] | None:
    for _ in range(3):
        got = folder.read(rules_dir)
        if got is not None:
            return got
        time.sleep(0.05)
    return None


def _settled(
    rules_dir: Path, got: tuple[folder.Signature, folder.Snapshot], interval: float
) -> tuple[folder.Signature, folder.Snapshot] | None:
    """``got`` once the folder has held still for ``interval`` (at once if it was last changed
    longer ago than that), or None if it is still changing after ten intervals."""
    for _ in range(10):
        if not folder.changed_within(got[0], interval):
            return got
        time.sleep(interval)
        again = _read(rules_dir)
        if again is not None and again[0] == got[0]:
            return again
        got = again or got
    return None


class RulesReloader:
    def __init__(
        self,
        rules_dir: Path | str,
        apply: Callable[[rules_module.Ruleset], None],
        serving: Serving,
        last_good: LastGood,
        *,
        interval: float = INTERVAL,
        geolocation: bool | None = None,
    ) -> None:
        self.rules_dir = Path(rules_dir)
        self.geolocation = geolocation  # whether a source is configured (rules.load)
        self.apply = apply
        self.last_good = last_good
        self.interval = interval
        self.digest, self.accepted_at = serving.digest, serving.accepted_at
        self.seen = serving.signature  # the folder state last loaded or refused
        self.previous = serving.signature  # the folder state at the previous poll
        self.refused = bool(serving.problems)

    async def run(self) -> None:
        """Poll until cancelled; this process's set is announced (LastGood.workers) meanwhile."""
        try:
            self._announce()
            while True:
                await asyncio.sleep(self.interval)
                try:
                    await self.poll()
                except OSError as exc:  # the data folder cannot be written: keep serving, say so
                    log.warning(
                        "rules: cannot keep the shared state in %s: %s", self.last_good.root, exc
                    )
        finally:
            with contextlib.suppress(OSError):
                self.last_good.withdraw()

    def _announce(self) -> None:
        try:
            self.last_good.announce(self.digest, since=time.time())
        except OSError as exc:
            log.warning("rules: cannot keep the shared state in %s: %s", self.last_good.root, exc)

    async def poll(self) -> None:
        current = await asyncio.to_thread(folder.signature, self.rules_dir)
        steady, self.previous = current == self.previous, current
        if steady and current != self.seen:
            await asyncio.to_thread(self._try, current)
        if self.refused or current != self.seen:
            # Pending or refused here: serve what another worker accepted meanwhile, if newer.
            await asyncio.to_thread(self._follow)

    def _try(self, signature: folder.Signature) -> None:
        """Load the folder, which held still for an interval, and publish or refuse it."""
        got = folder.read(self.rules_dir)
        if got is None or got[0] != signature:
            self.previous = None  # moving again: wait until it holds still
            return
        snapshot, now = got[1], time.time()
        if snapshot.digest == self.digest:  # rewritten as it was: nothing to reload
            self.seen, self.refused = signature, False
            self.accepted_at = self.last_good.save(snapshot, now=now)
            return
        try:
            ruleset = rules_module.load(self.rules_dir, geolocation=self.geolocation)
        except RulesError as exc:
            if folder.signature(self.rules_dir) != signature:
                self.previous = None
                return
            self.seen, self.refused = signature, True
            for problem in exc.problems:
                log.warning("rules not reloaded, keeping the last good set: %s", problem)
            problems = self.last_good.relative(exc.problems)
            self.last_good.record(Status(False, snapshot.digest, problems, now))
            return
        if folder.signature(self.rules_dir) != signature:  # changed while it loaded
            self.previous = None
            return
        self.apply(ruleset)
        self.seen, self.refused, self.digest = signature, False, snapshot.digest
        self.accepted_at = self.last_good.save(snapshot, now=now)
        self._announce()
        log.info("rules reloaded: %d campaign(s)", len(ruleset.campaigns))
        rules_module.log_warnings(ruleset)

    def _follow(self) -> None:
        saved = self.last_good.saved()
        if saved is None or saved.digest == self.digest or saved.accepted_at <= self.accepted_at:
            return
        ruleset = self.last_good.load(saved, geolocation=self.geolocation)
        if ruleset is None:
            return
        self.apply(ruleset)
        self.digest, self.accepted_at = saved.digest, saved.accepted_at
        self._announce()
        log.info("rules: serving the last good set (%d campaign(s))", len(ruleset.campaigns))
