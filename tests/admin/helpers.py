"""Users and sign-ins for the console's tests."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from starlette.testclient import TestClient
from touchpoint import store
from touchpoint.admin import users

from ..conftest import LIVE_DATABASES

PASSWORD = "correct horse battery"


def add_user(database: Path | str, name: str = "ana", *, role: str = "editor") -> None:
    store.migrate(database)
    conn = store.connect(database)
    try:
        with store.immediate(conn):
            store.add_admin_user(
                conn,
                name,
                role=role,
                password_hash=users.hash_password(PASSWORD),
                now=int(time.time()),
            )
    finally:
        conn.close()


def sign_in(client: TestClient, name: str = "ana", password: str = PASSWORD, **form: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/tp/admin/signin",
        data={"name": name, "password": password, **form},
        follow_redirects=False,
    )


def csrf_of(html: str) -> str:
    marker = 'name="csrf" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def add_user_with_cli(data_dir: Path, name: str = "ana", *, role: str = "editor") -> None:
    """Add a console user as an operator does: ``touchpoint admin user add`` in a process of
    its own, the password on standard input."""
    # The database of a live server on this data folder, on either engine (conftest.py).
    database = LIVE_DATABASES.url(data_dir) if LIVE_DATABASES.cluster else None
    subprocess.run(
        [sys.executable, "-m", "touchpoint.cli", "admin", "user", "add", name]
        + ["--role", role, "--password-stdin", "--data-dir", str(data_dir)]
        + ([f"--database={database}"] if database else []),
        input=PASSWORD + "\n",
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
