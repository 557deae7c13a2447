"""What ``make bench`` loads servers with, and how it reads what a load cost them: wrk (closed
loop) and openloop.py (fixed rates), and the CPU time of the server's processes from /proc."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx

HERE = Path(__file__).resolve().parent
TICKS = os.sysconf("SC_CLK_TCK")


def emit(**figures: object) -> None:
    print(json.dumps(figures), flush=True)


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process descending from it (uvicorn's workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the processes ``pids`` have used so far (fields 14 and 15)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    pids: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


def serve(
    name: str, command: list[str], port: int, env: dict[str, str], ready: str, *, workers: int = 1
) -> Server:
    """Start a server and wait until ``ready`` (a path) answers and its workers are up."""
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{name} exited with {process.returncode}")
        try:
            httpx.post(f"http://127.0.0.1:{port}{ready}", content=b"{}")
            pids = process_tree(process.pid)
            if len(pids) > workers:  # the workers and their supervisor
                time.sleep(1)
                return Server(name, port, process, process_tree(process.pid))
            if workers == 1:
                return Server(name, port, process, pids)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    sys.exit(f"{name} did not start")


def lua_script(
    path: Path, cookies: list[str], *, route: str, body: str, headers: dict[str, str] | None = None
) -> Path:
    """A wrk script posting ``body`` to ``route`` with a random one of ``cookies`` (none if
    empty)."""
    entries = ",\n".join(json.dumps(c) for c in cookies)
    extra = "".join(f", [{json.dumps(k)}] = {json.dumps(v)}" for k, v in (headers or {}).items())
    cookie = "['Cookie'] = cookies[math.random(#cookies)], " if cookies else ""
    path.write_text(
        f"local cookies = {{\n{entries}\n}}\n"
        f"local body = {json.dumps(body)}\n"
        "math.randomseed(42)\n"
        "request = function()\n"
        f"  local headers = {{{cookie}['Content-Type'] = 'text/plain'{extra}}}\n"
        f"  return wrk.format('POST', '{route}', headers, body)\n"
        "end\n"
    )
    return path


def raw_requests(
    path: Path, cookies: list[str], *, route: str, body: str, headers: dict[str, str] | None = None
) -> Path:
    """The same requests as lua_script, written out whole for openloop.py."""
    lines = []
    for cookie in cookies or [""]:
        head = {
            "Host": "127.0.0.1",
            "Content-Type": "text/plain",
            "Content-Length": str(len(body.encode())),
            **({"Cookie": cookie} if cookie else {}),
            **(headers or {}),
        }
        text = f"POST {route} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items())
        lines.append(json.dumps(text + "\r\n" + body))
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Load:
    """One closed-loop load: a server, a wrk script, and what each round measured."""

    name: str
    server: Server
    script: Path
    rounds: list[dict[str, float]] = field(default_factory=list)

    def median(self, key: str) -> float:
        return statistics.median(r[key] for r in self.rounds)

    def summary(self, **extra: Any) -> dict[str, Any]:
        return {
            "name": self.name,
            "rounds": len(self.rounds),
            "requests_per_s": round(self.median("requests_per_s")),
            "p50_ms": round(self.median("p50_ms"), 2),
            "p99_ms": round(self.median("p99_ms"), 2),
            "server_cpu_us_per_request": round(self.median("cpu_us")),
            "non_2xx": int(sum(r["non_2xx"] for r in self.rounds)),
            **extra,
        }


def wrk(load: Load, *, duration: str, connections: int, warm_up: str | None = "1s") -> None:
    """One round of ``load``: wrk for ``duration``, with the server's CPU per request."""
    command = ["wrk", "-t1", f"-c{connections}", "-s", str(load.script), "--latency"]
    if warm_up:
        subprocess.run([*command, f"-d{warm_up}", load.server.url], check=True, capture_output=True)
    before = cpu_seconds(load.server.pids)
    out = subprocess.run(
        [*command, f"-d{duration}", load.server.url], check=True, capture_output=True, text=True
    ).stdout
    used = cpu_seconds(load.server.pids) - before
    done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    load.rounds.append(
        {
            "requests_per_s": rps,
            "requests": done,
            "p50_ms": _latency(out, "50%"),
            "p99_ms": _latency(out, "99%"),
            "cpu_us": used / max(done, 1) * 1e6,
            "non_2xx": int(errors.group(1)) if errors else 0,
        }
    )


def _latency(out: str, percentile: str) -> float:
    value, unit = re.search(rf"^\s+{percentile}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def open_loop(server: Server, requests: Path, *, rate: int, seconds: float) -> dict[str, Any]:
    """openloop.py at ``rate`` requests per second, with the server's CPU per request."""
    before = cpu_seconds(server.pids)
    out = subprocess.run(
        [
            sys.executable,
            str(HERE / "openloop.py"),
            str(server.port),
            str(rate),
            str(seconds),
            str(requests),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    figures: dict[str, Any] = json.loads(out)
    used = cpu_seconds(server.pids) - before
    figures["server_cpu_us_per_request"] = round(used / max(figures["completed"], 1) * 1e6)
    return figures
