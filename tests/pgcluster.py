"""A throwaway PostgreSQL cluster for the test session: Debian's server binaries, a data folder
in a temporary directory, listening on 127.0.0.1 only, stopped and removed at the end. Each test
gets a database of its own, created from a migrated template (cheap: a file copy)."""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .processes import free_port

BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def binaries() -> Path | None:
    """The newest installed PostgreSQL server's bin folder, or None."""
    for folder in BIN_DIRS:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


MISSING = (
    "PostgreSQL's server is not installed (Debian: apt-get install postgresql; .ci/run does it)"
)


class Cluster:
    """One PostgreSQL server for the test session. The server refuses to run as root: as root,
    it runs as the ``postgres`` user that Debian's package creates."""

    def __init__(self, bin_dir: Path, *, durable: bool = False) -> None:
        self.durable = durable  # PostgreSQL's own defaults (the benchmark), not the tests' speed
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="touchpoint-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        self._names = itertools.count(1)
        self.template: str | None = None  # a migrated database new ones are copied from

    def _run(self, *args: str) -> None:
        subprocess.run(args, check=True, capture_output=True, user=self.user, timeout=120)

    def start(self) -> Cluster:
        if self.user:
            account = pwd.getpwnam(self.user)
            os.chown(self.root, account.pw_uid, account.pw_gid)
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "touchpoint",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        )
        # Tests throw the data away: no fsync. Sockets in the cluster's own folder.
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port}"
            f" -c unix_socket_directories={self.root} -c max_connections=300"
        )
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        else:  # the benchmark counts statements per request
            options += " -c shared_preload_libraries=pg_stat_statements"
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )
        return self

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://touchpoint@127.0.0.1:{self.port}/{database}"

    def create_database(self, *, template: str | None = None) -> str:
        """A new, empty database (a copy of ``template`` when given); its URL."""
        import psycopg

        name = f"t{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            copy = f" TEMPLATE {template}" if template else ""
            conn.execute(f"CREATE DATABASE {name}{copy}")
        return self.url(name)


@contextlib.contextmanager
def cluster() -> Iterator[Cluster | None]:
    """A started cluster for the session, or None where PostgreSQL is not installed."""
    bin_dir = binaries()
    if bin_dir is None:
        yield None
        return
    started = Cluster(bin_dir).start()
    try:
        yield started
    finally:
        started.stop()
