"""``create_app(settings)``: the Starlette application and the state its views share."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from . import store
from .admin import routes as admin
from .api import routes as api
from .api.keys import ApiKeys
from .audience import geolocation
from .coupons.stock import Stock
from .decide.preview import Previews
from .errors import RequestError
from .privacy import retention
from .privacy.clientip import usable_ip
from .profiles import identity
from .profiles.recognition import Recognizer
from .rules import reloader as rules_reloader
from .rules import ruleset as rules_module
from .rules.lastgood import LastGood
from .settings import Settings
from .web import consent, coupons, decide, eligible, events, health, identify, snippet
from .web.limits import RateLimiter, refuse_cross_site
from .web.responses import JSONResponse
from .web.sharedlimit import SharedRateLimiter, table_path
from .webhooks import delivery as webhooks

log = logging.getLogger("touchpoint")


@dataclass
class Touchpoint:
    """Everything a request handler needs; one per app, at ``request.app.state.tp``."""

    settings: Settings
    rules: rules_module.Ruleset
    recognizer: Recognizer
    limiter: RateLimiter | SharedRateLimiter
    snippet: snippet.Asset
    previews: Previews
    identity_key: bytes
    api_keys: ApiKeys
    geolocation: geolocation.CountryDatabase | None = None
    reader: store.Reader | None = None
    writer: store.Writer | None = None
    last_good: LastGood | None = None  # the rules' state shared by the workers (healthz)
    reloader: rules_reloader.RulesReloader | None = None
    deliverer: webhooks.Deliverer | None = None
    stock: Stock = field(default_factory=Stock)
    purger: retention.Purger | None = None

    def now(self) -> int:
        return int(time.time())

    def guard(self, request: Request) -> None:
        """Checks every public POST passes before its body is read: rate, then origin."""
        self.limiter.check(request.client.host if request.client else "")
        refuse_cross_site(request, allowed=self.settings.origins)

    def client_ip(self, request: Request) -> str | None:
        """The client's address as anything derived from it may see it (``ip_handling``:
        truncated to its network, or None); the full address is used for the rate limit only."""
        return usable_ip(
            request.client.host if request.client else None, handling=self.settings.ip_handling
        )

    def webhooks_queued(self, queued: int) -> None:
        """Committed webhooks go out now rather than at the deliverer's next poll."""
        if queued and self.deliverer is not None:
            self.deliverer.wake()

    async def visitor(self, request: Request) -> tuple[str | None, store.VisitorRecord | None]:
        """The signed visitor id of the request, and the visitor's record if the id is known:
        read on the event loop (SQLite: a primary-key read costs less than a thread hop), or
        awaited on the reader's pool (PostgreSQL: a round trip to the server)."""
        visitor_id = self.recognizer.visitor_id(request)
        if not visitor_id or self.reader is None:
            return visitor_id, None
        if self.reader.pool is not None:
            return visitor_id, await self.reader.visitor_soon(visitor_id)
        conn = self.writer.loop_reads() if self.writer is not None else None
        return visitor_id, self.reader.visitor(visitor_id, conn=conn)


def create_app(settings: Settings | None = None) -> Starlette:
    """A Touchpoint app. Rules and the secret key are loaded now; the database opens at startup."""
    settings = settings or Settings.load()
    geo = geolocation.open_source(settings.geoip_database)
    if geo is not None:
        log.info("country database: %s", geo.description)
    last_good = LastGood(settings.data_dir, settings.rules_dir)
    serving = rules_reloader.start(
        settings.rules_dir,
        last_good,
        geolocation=geo is not None,
        interval=rules_reloader.INTERVAL if settings.reload_rules else None,
    )
    ruleset = serving.ruleset
    if serving.problems:
        for problem in serving.problems:
            log.error("rules not loaded: %s", problem)
        log.warning("serving the last good rules, accepted %s", _when(serving.accepted_at))
    else:
        rules_module.log_warnings(ruleset)
    secret_key = settings.resolve_secret_key()
    tp = Touchpoint(
        settings=settings,
        rules=ruleset,
        recognizer=Recognizer(
            secret_key,
            cookie_name=settings.cookie_name,
            max_age_days=settings.cookie_max_age_days,
            secure=settings.cookie_secure,
        ),
        limiter=_limiter(settings),
        snippet=snippet.Asset.load(),
        previews=Previews(secret_key),
        identity_key=identity.identity_key(secret_key),
        api_keys=ApiKeys(settings.api_keys_path),
        geolocation=geo,
        last_good=last_good,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store.migrate(settings.database_url)
        tp.reader = store.Reader(settings.database_url)
        await tp.reader.open_pool()
        tp.writer = store.open_writer(settings.database_url, linger=settings.group_commit_ms / 1000)
        # Every worker delivers webhooks; leases keep two from sending one row at once.
        tp.deliverer = webhooks.Deliverer(
            settings, tp.writer, tp.reader, lambda: tp.rules.site.webhooks
        )
        tp.deliverer.start()
        # Every worker runs the purge loop; a lease lets one of them purge per interval.
        tp.purger = retention.Purger(settings, tp.writer)
        tp.purger.start()
        _tune_garbage_collection()
        watching = []
        if settings.reload_rules:
            tp.reloader = rules_reloader.RulesReloader(
                settings.rules_dir,
                lambda ruleset: setattr(tp, "rules", ruleset),
                serving,
                last_good,
                geolocation=geo is not None,
            )
            watching.append(asyncio.create_task(tp.reloader.run()))
        if geo is not None:
            watching.append(asyncio.create_task(geolocation.watch(geo)))
        if isinstance(tp.limiter, SharedRateLimiter):
            watching.append(asyncio.create_task(tp.limiter.forget()))
        try:
            yield
        finally:
            for task in watching:
                task.cancel()
            await tp.purger.stop()
            await tp.deliverer.stop()
            tp.writer.close()
            await tp.reader.close_pool()
            tp.reader.close()

    middleware = []
    if settings.origins:
        # Cross-origin embedding (docs/embedding.md#cross-origin): credentialed CORS for the
        # listed origins only. Same-origin sites, the documented set-up, pay nothing for it.
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=sorted(settings.origins),
                allow_credentials=True,
                allow_methods=["GET", "POST"],
                allow_headers=["Content-Type"],
            )
        )
    extra: list[BaseRoute] = []
    if settings.admin_console:
        console_mount, console = admin.mount(settings, secret_key)
        extra.append(console_mount)
    app = Starlette(
        routes=_routes(settings) + extra,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={RequestError: _request_error, HTTPException: _http_error, 500: _crash},
    )
    app.state.tp = tp
    if settings.admin_console:
        app.state.console = console
    return app


def _limiter(settings: Settings) -> RateLimiter | SharedRateLimiter:
    """One rate limit per client address: in the worker's memory, or, with several workers,
    in a table they share (web/sharedlimit.py), so that a client does not get it per worker."""
    # ``workers`` as serve resolved it for its workers (0, one per core, only means something
    # to serve: an app made otherwise is one process).
    if settings.workers > 1 and settings.rate_limit_per_minute > 0:
        path = table_path(Path(settings.database_path))
        return SharedRateLimiter(settings.rate_limit_per_minute, path)
    return RateLimiter(settings.rate_limit_per_minute)


def _tune_garbage_collection() -> None:
    """Requests allocate many short-lived objects and few reference cycles. With Python's default
    thresholds (700, 10, 10) a collection runs every few requests and a full one often enough to
    stall the event loop for tens of milliseconds: in make bench the p99 of decide was 190 ms
    and a quarter of the throughput went to collecting. What lives from start-up on (modules,
    rules, templates) is frozen out of collections, and collections run less often."""
    gc.freeze()
    gc.set_threshold(10_000, 20, 100)


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def create_app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory``: settings from ``TOUCHPOINT_*`` variables."""
    return create_app(Settings.load())


def _routes(settings: Settings) -> list[BaseRoute]:
    p = settings.prefix  # flat routes, not a Mount: one routing layer less on every request
    routes: list[BaseRoute] = [
        Route(f"{p}/t.js", snippet.serve, methods=["GET", "HEAD"]),
        Route(f"{p}/v1/decide", decide.decide, methods=["POST"]),
        Route(f"{p}/v1/events", events.events, methods=["POST"]),
        Route(f"{p}/v1/eligible", eligible.eligible, methods=["POST"]),
        Route(f"{p}/v1/consent", consent.consent, methods=["POST"]),
        Route(f"{p}/v1/identify", identify.identify, methods=["POST"]),
        Route(f"{p}/v1/reset", identify.reset, methods=["POST"]),
        Route(f"{p}/v1/coupons/reveal", coupons.reveal, methods=["POST"]),
        Route(f"{p}/v1/consent", consent.texts, methods=["GET", "HEAD"]),
        Route(f"{p}/healthz", health.healthz, methods=["GET"]),
        *api.routes(f"{p}/v1/api"),
    ]
    if settings.demo:
        demo_dir = Path(settings.demo_dir)
        routes += [
            Route("/", lambda request: RedirectResponse("/demo/")),
            Mount("/demo", StaticFiles(directory=demo_dir, html=True), name="demo"),
        ]
    return routes


async def _request_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestError)
    return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _crash(request: Request, exc: Exception) -> Response:
    # Logged without the request's address, cookies or body: no personal data in logs.
    log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"error": "internal error"}, status_code=500)
