"""The one settings table: names, defaults and help, read from the environment and CLI flags.

Every setting is a field of :class:`Settings`; its ``help`` metadata feeds ``touchpoint serve
--help`` and the operations docs (a test checks each one is documented). A setting ``foo_bar``
is read from ``TOUCHPOINT_FOO_BAR`` and from the flag ``--foo-bar``; flags win over the
environment, the environment over the default.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError

ENV_PREFIX = "TOUCHPOINT_"
# CNIL and the EDPB guidance cap consent-based identifiers at 13 months.
MAX_COOKIE_DAYS = 395


def _setting(default: Any, help: str, *, choices: tuple[str, ...] = ()) -> Any:
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


@dataclasses.dataclass(frozen=True)
class Settings:
    host: str = _setting("127.0.0.1", "Interface to listen on.")
    port: int = _setting(8000, "TCP port to listen on.")
    workers: int = _setting(
        1, "Number of uvicorn worker processes (0: one per CPU core the server may use)."
    )
    prefix: str = _setting(
        "/tp", "URL path prefix of every Touchpoint route; the reverse proxy forwards only this."
    )
    data_dir: str = _setting("data", "Folder for the SQLite database and the generated secret key.")
    database: str = _setting(
        "",
        "SQLite database file (default: DATA_DIR/touchpoint.db), or a postgresql:// URL"
        " (docs/operations.md#postgresql).",
    )
    rules_dir: str = _setting("rules", "Folder of the rules files (*.yaml) and their templates/.")
    reload_rules: bool = _setting(
        True,
        "Reload the rules once a change has held still for half a second; an invalid edit keeps"
        " the last good set.",
    )
    secret_key: str = _setting(
        "",
        "Key that signs the visitor cookie and keys the identifier hashes. Default: generated "
        "once into DATA_DIR/secret.key "
        "(mode 0600). Set it explicitly when several hosts share one database.",
    )
    identity_secret: str = _setting(
        "",
        "Secret shared with the shop's backend, which signs the identity of a logged-in "
        "customer with it (docs/security.md#verified-identity); without it every identify is "
        "a claim that never joins a known profile.",
    )
    cookie_name: str = _setting("tp_vid", "Name of the signed first-party visitor cookie.")
    cookie_max_age_days: int = _setting(
        MAX_COOKIE_DAYS, f"Lifetime of the visitor cookie in days (at most {MAX_COOKIE_DAYS})."
    )
    cookie_secure: str = _setting(
        "auto",
        "Mark the cookie Secure: auto (when the request came over https), always or never.",
        choices=("auto", "always", "never"),
    )
    consent_revision: int = _setting(
        1, "Revision of the consent text; raising it asks every visitor again."
    )
    allowed_origins: str = _setting(
        "",
        "Other origins of the same site whose pages may embed the snippet cross-origin, comma "
        "separated, e.g. https://www.example.com (default: same origin only).",
    )
    group_commit_ms: float = _setting(
        5,
        "How long a write nobody waits for (a page view count) waits for "
        "others to share its commit; longer: fewer commits under load, more lost on a crash.",
    )
    max_body_bytes: int = _setting(16384, "Largest request body accepted by the public endpoints.")
    rate_limit_per_minute: int = _setting(
        600, "Requests per minute one client address may make to the public endpoints (0: off)."
    )
    forwarded_allow_ips: str = _setting(
        "127.0.0.1",
        "Proxy addresses whose X-Forwarded-For/-Proto headers are trusted (comma separated).",
    )
    geoip_database: str = _setting(
        "",
        "MaxMind-format country database (.mmdb: GeoLite2-Country, DB-IP Lite Country) for "
        "`country` conditions, read locally and reloaded when the file is replaced; empty: "
        "the country is unknown.",
    )
    data_depth: str = _setting(
        "standard",
        "What is stored (docs/privacy.md#data-depth): minimal (profile counters, popup "
        "history, hashed identifiers; no event log), standard (+ the event log, stage history "
        "and first name) or full (+ the e-mail address in clear, to pre-fill forms).",
        choices=("minimal", "standard", "full"),
    )
    api_keys_file: str = _setting(
        "", "JSON file of the server API's keys (hashes only; default: DATA_DIR/api_keys.json)."
    )
    api_max_body_bytes: int = _setting(
        1048576, "Largest request body accepted by the server API (a batch of events)."
    )
    demo: bool = _setting(False, "Serve the demo shop at /demo/ (make run turns it on).")
    demo_dir: str = _setting("static/demo", "Folder of the demo shop's static pages.")
    webhook_max_attempts: int = _setting(
        20, "Attempts to deliver one webhook before it is marked failed (docs/webhooks.md)."
    )
    webhook_timeout_seconds: float = _setting(
        10.0, "Time one webhook request may take before it counts as a failed attempt."
    )
    webhook_backoff_seconds: float = _setting(
        30.0, "Longest wait before the first retry of a webhook; doubles with each attempt."
    )
    webhook_backoff_max_seconds: float = _setting(
        21600.0, "Longest wait between two attempts to deliver one webhook."
    )
    webhook_poll_seconds: float = _setting(
        1.0, "How often each worker looks for webhooks that are due."
    )
    webhook_keep_days: int = _setting(
        7, "Days a delivered webhook stays in the outbox before it is deleted."
    )
    retention_events_days: int = _setting(
        180,
        "Days a raw event (page view, behaviour, popup event) is kept in the event log "
        "(0: kept forever).",
    )
    retention_profiles_days: int = _setting(
        395,
        "Days without a page view, consent answer or kept event after which a profile is deleted "
        "with everything stored about it (0: kept forever).",
    )
    retention_consent_days: int = _setting(
        1095,
        "Days a consent log entry is kept as proof; a kept profile's latest answer stays "
        "(0: kept forever).",
    )
    purge_interval_minutes: float = _setting(
        60.0,
        "How often the server deletes what is past retention (0: never; run touchpoint purge "
        "from cron instead).",
    )
    purge_batch_rows: int = _setting(
        1000, "Rows the purge deletes per transaction; it pauses between transactions."
    )
    ip_handling: str = _setting(
        "truncate",
        "What anything derived from the client's IP address sees: truncate (IPv4 /24, IPv6 /48) "
        "or drop (nothing). Addresses are never stored.",
        choices=("truncate", "drop"),
    )
    admin_console: bool = _setting(
        True,
        "Serve the marketers' console under PREFIX/admin (docs/admin.md); off: every console"
        " path answers 404.",
    )
    admin_host: str = _setting(
        "",
        "Serve the console only to requests for this host name (its own origin, e.g."
        " console.shop.example; docs/admin.md#its-own-origin); empty: any host.",
    )
    admin_session_idle_minutes: float = _setting(
        30.0, "A console session ends after this many minutes without a request."
    )
    admin_session_max_hours: float = _setting(
        12.0, "A console session ends this many hours after sign-in, however active."
    )
    admin_audit_days: int = _setting(
        365,
        "Days an entry of the console's audit log (visitor lookups, exports, erasures) is kept"
        " (0: kept forever).",
    )
    admin_login_per_minute: int = _setting(
        10,
        "Sign-in attempts per minute to the console from one client address (an IPv6 address"
        " by its /64); ten times as many for one user name, sixty times as many in all (bursts"
        " up to the same).",
    )
    log_level: str = _setting(
        "info", "Log level.", choices=("critical", "error", "warning", "info", "debug")
    )

    @classmethod
    def fields(cls) -> tuple[dataclasses.Field[Any], ...]:
        return dataclasses.fields(cls)

    @classmethod
    def load(
        cls, overrides: Mapping[str, Any] | None = None, *, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Build settings from defaults, ``TOUCHPOINT_*`` variables and explicit overrides."""
        environ = os.environ if environ is None else environ
        overrides = dict(overrides or {})
        values: dict[str, Any] = {}
        for field in cls.fields():
            if overrides.get(field.name) is not None:
                raw = overrides[field.name]
                source = f"--{field.name.replace('_', '-')}"
            elif ENV_PREFIX + field.name.upper() in environ:
                source = ENV_PREFIX + field.name.upper()
                raw = environ[source]
            else:
                continue
            values[field.name] = _coerce(field, raw, source)
        unknown = set(overrides) - {f.name for f in cls.fields()}
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if not self.prefix.startswith("/") or self.prefix.endswith("/") or len(self.prefix) < 2:
            raise ConfigError(f"prefix must look like /tp (got {self.prefix!r})")
        if not 1 <= self.cookie_max_age_days <= MAX_COOKIE_DAYS:
            raise ConfigError(f"cookie_max_age_days must be between 1 and {MAX_COOKIE_DAYS}")
        if self.workers < 0:
            raise ConfigError("workers must be 0 (one per CPU core) or more")
        if self.max_body_bytes < 1024:
            raise ConfigError("max_body_bytes must be at least 1024")
        if self.api_max_body_bytes < 1024:
            raise ConfigError("api_max_body_bytes must be at least 1024")
        for origin in self.origins:
            if not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ConfigError(
                    f"allowed_origins: {origin!r} is not an origin like https://www.example.com"
                )
        if self.webhook_max_attempts < 1:
            raise ConfigError("webhook_max_attempts must be at least 1")
        if self.webhook_keep_days < 0:
            raise ConfigError("webhook_keep_days must not be negative")
        for name in (
            "retention_events_days",
            "retention_profiles_days",
            "retention_consent_days",
            "purge_interval_minutes",
            "admin_audit_days",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative (0: keep forever / never)")
        if not 0 < self.admin_session_idle_minutes <= self.admin_session_max_hours * 60:
            raise ConfigError(
                "admin_session_idle_minutes must be above 0 and within admin_session_max_hours"
            )
        if self.admin_login_per_minute < 1:
            raise ConfigError("admin_login_per_minute must be at least 1")
        if self.purge_batch_rows < 1:
            raise ConfigError("purge_batch_rows must be at least 1")
        for name in (
            "webhook_timeout_seconds",
            "webhook_backoff_seconds",
            "webhook_backoff_max_seconds",
            "webhook_poll_seconds",
        ):
            if not 0 < getattr(self, name) < 86400 * 7:
                raise ConfigError(f"{name} must be a number of seconds above 0")
        for field in self.fields():
            choices = field.metadata["choices"]
            if choices and getattr(self, field.name) not in choices:
                raise ConfigError(f"{field.name} must be one of {', '.join(choices)}")

    @property
    def origins(self) -> frozenset[str]:
        return frozenset(
            o.strip().rstrip("/") for o in self.allowed_origins.split(",") if o.strip()
        )

    @property
    def worker_processes(self) -> int:
        """How many workers serve: ``workers``, or with 0 one per CPU core this process may
        run on (its affinity, as a container's cpuset limits it)."""
        if self.workers > 0:
            return self.workers
        try:
            return len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            return os.cpu_count() or 1

    @property
    def database_url(self) -> str:
        """The database: a SQLite file's path or a ``postgresql://`` URL (store.locate)."""
        return self.database or str(Path(self.data_dir) / "touchpoint.db")

    @property
    def database_path(self) -> Path:
        """The SQLite file, or for PostgreSQL where this server's own files would be beside it
        (the workers' shared rate-limit table)."""
        if self.database.startswith(("postgresql://", "postgres://")):
            return Path(self.data_dir) / "postgresql"
        return Path(self.database_url)

    @property
    def api_keys_path(self) -> Path:
        if self.api_keys_file:
            return Path(self.api_keys_file)
        return Path(self.data_dir) / "api_keys.json"

    def resolve_secret_key(self) -> str:
        """The explicit key, or the one generated into DATA_DIR/secret.key on first use."""
        if self.secret_key:
            return self.secret_key
        path = Path(self.data_dir) / "secret.key"
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            # O_EXCL: two workers starting at once must not both write a key.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            key = path.read_text().strip()
            if len(key) < 32:
                raise ConfigError(
                    f"{path} holds no usable key; delete it to generate a new one"
                ) from None
            return key
        with os.fdopen(fd, "w") as f:
            key = secrets.token_urlsafe(48)
            f.write(key + "\n")
        return key


def _coerce(field: dataclasses.Field[Any], raw: Any, source: str) -> Any:
    if field.type in ("bool", bool):
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{source}: expected true or false, got {raw!r}")
    if field.type in ("int", int):
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{source}: expected a whole number, got {raw!r}") from None
    if field.type in ("float", float):
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = math.nan
        if not math.isfinite(value):
            raise ConfigError(f"{source}: expected a number, got {raw!r}")
        return value
    return str(raw)
