"""Webhooks: signed JSON POSTs to the shop's, CRM's or e-mail system's endpoints, at least once.

A webhook is queued with :func:`enqueue` inside the writer's unit of work that makes the change
it reports, as a row of the ``webhook_outbox`` table: it is sent if and only if the change is
committed (the transactional outbox pattern). Requests are signed as Standard Webhooks
(``signing.py``), so that receivers verify them with that specification's libraries.
:class:`Deliverer`, a task in every server worker, claims due rows with a lease, POSTs them and
records the answer; failures are retried with capped exponential backoff and full jitter until
``webhook_max_attempts``, then the row is marked ``failed`` and left for ``touchpoint webhooks``.
docs/webhooks.md is the reference.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import orjson

from .. import __version__, store
from ..settings import Settings
from ..store import Connection
from ..store.activity import Effects
from . import signing

log = logging.getLogger("touchpoint.webhooks")

EVENTS = (
    "score.threshold",
    "stage.changed",
    "visitor.identified",
    "form.submitted",
    "coupon.claimed",
    "coupon.redeemed",
    "coupon.low_stock",
)
# How many rows one worker sends at once, and how long it keeps outbox rows it has claimed
# beyond the request's timeout before another worker may take them over.
BATCH = 16
LEASE_MARGIN = 30.0


@dataclass(frozen=True)
class Endpoint:
    """A receiver configured under ``webhooks:`` in rules/site.yaml."""

    name: str
    url: str
    # The environment variable ``secret_env``: one ``whsec_`` secret, or several separated by
    # spaces while one replaces another (signing.keys); "" while that is unset.
    secret: str
    events: frozenset[str] = frozenset()
    secret_env: str = ""

    @property
    def ready(self) -> bool:
        """Whether deliveries can be signed; until then its rows wait in the outbox."""
        return bool(self.secret)

    @functools.cached_property
    def keys(self) -> tuple[bytes, ...]:
        """The HMAC keys deliveries are signed with (ValueError for a secret in another form,
        which loading site.yaml reports with its file and line)."""
        return signing.keys(self.secret)


def envelope(event: str, payload: Mapping[str, Any], *, now: int, key: str) -> str:
    """The JSON body every receiver gets: ``{id, event, created_at, data}``, where ``id`` is
    the ``webhook-id`` header's value (derived from the idempotency key ``key``)."""
    body = {"id": signing.message_id(key), "event": event, "created_at": now, "data": dict(payload)}
    return orjson.dumps(body).decode()


def enqueue(
    conn: Connection,
    endpoints: Mapping[str, Endpoint] | Iterable[Endpoint],
    event: str,
    payload: Mapping[str, Any],
    *,
    now: int,
    key: str,
    to: str | None = None,
) -> int:
    """Queue ``event`` with ``payload`` for every endpoint subscribed to it; returns the rows
    queued. Runs inside the caller's writer unit, so it is committed with the change it reports.

    ``payload`` becomes the envelope's ``data``; its ``visitor_id`` is also kept
    beside the row, so that erasing a visitor finds their webhooks. ``key`` is the idempotency
    key: the same event (say, one visitor crossing one threshold) must always get the same key;
    queueing it twice for one endpoint queues it once. ``to`` names one endpoint to queue for
    whatever its ``events`` list says (a threshold action's ``webhook: sales``); an unknown name
    queues nothing and is logged, so that a rules edit never makes the change itself fail.
    After the unit is committed, ``Deliverer.wake`` sends it without waiting for the next poll.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    chosen = list(endpoints.values() if isinstance(endpoints, Mapping) else endpoints)
    if to is not None:
        chosen = [e for e in chosen if e.name == to]
        if not chosen:
            log.warning("no webhook endpoint %r is configured in site.yaml; %s not sent", to, event)
    else:
        chosen = [e for e in chosen if event in e.events]
    body = envelope(event, payload, now=now, key=key)
    visitor = payload.get("visitor_id")
    visitor_id = visitor if isinstance(visitor, str) else None
    queued = 0
    for endpoint in chosen:
        queued += store.queue_webhook(
            conn,
            endpoint=endpoint.name,
            event=event,
            key=key,
            body=body,
            now=now,
            visitor_id=visitor_id,
        )
    return queued


def report(
    conn: Connection,
    endpoints: Mapping[str, Endpoint],
    visitor_id: str,
    effects: Effects | None,
    *,
    now: int,
) -> int:
    """Queue what recording a visitor's activities changed beyond the profile: each score
    threshold crossed (``score.threshold``, to its subscribers and to the endpoint a threshold
    action names) and each stage change (``stage.changed``). Returns the rows queued."""
    if not endpoints or effects is None or not (effects.thresholds or effects.stage_changes):
        return 0  # no endpoint at all: not even the visitor's identifiers are read
    who = visitor(conn, visitor_id)
    queued = 0
    for payload in effects.thresholds:
        key = f"score.threshold:{visitor_id}:{payload['threshold']}:{now}"
        queued += enqueue(conn, endpoints, "score.threshold", {**who, **payload}, now=now, key=key)
    for name, event, payload in effects.webhooks:
        key = f"{event}:{visitor_id}:{payload['threshold']}:{now}"
        queued += enqueue(conn, endpoints, event, {**who, **payload}, now=now, key=key, to=name)
    for change in effects.stage_changes:
        key = f"stage.changed:{visitor_id}:{change.at}:{change.before}:{change.after}"
        change_payload = {
            **who,
            "before": change.before,
            "after": change.after,
            "reason": change.reason,
            "time": change.at,
        }
        queued += enqueue(conn, endpoints, "stage.changed", change_payload, now=now, key=key)
    return queued


def visitor(conn: Connection, visitor_id: str) -> dict[str, Any]:
    """Who a webhook is about: the visitor id and the identifiers, each with its value in
    clear where data_depth ``full`` keeps it."""
    return {"visitor_id": visitor_id, "identifiers": store.identifiers_of(conn, visitor_id)}


def backoff(attempt: int, *, base: float, cap: float, rand: Callable[[], float]) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1, 2, ...): full jitter over an
    exponential bound, ``rand() * min(cap, base * 2 ** (attempt - 1))``. The jitter spreads the
    retries of a burst of webhooks that failed together when a receiver comes back."""
    exponent = min(attempt - 1, 64)  # 2**64 seconds is past any cap; keeps the float finite
    return rand() * min(cap, base * 2.0**exponent)


@dataclass(frozen=True)
class Outcome:
    status: int | None
    error: str | None  # None when delivered

    @property
    def delivered(self) -> bool:
        return self.error is None


class Deliverer:
    """The delivery loop of one server worker: claim due rows, POST them, record the answers.

    Claims and results go through the store's writer; the wait for work reads the outbox with
    the worker's reader. ``stop`` cancels requests in flight and hands their rows back.
    """

    def __init__(
        self,
        settings: Settings,
        writer: store.Writer,
        reader: store.Reader,
        endpoints: Callable[[], Mapping[str, Endpoint]],
        *,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.writer = writer
        self.reader = reader  # its connection, read each time: it connects again after a loss
        self.endpoints = endpoints
        self.clock = clock
        self.rand = rand
        self.owner = uuid.uuid4().hex  # this worker's name on its leases
        self.in_flight: dict[int, asyncio.Task[None]] = {}  # outbox row id -> its attempt
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="touchpoint-webhooks")

    def wake(self) -> None:
        """Look for due rows now rather than at the next poll (after queueing some)."""
        self._wake.set()

    async def stop(self) -> None:
        """Cancel requests in flight and hand their rows back, due at once."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if not self.writer.alive:  # nothing can be written; the leases run out instead
            return
        now = self.clock()
        released = await self.writer.write(lambda c: store.release_webhooks(c, self.owner, now=now))
        if released:
            log.info("handed back %d webhook(s) in flight", released)

    async def run(self) -> None:
        """Until cancelled: keep up to BATCH attempts in flight, claiming rows as they are due.
        A slow endpoint holds only the slots of its own requests."""
        s = self.settings
        timeout = httpx.Timeout(s.webhook_timeout_seconds)
        headers = {"User-Agent": f"Touchpoint/{__version__}"}
        async with httpx.AsyncClient(timeout=timeout, headers=headers) as client:
            try:
                while True:
                    due = None
                    try:
                        free = BATCH - len(self.in_flight)
                        due = self.due() if free > 0 else None
                        if due is not None and due <= self.clock():
                            if await self.claim(client, limit=free):
                                continue
                    except Exception:  # a database error: logged, tried again at the next poll
                        log.exception("webhook delivery failed")
                        due = None
                    await self._sleep(due)
            finally:
                for task in self.in_flight.values():
                    task.cancel()
                await asyncio.gather(*self.in_flight.values(), return_exceptions=True)

    def due(self) -> float | None:
        """When the next row of a ready endpoint can be claimed; None when there is none."""
        ready = [name for name, e in self.endpoints().items() if e.ready]
        return store.webhook_due(self.reader.conn, ready)

    async def _sleep(self, due: float | None) -> None:
        """Until ``due``, an attempt ends or a wake-up, at most ``webhook_poll_seconds``."""
        wait = self.settings.webhook_poll_seconds
        if due is not None:
            wait = min(wait, max(0.0, due - self.clock()))
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), wait)

    async def claim(self, client: httpx.AsyncClient, *, limit: int) -> int:
        """Claim up to ``limit`` due rows and start an attempt for each; returns how many."""
        endpoints = {name: e for name, e in self.endpoints().items() if e.ready}
        now = self.clock()
        lease_until = now + self.settings.webhook_timeout_seconds + LEASE_MARGIN
        rows = await self.writer.write(
            lambda c: store.claim_webhooks(
                c, endpoints, now=now, owner=self.owner, lease_until=lease_until, limit=limit
            )
        )
        for row in rows:
            task = asyncio.create_task(self._attempt(client, endpoints[row.endpoint], row))
            self.in_flight[row.id] = task
            task.add_done_callback(functools.partial(self._done, row.id))
        return len(rows)

    def _done(self, row_id: int, _task: asyncio.Task[None]) -> None:
        self.in_flight.pop(row_id, None)
        self._wake.set()  # a slot is free

    async def _attempt(
        self, client: httpx.AsyncClient, endpoint: Endpoint, row: store.OutboxRow
    ) -> None:
        outcome = await post(
            client,
            endpoint,
            row,
            now=int(self.clock()),
            timeout=self.settings.webhook_timeout_seconds,
        )
        try:
            await self.writer.write(lambda c: self._record(c, row, outcome))
        except Exception:  # the lease runs out and the row is tried again
            log.exception("recording webhook %d failed", row.id)

    def _record(self, conn: Connection, row: store.OutboxRow, outcome: Outcome) -> None:
        now = self.clock()
        if outcome.delivered:
            store.webhook_delivered(conn, row.id, now=int(now), status=outcome.status or 0)
            return
        s = self.settings
        retry_at = None
        if row.attempts < s.webhook_max_attempts:
            delay = backoff(
                row.attempts,
                base=s.webhook_backoff_seconds,
                cap=s.webhook_backoff_max_seconds,
                rand=self.rand,
            )
            retry_at = now + delay
        else:
            log.warning(
                "webhook %d to %s failed %d times; giving up: %s",
                row.id,
                row.endpoint,
                row.attempts,
                outcome.error,
            )
        store.webhook_attempt_failed(
            conn,
            row.id,
            owner=self.owner,
            status=outcome.status,
            error=outcome.error or "",
            retry_at=retry_at,
        )


async def post(
    client: httpx.AsyncClient, endpoint: Endpoint, row: store.OutboxRow, *, now: int, timeout: float
) -> Outcome:
    """One attempt: POST the row's body, signed; any 2xx answer is a delivery."""
    body = row.body.encode()
    headers = {
        "Content-Type": "application/json",
        "Touchpoint-Event": row.event,
        **signing.headers(endpoint.keys, signing.message_id(row.key), now, body),
    }
    try:
        # One deadline for the whole exchange; httpx's timeout applies to each phase apart.
        # The answer's body is not read: only its status counts.
        async with asyncio.timeout(timeout):
            async with client.stream("POST", endpoint.url, content=body, headers=headers) as r:
                status = r.status_code
    except TimeoutError:
        return Outcome(None, f"no answer within {timeout:g} s")
    except httpx.HTTPError as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= status < 300:
        return Outcome(status, None)
    return Outcome(status, f"HTTP {status}")
