"""The console's users: names, roles and passwords (docs/admin.md#users).

Passwords are hashed with argon2id (RFC 9106) through argon2-cffi, with its default parameters
(the RFC's second recommended option, 64 MiB of memory); a hash made with older parameters is
replaced at the next sign-in. Verifying costs tens of milliseconds of CPU, so the server does it
on a worker thread, and verifies a name nobody has against a fixed hash, so the answer takes as
long whether or not the name exists.
"""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..errors import ConfigError
from ..store import AdminUser

ROLES = ("viewer", "editor")  # each may do what the ones before it may
MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # hashing a megabyte would be a denial of service
NAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")

_hasher = PasswordHasher()
# Verified when the name is unknown, so a wrong name costs what a wrong password costs.
_DUMMY = _hasher.hash("touchpoint: no such user")


def allows(role: str, needed: str) -> bool:
    """Whether ``role`` may do what ``needed`` may (an editor may view)."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def check_name(name: str) -> str:
    """The user name, or a ConfigError saying what a name may be."""
    if not NAME.fullmatch(name):
        raise ConfigError(
            f"user name {name!r}: 1 to 64 lower-case letters, digits and . _ @ -,"
            " starting with a letter or digit"
        )
    return name


def check_password(password: str) -> str:
    """The password, or a ConfigError saying why it is refused."""
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"the password must be at least {MIN_PASSWORD} characters long")
    if len(password) > MAX_PASSWORD:
        raise ConfigError(f"the password must be at most {MAX_PASSWORD} characters long")
    return password


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (PHC string format, parameters and salt included)."""
    return _hasher.hash(password)


def verify(user: AdminUser | None, password: str) -> bool:
    """Whether ``password`` is ``user``'s; runs the hash for an unknown user too. Blocking:
    call it on a worker thread."""
    if len(password) > MAX_PASSWORD:
        user, password = None, password[:MAX_PASSWORD]  # still hashed, never right
    try:
        ok = _hasher.verify(user.password_hash if user else _DUMMY, password)
    except (VerificationError, InvalidHashError):
        return False
    return ok and user is not None


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
