"""An open-loop load generator (what wrk2 does; wrk2 is not packaged): requests start at a fixed
rate whatever the server answers, and each latency runs from when its request was due, not from
when it could be sent, so a stalled server shows its whole queue (no coordinated omission).

    python openloop.py PORT RATE SECONDS REQUESTS_FILE

REQUESTS_FILE holds one complete HTTP/1.1 request per line, JSON-encoded as a string; the
generator cycles through them. It keeps a pool of keep-alive connections and opens another
when every one is busy (up to MAX_CONNECTIONS; beyond that requests wait, their latency
counting). Prints one JSON object: the rate reached, p50/p99/p99.9/max in milliseconds,
failures, and the generator's own CPU seconds (it must stay well below the server's).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import deque
from pathlib import Path

import uvloop

MAX_CONNECTIONS = 512
WARM_UP = 1.0  # seconds
TICK = 0.0005  # seconds between checks for due requests


class Connection(asyncio.Protocol):
    def __init__(self, done: asyncio.Queue[Connection], results: list[tuple[float, float]]) -> None:
        self.done = done
        self.results = results
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.due = 0.0
        self.failures = 0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, request: bytes, due: float) -> None:
        assert self.transport is not None
        self.due = due
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        start = head.find(b"content-length:")
        length = int(head[start + 15 :].split(b"\r\n", 1)[0]) if start >= 0 else 0
        if len(self.buffer) < end + 4 + length:
            return
        status = int(head[9:12])
        del self.buffer[: end + 4 + length]
        if status >= 400:
            self.failures += 1
        self.results.append((self.due, time.perf_counter() - self.due))
        self.done.put_nowait(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True


async def run(port: int, rate: float, seconds: float, requests: list[bytes]) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    results: list[tuple[float, float]] = []
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    connections: list[Connection] = []
    waiting: deque[float] = deque()  # due times of requests no connection was free for

    async def connect() -> None:
        _, conn = await loop.create_connection(lambda: Connection(idle, results), "127.0.0.1", port)
        connections.append(conn)
        idle.put_nowait(conn)

    for _ in range(8):
        await connect()
    cpu = time.process_time()
    start = time.perf_counter()
    total = int(rate * (seconds + WARM_UP))
    sent = 0
    opening = [0]
    while sent < total or waiting:
        now = time.perf_counter()
        while sent < total and start + sent / rate <= now:
            waiting.append(start + sent / rate)
            sent += 1
        while waiting and not idle.empty():
            conn = idle.get_nowait()
            if conn.closed:
                continue
            conn.send(requests[len(results) % len(requests)], waiting.popleft())
        if waiting and not opening[0] and len(connections) < MAX_CONNECTIONS:
            opening[0] += 1  # one at a time: a burst of waiting requests opens a few, not all
            task = loop.create_task(connect())
            task.add_done_callback(lambda _: opening.__setitem__(0, 0))
        if sent < total:  # until the next request is due, or a tick when some wait
            await asyncio.sleep(TICK if waiting else max(0.0, start + sent / rate - now))
        else:
            await asyncio.sleep(TICK)
    deadline = time.perf_counter() + 30
    while len(results) < total and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    for conn in connections:
        if conn.transport is not None:
            conn.transport.close()
    # The first WARM_UP seconds open connections and warm the server: not measured.
    ordered = sorted(latency for due, latency in results if due >= start + WARM_UP)

    def quantile(q: float) -> float:
        if not ordered:
            return float("nan")
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {
        "rate": rate,
        "achieved_per_s": round(len(results) / elapsed),  # warm-up included
        "completed": len(results),
        "measured": len(ordered),
        "lost": total - len(results),
        "failed": sum(c.failures for c in connections),
        "p50_ms": quantile(0.5),
        "p99_ms": quantile(0.99),
        "p999_ms": quantile(0.999),
        "max_ms": quantile(1.0),
        "connections": len(connections),
        "generator_cpu_per_s": round(cpu / elapsed, 3),
    }


def main() -> None:
    port, rate, seconds, path = (
        int(sys.argv[1]),
        float(sys.argv[2]),
        float(sys.argv[3]),
        sys.argv[4],
    )
    lines = Path(path).read_text().splitlines()
    requests = [json.loads(line).encode("latin-1") for line in lines]
    print(json.dumps(uvloop.run(run(port, rate, seconds, requests))))


if __name__ == "__main__":
    main()
