"""``GET /tp/healthz``: for load balancers and monitoring. 503 with the reason while the database
cannot be read or written (a full disk, say); ``ok`` again once a write succeeds. ``degraded``
while the rules folder holds an edit that was refused: the last good rules keep serving."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from .. import store
from .responses import JSONResponse

NO_STORE = {"Cache-Control": "no-store"}


async def healthz(request: Request) -> Response:
    tp = request.app.state.tp
    try:
        tp.reader.ping()
    except store.database_errors() as exc:
        return _unavailable(f"cannot be read ({exc})")
    # A write proves more than the writer's last commit: this worker may not have written for a
    # while, and another may have filled the disk meanwhile.
    failing = await tp.writer.probe()
    if failing is not None:
        return _unavailable(f"cannot be written ({failing})")
    body: dict[str, object] = {"status": "ok", "campaigns": len(tp.rules.campaigns)}
    # The outcome the workers share (rules/lastgood.py), not this worker's own view: behind a
    # load balancer every worker answers the same while an edit is refused.
    status = tp.last_good.status() if tp.last_good else None
    if status is not None and not status.ok:
        # Still serving, with the last good rules: monitoring should notice, not fail over.
        body["status"] = "degraded"
        body["rules_problems"] = list(status.problems)
        body["rules_refused_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(status.at))
    return JSONResponse(body, headers=NO_STORE)


def _unavailable(reason: str) -> Response:
    body = {"status": "error", "database": "unavailable", "reason": reason}
    return JSONResponse(body, status_code=503, headers={**NO_STORE, "Retry-After": "30"})
