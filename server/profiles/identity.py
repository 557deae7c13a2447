"""Who a visitor is: e-mail addresses and customer ids, normalised and kept as keyed hashes.

An identifier is looked up by ``HMAC-SHA256(key, kind + ":" + normalised value)``, the key
derived from the server's secret key. A keyed hash, unlike a plain SHA-256 of the address,
cannot be reversed by hashing a list of known addresses without the key (GDPR Art. 32,
pseudonymisation). What else is kept depends on the ``data_depth`` setting:

- ``minimal``: the hashes only;
- ``standard`` (default): also the first name, to greet the person and pre-fill forms;
- ``full``: also the e-mail address in clear, to pre-fill forms.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import hmac
import re
from typing import Any

from ..errors import FieldError, RequestError
from ..store.records import Identifier, Identity
from ..syntax.shapes import Field, Shape

KINDS = ("email", "customer")
DATA_DEPTHS = ("minimal", "standard", "full")
MAX_EMAIL = 254  # RFC 5321 4.5.3.1.3: the longest path, less the angle brackets
MAX_CUSTOMER_ID = 128
MAX_FIRST_NAME = 100
_LOCAL = re.compile(r"^[^\s@]{1,64}$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalise_email(raw: str) -> str:
    """The form an address is matched in: trimmed, lower case, the domain in IDNA (punycode).

    The local part is lower-cased although RFC 5321 lets it be case-sensitive: no mail system in
    use treats it so, and people type it both ways. Dots and ``+tags`` are kept, also for Gmail:
    other providers give them meaning, and guessing wrong would join two people's profiles.
    """
    text = raw.strip()
    local, at, domain = text.rpartition("@")
    if not at or not _LOCAL.match(local):
        raise ValueError("not an e-mail address")
    domain = domain.lower().rstrip(".")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("the domain is not a valid host name") from None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ValueError("the domain is not a valid host name")
    address = f"{local.lower()}@{ascii_domain}"
    if len(address) > MAX_EMAIL:
        raise ValueError(f"longer than {MAX_EMAIL} characters")
    return address


def normalise_customer_id(raw: str) -> str:
    """A customer id as the shop sends it, trimmed; case is kept (ids may be case-sensitive)."""
    text = raw.strip()
    if not text:
        raise ValueError("empty")
    if len(text) > MAX_CUSTOMER_ID:
        raise ValueError(f"longer than {MAX_CUSTOMER_ID} characters")
    return text


def identity_key(secret_key: str) -> bytes:
    """The hashing key, derived from the secret key so that it differs from the cookie's."""
    return hmac.digest(secret_key.encode(), b"touchpoint.identity", "sha256")


def identifier_hash(key: bytes, kind: str, value: str) -> str:
    """The lookup hash of a normalised identifier; the kind prefix keeps kinds apart."""
    return hmac.digest(key, f"{kind}:{value}".encode(), "sha256").hex()


# How long a verification token may be valid: the shop signs one per page it renders.
MAX_TOKEN_SECONDS = 86400
# A verified identity (docs/security.md#verified-identity): the shop's backend signs the
# identifiers of the customer who is logged in, with an expiry, under the identity_secret.
VERIFICATION = Shape(
    (
        Field("expires", "time", "Unix seconds after which the token is refused.", required=True),
        Field(
            "signature",
            "string",
            "HMAC-SHA256, hex, of the signed message under the identity_secret.",
            required=True,
            max_length=128,
        ),
    )
)
# The body of an identify call (POST /tp/v1/identify). Over-long values are refused before they
# are normalised; normalise_email and normalise_customer_id hold the exact limits.
IDENTIFY = Shape(
    (
        Field(
            "email",
            "string",
            "The e-mail address the visitor gave.",
            blank=True,
            max_length=MAX_EMAIL + 64,
        ),
        Field(
            "customer_id",
            "string",
            "The shop's customer id.",
            blank=True,
            max_length=MAX_CUSTOMER_ID + 64,
        ),
        Field(
            "first_name",
            "string",
            "The first name the visitor gave.",
            blank=True,
            max_length=MAX_FIRST_NAME,
        ),
        Field(
            "verification",
            "object",
            "The shop's signature of email and customer_id: only a verified identity joins the"
            " profile that already holds them.",
            shape=VERIFICATION,
        ),
    )
)


def signed_message(email: str, customer_id: str, expires: int) -> bytes:
    """What the shop signs: the email and customer_id exactly as the page passes them (empty
    when not passed) and the expiry, one per line after a fixed first line."""
    return f"touchpoint-identity\n{email}\n{customer_id}\n{expires}".encode()


def verified(values: dict[str, Any], secret: str, *, now: int) -> bool:
    """Whether the identify call carries a valid token for its email and customer_id. Without a
    token, False (a claim). A token that does not hold is refused, never taken as a claim."""
    token = values.get("verification")
    if token is None:
        return False
    if not secret:
        raise RequestError(
            "identity verification is not set up on this server (setting identity_secret)",
            status=403,
        )
    expires = token["expires"]
    if expires < now:
        raise RequestError("the identity token has expired: sign a fresh one", status=403)
    if expires > now + MAX_TOKEN_SECONDS:
        raise FieldError("verification.expires", "may lie at most 24 hours ahead", status=400)
    message = signed_message(values.get("email", ""), values.get("customer_id", ""), expires)
    expected = hmac.new(secret.encode(), message, "sha256").hexdigest()
    if not hmac.compare_digest(expected, token["signature"].lower()):
        raise RequestError(
            "the identity token's signature does not match (another identity_secret, or other"
            " values than the ones signed)",
            status=403,
        )
    return True


def parse(
    data: dict[str, Any], key: bytes, *, depth: str, secret: str = "", now: int = 0
) -> Identity:
    """An :class:`Identity` from ``{email?, customer_id?, first_name?}`` (:data:`IDENTIFY`),
    with only what ``depth`` keeps in clear. Raises :class:`FieldError`: 400 for a value that
    is no string, 422 for one that is no e-mail address or customer id."""
    values = IDENTIFY.parse(data, status=400)
    vouched = verified(values, secret, now=now)
    identifiers = []
    email = values.get("email")
    if email is not None:
        try:
            address = normalise_email(email)
        except ValueError as exc:
            raise FieldError("email", str(exc)) from None
        clear = address if depth == "full" else None
        identifiers.append(Identifier("email", identifier_hash(key, "email", address), clear))
    customer = values.get("customer_id")
    if customer is not None:
        try:
            customer = normalise_customer_id(customer)
        except ValueError as exc:
            raise FieldError("customer_id", str(exc)) from None
        identifiers.append(Identifier("customer", identifier_hash(key, "customer", customer)))
    if not identifiers:
        raise FieldError("email", "give an email or a customer_id", status=400)
    first_name = values.get("first_name")
    if first_name is not None:
        first_name = first_name.strip() or None
    return Identity(tuple(identifiers), first_name if depth != "minimal" else None, vouched)


def reference(ref: str, key: bytes) -> tuple[str, str]:
    """A server API visitor reference: ``("id", visitor id)``, or ``(kind, hash)`` for
    ``email:<address>`` and ``customer:<id>``. Raises :class:`FieldError`."""
    kind, colon, value = ref.partition(":")
    if not colon:
        return "id", ref
    try:
        if kind == "email":
            return "email", identifier_hash(key, "email", normalise_email(value))
        if kind == "customer":
            return "customer", identifier_hash(key, "customer", normalise_customer_id(value))
    except ValueError as exc:
        raise FieldError(kind, str(exc)) from None
    raise FieldError("ref", "a visitor id, email:<address> or customer:<id>")
