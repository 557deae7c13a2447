"""Size and rate limits for the public endpoints, and strict JSON body parsing."""

from __future__ import annotations

import math
import time
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request

from ..errors import PayloadTooLarge, RateLimited, RequestError


async def read_json(request: Request, *, max_bytes: int) -> dict[str, Any]:
    """The request body as a JSON object, refusing bodies over ``max_bytes`` before reading them."""
    body = await read_body(request, max_bytes=max_bytes)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(data, dict):
        raise RequestError("body must be a JSON object")
    return data


async def read_body(request: Request, *, max_bytes: int) -> bytes:
    """The request body, refusing bodies over ``max_bytes`` before reading them."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise RequestError("invalid Content-Length")
        if int(declared) > max_bytes:
            raise PayloadTooLarge(f"body larger than {max_bytes} bytes")
    chunks = []
    size = 0
    # ASGI messages read directly: request.stream() is an async generator, whose set-up costs
    # more than the rest of reading a small body.
    while True:
        message = await request.receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"body larger than {max_bytes} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class RateLimiter:
    """A token bucket per client address: ``per_minute`` requests, bursts up to the same.

    In memory and per worker process; an address is forgotten within two refill periods (two
    minutes) of its last request, and is never logged or stored (docs/privacy.md).
    """

    MAX_CLIENTS = 100_000

    def __init__(self, per_minute: int) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.buckets: dict[str, tuple[float, float]] = {}
        self._swept_at: float | None = None

    def check(self, client: str, *, now: float | None = None) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic() if now is None else now
        if self._swept_at is None:
            self._swept_at = now
        elif now - self._swept_at >= self.capacity / self.rate:
            self._swept_at = now
            self._forget_refilled(now)
        tokens, last = self.buckets.get(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self.buckets[client] = (tokens, now)
            wait = math.ceil((1.0 - tokens) / self.rate)
            raise RateLimited("too many requests; slow down", retry_after=max(1, wait))
        if len(self.buckets) >= self.MAX_CLIENTS and client not in self.buckets:
            self._prune(now)
        self.buckets[client] = (tokens - 1.0, now)

    def _forget_refilled(self, now: float) -> None:
        # A bucket that has had time to refill completely carries no information.
        full_after = self.capacity / self.rate
        self.buckets = {k: v for k, v in self.buckets.items() if now - v[1] < full_after}

    def _prune(self, now: float) -> None:
        self._forget_refilled(now)
        if len(self.buckets) >= self.MAX_CLIENTS:
            # Under a flood of new addresses, forget the clients with the most tokens left:
            # the ones being limited keep their (empty) buckets.
            keep = sorted(self.buckets.items(), key=lambda item: item[1][0])
            self.buckets = dict(keep[: self.MAX_CLIENTS // 2])


def refuse_cross_site(request: Request, *, allowed: frozenset[str] = frozenset()) -> None:
    """Refuse a POST another site made the visitor's browser send, unless its origin is one of
    the ``allowed`` ones (the ``allowed_origins`` setting, for a snippet served cross-origin).

    The endpoints accept text/plain bodies (no CORS preflight), so a plain HTML form on any
    site could post to them as a top-level navigation, and the response's cookie would be
    stored: a forged consent. Browsers say where a request comes from in Sec-Fetch-Site; older
    ones send Origin, compared with the Host the reverse proxy passed on.
    """
    if allowed and request.headers.get("origin") in allowed:
        return
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        if site != "same-origin":
            raise RequestError("cross-site requests are refused", status=403)
        return
    origin = request.headers.get("origin")
    if origin == "null":
        # An opaque origin: a sandboxed frame, a data: or file: page, a redirect across sites.
        # Whoever sent it, it is not the site's own page (RFC 6454 7.3, Fetch "serialized origin").
        raise RequestError("cross-site requests are refused", status=403)
    if origin:
        host = origin.split("://", 1)[-1]
        if host != request.headers.get("host"):
            raise RequestError("cross-site requests are refused", status=403)
