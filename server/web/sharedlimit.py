"""The rate limit of several workers: one token bucket per client address for all of them.

With ``workers`` above 1 each worker kept its own buckets, so a client got the limit once per
worker (issue 19: one address got 1,232 answers from two workers instead of about 611). Here
the buckets live in a small table in shared memory that every worker of the server maps:
``/dev/shm`` (memory only, gone at a reboot) where there is one, else the data folder.

The table holds no address. An address is found by a keyed hash (BLAKE2b under a random key
kept in the table's header, made when the table is made): the hash picks a set of ``WAYS``
slots and, within it, the slot whose tag matches. A slot is (tag, tokens, last refill time);
a set is locked with a byte-range lock (``fcntl.lockf``) while one worker reads and writes
it, two system calls of about a microsecond each. A new address takes an empty slot, or one
whose bucket has refilled (it carries no information), or else the one with the most tokens
left, so that under a flood of new addresses the clients being limited keep their buckets.
``time.monotonic`` is the same clock in every process of the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import math
import mmap
import os
import secrets
import struct
import time
from pathlib import Path
from typing import Any

from ..errors import RateLimited

SETS = 8192
WAYS = 8  # slots per set: 65,536 clients remembered at once
SLOT = struct.Struct("<Qdd")  # tag (0: empty), tokens, last refill (time.monotonic)
SET = struct.Struct("<" + "Qdd" * WAYS)  # a set's slots, read at once
SET_BYTES = SET.size
KEY = 32  # the header: the hash key
HEADER = 4096  # the header's page; the sets start on the next one
SIZE = HEADER + SETS * SET_BYTES


def table_path(database: Path) -> Path:
    """Where the workers of the server of ``database`` share their table."""
    name = "touchpoint-ratelimit-" + hashlib.sha256(str(database.resolve()).encode()).hexdigest()
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm / name[:40]
    return database.parent / "ratelimit.shm"


class SharedRateLimiter:
    """``per_minute`` requests per client address, bursts up to the same, for all the workers
    that open the table at ``path`` (the same interface as limits.RateLimiter)."""

    def __init__(self, per_minute: int, path: Path) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self._key = self._header()
        self._map = mmap.mmap(self._fd, SIZE)

    def _header(self) -> bytes:
        """The table's hash key, written by whichever worker comes first (under a lock)."""
        fcntl.lockf(self._fd, fcntl.LOCK_EX, KEY, 0)
        try:
            if os.fstat(self._fd).st_size < SIZE:
                os.ftruncate(self._fd, SIZE)  # zeros: every slot empty
            key = os.pread(self._fd, KEY, 0)
            if key == bytes(KEY):
                key = secrets.token_bytes(KEY)
                os.pwrite(self._fd, key, 0)
            return key
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN, KEY, 0)

    def check(self, client: str, *, now: float | None = None) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic() if now is None else now
        digest = hashlib.blake2b(client.encode(), key=self._key, digest_size=16).digest()
        tag = int.from_bytes(digest[:8], "little") or 1
        offset = HEADER + int.from_bytes(digest[8:], "little") % SETS * SET_BYTES
        fcntl.lockf(self._fd, fcntl.LOCK_EX, SET_BYTES, offset)
        try:
            wait = self._take(tag, offset, now)
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN, SET_BYTES, offset)
        if wait is not None:
            raise RateLimited("too many requests; slow down", retry_after=wait)

    def _take(self, tag: int, offset: int, now: float) -> int | None:
        """Take a token from ``tag``'s bucket in the set at ``offset``: None, or the seconds
        until one is let through."""
        fields = SET.unpack_from(self._map, offset)
        slots = [fields[i : i + 3] for i in range(0, 3 * WAYS, 3)]
        way = next((i for i, s in enumerate(slots) if s[0] == tag), None)
        if way is None:
            way = min(range(WAYS), key=lambda i: self._worth(slots[i], now))
            tokens, last = self.capacity, now
        else:
            _, tokens, last = slots[way]
            last = min(last, now)  # a table older than the machine's uptime
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            SLOT.pack_into(self._map, offset + way * SLOT.size, tag, tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.rate))
        SLOT.pack_into(self._map, offset + way * SLOT.size, tag, tokens - 1.0, now)
        return None

    def _worth(self, slot: tuple[Any, ...], now: float) -> float:
        """How much a slot is worth keeping: empty and refilled ones nothing, else the fewer
        tokens its client has left, the more."""
        tag, tokens, last = int(slot[0]), float(slot[1]), float(slot[2])
        if tag == 0 or now - last >= self.capacity / self.rate:
            return -math.inf
        return -min(self.capacity, tokens + (now - last) * self.rate)

    def sweep(self, part: int, parts: int, *, now: float | None = None) -> None:
        """Empty the slots of buckets that have refilled in the ``part``-th of ``parts`` equal
        shares of the table: a full bucket carries no information, and its tag is the keyed
        hash of an address, forgotten as the in-memory limiter forgets it. The lifespan sweeps
        one share a second, the whole table within ``parts`` seconds."""
        per = -(-SETS // parts)
        full_after = self.capacity / self.rate if self.rate > 0 else 0.0
        now = time.monotonic() if now is None else now
        for number in range(part * per, min(SETS, (part + 1) * per)):
            offset = HEADER + number * SET_BYTES
            fcntl.lockf(self._fd, fcntl.LOCK_EX, SET_BYTES, offset)
            try:
                for way, (tag, _, last) in enumerate(
                    SLOT.iter_unpack(self._map[offset : offset + SET_BYTES])
                ):
                    if tag and now - last >= full_after:
                        SLOT.pack_into(self._map, offset + way * SLOT.size, 0, 0.0, 0.0)
            finally:
                fcntl.lockf(self._fd, fcntl.LOCK_UN, SET_BYTES, offset)

    async def forget(self, *, every: float = 1.0) -> None:
        """Sweep the table share by share for as long as the server runs (a lifespan task)."""
        parts = 120
        part = 0
        while True:
            await asyncio.sleep(every)
            self.sweep(part, parts)
            part = (part + 1) % parts

    def close(self) -> None:
        with contextlib.suppress(BufferError, ValueError):
            self._map.close()
        os.close(self._fd)
