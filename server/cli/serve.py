"""``touchpoint serve``: check what can be checked once, then run uvicorn's workers."""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time

from .. import store
from ..audience import geolocation
from ..errors import ConfigError
from ..rules.lastgood import LastGood
from ..rules.reloader import start
from ..settings import ENV_PREFIX, Settings


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
        store.migrate(settings.database_path)
    except Exception as exc:
        raise ConfigError(f"cannot open database {settings.database_path}: {exc}") from exc
    # Workers rebuild the settings from the environment (uvicorn imports the app by name).
    for name, value in args.overrides.items():
        os.environ[ENV_PREFIX + name.upper()] = str(value)
    print(
        f"Touchpoint on http://{settings.host}:{settings.port}{settings.prefix}/"
        + (
            f" — demo shop at http://{settings.host}:{settings.port}/demo/" if settings.demo else ""
        ),
        file=sys.stderr,
    )
    # Touchpoint's own messages (rules reloaded, what the purge deleted) next to uvicorn's.
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["loggers"]["touchpoint"] = {
        "handlers": ["default"],
        "level": settings.log_level.upper(),
        "propagate": False,
    }
    uvicorn.run(
        "touchpoint.app:create_app_from_env",
        log_config=log_config,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        # The access log would record visitors' addresses: personal data stays out of logs.
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        server_header=False,
    )
    return 0
