"""Webhook signatures as the Standard Webhooks specification defines them, so that receivers
verify with its official libraries (PHP, Node.js, Python, Go, Ruby, Java, C#, Rust ...).

https://www.standardwebhooks.com (spec/standard-webhooks.md, version 1.0.0), symmetric scheme:

- ``webhook-id``: the message's id, the same on every attempt (the receiver's idempotency key).
  It goes into the signed content, so it must not contain a full stop; ours is derived from
  the outbox row's idempotency key (:func:`message_id`), whose event names contain one.
- ``webhook-timestamp``: the attempt's time, integer Unix seconds.
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>``; several,
  separated by spaces, while a secret is being replaced.
- The secret is ``whsec_`` followed by the base64 of 24 to 64 random bytes; the key is those
  bytes, not the text. A secret in any other form would be read differently by each library,
  so it is refused when the rules load (:func:`keys`) rather than sent and never verified.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

PREFIX = "whsec_"
MIN_BYTES = 24  # "at least 24 bytes (192 bits)", the specification's symmetric row
MAX_BYTES = 64  # "512 maximum" (bits)
GENERATED_BYTES = 32


def generate_secret() -> str:
    """A new endpoint secret, ``whsec_`` and the base64 of 32 random bytes."""
    return PREFIX + base64.b64encode(secrets.token_bytes(GENERATED_BYTES)).decode()


def key(secret: str) -> bytes:
    """The HMAC key of one ``whsec_`` secret; ValueError saying what is wrong with it."""
    if not secret.startswith(PREFIX):
        raise ValueError(
            "is not a Standard Webhooks secret: it must start with whsec_ (make one with "
            "`touchpoint webhooks secret` and give the receiver the same)"
        )
    text = secret[len(PREFIX) :]
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    # Canonical, padded standard base64 only: every official library decodes that alike.
    if not raw or base64.b64encode(raw).decode() != text:
        raise ValueError(
            "holds a whsec_ secret whose rest is not standard base64 (A-Z a-z 0-9 + /, padded "
            "with =); make one with `touchpoint webhooks secret`"
        )
    if not MIN_BYTES <= len(raw) <= MAX_BYTES:
        raise ValueError(
            f"holds a whsec_ secret of {len(raw)} bytes; Standard Webhooks secrets have "
            f"{MIN_BYTES} to {MAX_BYTES} random bytes (`touchpoint webhooks secret` makes one "
            f"of {GENERATED_BYTES})"
        )
    return raw


def keys(value: str) -> tuple[bytes, ...]:
    """The keys of an endpoint's secret variable: one ``whsec_`` secret, or several separated
    by spaces while one replaces another (each delivery is signed with every one of them)."""
    parts = value.split()
    if not parts:
        raise ValueError("is empty")
    return tuple(key(part) for part in parts)


def message_id(idempotency_key: str) -> str:
    """The ``webhook-id`` of an outbox row: ``msg_`` and 32 hex digits of the SHA-256 of its
    idempotency key. The same key gives the same id, on every attempt and after a restart."""
    return "msg_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]


def signature(keys: tuple[bytes, ...], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header: one ``v1,<base64>`` per key, space-separated."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(k, content, hashlib.sha256).digest()).decode()
        for k in keys
    )


def headers(keys: tuple[bytes, ...], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(keys, msg_id, timestamp, body),
    }
