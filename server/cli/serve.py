"""``touchpoint serve``: check what can be checked once, then run uvicorn's workers."""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import logging
import os
import sys
import time
from typing import Any

from .. import store
from ..audience import geolocation
from ..errors import ConfigError
from ..rules.lastgood import LastGood
from ..rules.reloader import start
from ..settings import ENV_PREFIX, Settings
from ..web.sharedlimit import table_path


class JsonLines(logging.Formatter):
    """``serve --json``: each log record as one JSON object (time, level, logger, message)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def serve(settings: Settings, args: argparse.Namespace) -> int:
    """Start the server; every setting given as a flag reaches the workers (``args.overrides``)."""
    import uvicorn

    # Fail before forking workers: bad rules, an unreadable key, database or geolocation
    # database end here, once.
    geolocation.open_source(settings.geoip_database)
    # Invalid rules stop the start unless a last good set is kept in the data folder: then the
    # workers serve that, as a running server does while an edit is refused.
    serving = start(
        settings.rules_dir, LastGood(settings.data_dir, settings.rules_dir), interval=None
    )
    if serving.problems:
        for problem in serving.problems:
            print(problem, file=sys.stderr)
        accepted = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(serving.accepted_at))
        print(
            f"{len(serving.problems)} problem(s) in {settings.rules_dir}: serving the last good"
            f" rules, accepted {accepted}",
            file=sys.stderr,
        )
    settings.resolve_secret_key()
    try:
        store.migrate(settings.database_url)
    except ConfigError:
        raise
    except Exception as exc:
        where = store.locate(settings.database_url)
        raise ConfigError(f"cannot open database {where}: {exc}") from exc
    # Workers rebuild the settings from the environment (uvicorn imports the app by name),
    # with the number of workers resolved (0: one per core).
    for name, value in {**args.overrides, "workers": settings.worker_processes}.items():
        os.environ[ENV_PREFIX + name.upper()] = str(value)
    url = f"http://{settings.host}:{settings.port}"
    started = f"Touchpoint on {url}{settings.prefix}/" + (
        f" — demo shop at {url}/demo/" if settings.demo else ""
    )
    if args.json:
        print(JsonLines().format(_record(started)), file=sys.stderr)
    else:
        print(started, file=sys.stderr)
    # Touchpoint's own messages (rules reloaded, what the purge deleted) next to uvicorn's.
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["loggers"]["touchpoint"] = {
        "handlers": ["default"],
        "level": settings.log_level.upper(),
        "propagate": False,
    }
    if args.json:  # one JSON object a line, for a log collector
        log_config["formatters"] = {"default": {"()": f"{__name__}.JsonLines"}}
        log_config["handlers"].pop("access", None)
        log_config["loggers"].pop("uvicorn.access", None)
    try:
        _run(uvicorn, settings, log_config)
    finally:
        # The workers' shared rate-limit table (web/sharedlimit.py) goes with the server.
        if settings.worker_processes > 1:
            table_path(settings.database_path).unlink(missing_ok=True)
    return 0


def _run(uvicorn: Any, settings: Settings, log_config: dict[str, Any]) -> None:
    uvicorn.run(
        "touchpoint.app:create_app_from_env",
        log_config=log_config,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.worker_processes,
        log_level=settings.log_level,
        # The access log would record visitors' addresses: personal data stays out of logs.
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        server_header=False,
    )


def _record(message: str) -> logging.LogRecord:
    return logging.makeLogRecord(
        {"name": "touchpoint", "levelno": logging.INFO, "levelname": "INFO", "msg": message}
    )
