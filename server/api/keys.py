"""Bearer keys of the server API, kept as SHA-256 hashes in a JSON file (mode 0600).

A key is ``tp_`` and 32 random bytes (URL-safe base64), printed once when it is created. Only
its SHA-256 is stored: the token has 256 bits of entropy, so a plain hash cannot be guessed back
and needs no slow password hash. Presented tokens are compared with every stored hash with
``hmac.compare_digest``, without stopping at the first match. The file is read again when it
changes, so ``touchpoint apikey create`` and ``revoke`` take effect without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError

SCOPES = (
    "events:write",
    "profiles:read",
    "profiles:write",
    "privacy:read",
    "privacy:erase",
    "coupons:read",
    "coupons:write",
    "coupons:redeem",
    "reports:read",
)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
PREFIX = "tp_"


@dataclass(frozen=True)
class ApiKey:
    name: str
    hash: str
    scopes: tuple[str, ...]
    created_at: int


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiKeys:
    """The keys file: read on demand, re-read when its modification time changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._keys: tuple[ApiKey, ...] = ()

    def keys(self) -> tuple[ApiKey, ...]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._keys = None, ()
            return ()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._keys = _parse(self.path)
            self._stamp = stamp
        return self._keys

    def authenticate(self, token: str) -> ApiKey | None:
        """The key ``token`` is, or None; every stored hash is compared in constant time."""
        presented = token_hash(token)
        found = None
        for key in self.keys():
            if hmac.compare_digest(presented, key.hash):
                found = key
        return found

    def create(self, name: str, scopes: list[str], *, now: int) -> str:
        """Add a key and return its token, which is not stored anywhere."""
        if not NAME.match(name):
            raise ConfigError("a key name uses letters, digits, '.', '_' and '-' (at most 64)")
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not scopes:
            raise ConfigError(f"give one or more --scope of: {', '.join(SCOPES)}")
        keys = list(self.keys())
        if any(key.name == name for key in keys):
            raise ConfigError(f"a key named {name!r} exists; revoke it first")
        token = PREFIX + secrets.token_urlsafe(32)
        keys.append(ApiKey(name, token_hash(token), tuple(sorted(set(scopes))), now))
        self._save(keys)
        return token

    def revoke(self, name: str) -> None:
        keys = list(self.keys())
        if not any(key.name == name for key in keys):
            raise ConfigError(f"no key named {name!r}")
        self._save([key for key in keys if key.name != name])

    def _save(self, keys: list[ApiKey]) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = {
            "keys": [
                {
                    "name": k.name,
                    "sha256": k.hash,
                    "scopes": list(k.scopes),
                    "created_at": k.created_at,
                }
                for k in keys
            ]
        }
        # Written aside and renamed: a server reading the file never sees half of it.
        temporary = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            json.dump(data, file, indent=2)
            file.write("\n")
        os.replace(temporary, self.path)
        self._stamp = None


def _parse(path: Path) -> tuple[ApiKey, ...]:
    try:
        data: Any = json.loads(path.read_text())
        return tuple(
            ApiKey(str(k["name"]), str(k["sha256"]), tuple(k["scopes"]), int(k["created_at"]))
            for k in data["keys"]
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a Touchpoint keys file ({exc})") from None
