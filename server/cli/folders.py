"""The server's folders as a command run beside it finds them."""

from __future__ import annotations

from pathlib import Path

from .. import store
from ..errors import ConfigError


def server_folder(database: str | Path, *, what: str, flag: str) -> None:
    """Refuse to write ``what`` into the SQLite file ``database`` when its folder does not
    exist: no server keeps its files there (run outside the project folder, the default
    ``data`` would be a new ``./data`` that the server never reads). A PostgreSQL database is
    where its URL says."""
    if store.locate(str(database)).is_postgresql:
        return
    path = Path(database)
    if path.parent.is_dir():
        return
    raise ConfigError(
        f"no folder {path.parent.resolve()}, so no server reads {what} from {path.resolve()}:"
        f" pass the server's {flag} (or set it in the environment, docs/operations.md#settings);"
        " for a server that has not started yet, create the folder first"
    )
