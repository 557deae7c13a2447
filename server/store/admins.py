"""The console's users (``admin_users``): names, roles, password hashes and the generation of
their sessions. The hashing and the rules for names and passwords are the console's
(admin/users.py); these functions only store what they are given."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from .engine import Connection

COLUMNS = "name, role, password_hash, created_at, password_changed_at, sessions"


@dataclass(frozen=True)
class AdminUser:
    name: str
    role: str  # viewer or editor
    password_hash: str
    created_at: int
    password_changed_at: int
    sessions: int  # the session generation: a cookie of an older one is refused


def admin_user(conn: Connection, name: str) -> AdminUser | None:
    """The user ``name``, or None. One primary-key read, cheap enough for every request."""
    row = conn.execute(f"SELECT {COLUMNS} FROM admin_users WHERE name = ?", (name,)).fetchone()
    return AdminUser(*row) if row else None


def admin_users(conn: Connection) -> list[AdminUser]:
    """Every user, by name."""
    return [
        AdminUser(*row)
        for row in conn.execute(f"SELECT {COLUMNS} FROM admin_users ORDER BY name").fetchall()
    ]


def has_admin_users(conn: Connection) -> bool:
    return conn.execute("SELECT 1 FROM admin_users LIMIT 1").fetchone() is not None


def add_admin_user(conn: Connection, name: str, *, role: str, password_hash: str, now: int) -> bool:
    """Add a user; False when the name is taken. Their session generation starts at a random
    number: a cookie of a removed user of the same name (generation 0, 1 ...) never passes
    for the new one's."""
    added = conn.execute(
        "INSERT INTO admin_users (name, role, password_hash, created_at, password_changed_at,"
        " sessions) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
        (name, role, password_hash, now, now, secrets.randbits(62)),
    )
    return bool(added.rowcount)


def remove_admin_user(conn: Connection, name: str) -> bool:
    """Delete a user (their sessions end with the row); False when there was none."""
    return conn.execute("DELETE FROM admin_users WHERE name = ?", (name,)).rowcount > 0


def set_admin_password(conn: Connection, name: str, *, password_hash: str, now: int) -> bool:
    """A new password hash; every session of the user ends. False when there is no such user."""
    cursor = conn.execute(
        "UPDATE admin_users SET password_hash = ?, password_changed_at = ?,"
        " sessions = sessions + 1 WHERE name = ?",
        (password_hash, now, name),
    )
    return cursor.rowcount > 0


def end_admin_sessions(conn: Connection, name: str) -> None:
    """End every session of the user ``name`` (a sign-out: the cookie may have been copied)."""
    conn.execute("UPDATE admin_users SET sessions = sessions + 1 WHERE name = ?", (name,))


def rehash_admin_password(
    conn: Connection, name: str, *, old_hash: str, password_hash: str
) -> None:
    """Store a hash made with newer parameters, unless the password changed meanwhile."""
    conn.execute(
        "UPDATE admin_users SET password_hash = ? WHERE name = ? AND password_hash = ?",
        (password_hash, name, old_hash),
    )
