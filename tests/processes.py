"""Servers in subprocesses on a free port of 127.0.0.1, for tests and the benchmark."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx2 as httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """A server started by ``start`` and up once ``ready_path`` answers 200."""

    port: int
    url: str
    log_path: Path
    process: subprocess.Popen[bytes]

    def start(
        self,
        command: list[str],
        *,
        ready_path: str,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(
                command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + ready_path).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.log_path.stem} did not start:\n{self.output()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def output(self) -> str:
        self.stop()
        return self.log_path.read_text()
