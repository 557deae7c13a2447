"""The yardsticks decide and events are held to, served like Touchpoint (one uvicorn worker,
uvloop, httptools) against the same database:

- ``/floor/decide``: the least a decide route can do. The same body parsing (strict JSON read
  with the body limit, the DECIDE shape), one primary-key read of the visitor on the event loop
  (its id taken from the cookie without checking the signature), one page-view write queued to
  a ``Writer`` of the same kind (group commit on the event loop's lane) without waiting.
- ``/floor/events``: the least an events route can do. The same body parsing (the events'
  shapes), the same primary-key read, the batch inserted by one writer unit waited for (on the
  same lane as the events route's), into a table shaped like the events table before issue 19
  (so its cost does not move when ours does).
- ``/growthbook/decide``: what a user could build instead with GrowthBook's Python SDK. The
  same signed-cookie check and the same visitor read as decide (``Reader.visitor``), the same
  campaigns' audiences evaluated as GrowthBook features, the same page-view write queued.

Configured by environment variables: FLOOR_DATABASE, FLOOR_SECRET_KEY, FLOOR_RULES_DIR.
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml
from growthbook import GrowthBook
from rules_bench import mongo
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from touchpoint import store
from touchpoint.profiles.recognition import Recognizer
from touchpoint.web.decide import DECIDE
from touchpoint.web.events import parse_events
from touchpoint.web.limits import read_json
from touchpoint.web.responses import JSONResponse

MAX_BODY = 64 * 1024
DATABASE = Path(os.environ.get("FLOOR_DATABASE", "touchpoint.db"))
COOKIE = "tp_vid"
FLOOR_EVENTS = """CREATE TABLE IF NOT EXISTS floor_events (
    id INTEGER PRIMARY KEY, visitor_id TEXT NOT NULL, at INTEGER NOT NULL, type TEXT NOT NULL,
    campaign TEXT, variant TEXT, path TEXT, name TEXT, value REAL, props TEXT)"""


def features(rules_dir: Path) -> dict[str, Any]:
    """Every campaign of ``rules_dir`` as a GrowthBook feature on when its audience matches."""
    found = {}
    for path in sorted(rules_dir.glob("*.yaml")):
        spec = yaml.safe_load(path.read_text())
        if not isinstance(spec, dict) or "campaign" not in spec:
            continue
        audience = dict(spec.get("audience") or {})
        for group in ("page", "visitor", "context"):  # {page: {path: x}} -> {page.path: x}
            if isinstance(audience.get(group), dict):
                audience.update({f"{group}.{k}": v for k, v in audience.pop(group).items()})
        languages = audience.pop("language", None)
        condition = mongo(audience)
        if languages:  # a tag matches itself and its regional variants
            tags = languages if isinstance(languages, list) else [languages]
            pattern = "^(?:" + "|".join(map(re.escape, tags)) + ")(?:-|$)"
            condition["language"] = {"$regex": pattern}
        rule = {"condition": condition, "force": True}
        found[spec["campaign"]] = {"defaultValue": False, "rules": [rule]}
    return found


class Floor:
    def __init__(self) -> None:
        self.reader = store.Reader(DATABASE)
        self.writer = store.Writer(DATABASE, linger=0.005)
        self.writer.submit(lambda conn: conn.execute(FLOOR_EVENTS))
        secret = os.environ.get("FLOOR_SECRET_KEY", "x" * 48)
        self.recognizer = Recognizer(secret, cookie_name=COOKIE, max_age_days=1, secure="never")
        self.growthbook = GrowthBook(features=features(Path(os.environ["FLOOR_RULES_DIR"])))
        self.keys = list(self.growthbook.get_features())

    def read(self, request: Request) -> tuple[Any, ...] | None:
        visitor_id = request.cookies.get(COOKIE, "").split(".", 1)[0]
        row: tuple[Any, ...] | None = self.reader.conn.execute(
            "SELECT id, consent_granted, visits, page_views, stage, score, data"
            " FROM visitors WHERE id = ?",
            (visitor_id,),
        ).fetchone()
        return row

    def count(self, visitor_id: str, now: int) -> None:
        self.writer.submit(
            lambda conn: conn.execute(
                "UPDATE visitors SET page_views = page_views + 1, last_seen_at = ? WHERE id = ?",
                (now, visitor_id),
            )
        )


async def floor_decide(request: Request) -> Response:
    floor: Floor = request.app.state.floor
    data = DECIDE.parse(await read_json(request, max_bytes=MAX_BODY))
    row = floor.read(request)
    if row is not None:
        floor.count(row[0], int(time.time()))
    return JSONResponse({"popups": [], "slots": {}, "page": data["page"]["path"]})


async def floor_events(request: Request) -> Response:
    floor: Floor = request.app.state.floor
    now = int(time.time())
    batch = parse_events(await read_json(request, max_bytes=MAX_BODY), {}, now=now)
    row = floor.read(request)
    if row is None:
        return JSONResponse({"stored": 0}, status_code=202)
    rows = [(row[0], now, a.type, a.path, a.name, a.value) for a in batch.behaviour]

    def insert(conn: sqlite3.Connection) -> int:
        conn.executemany(
            "INSERT INTO floor_events (visitor_id, at, type, path, name, value)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        return len(rows)

    # Committed as the events route's batches are: on the event loop, with the next group.
    stored = await floor.writer.write(insert, small=True)
    return JSONResponse({"stored": stored}, status_code=202)


async def growthbook_decide(request: Request) -> Response:
    floor: Floor = request.app.state.floor
    data = DECIDE.parse(await read_json(request, max_bytes=MAX_BODY))
    visitor_id = floor.recognizer.visitor_id(request)
    record = floor.reader.visitor(visitor_id) if visitor_id else None
    page = data["page"]
    attributes: dict[str, Any] = {
        "page": {"path": page["path"]},
        "context": data.get("context", {}),
        "language": request.headers.get("accept-language", "").split(",")[0] or None,
    }
    if record is not None:
        profile = record.profile
        attributes["visitor"] = {
            "returning": profile.visits > 1,
            "stage": profile.stage,
            "score": profile.score,
            "top_interest": profile.top_interest,
            "interests": dict(profile.interests),
        }
    gb = floor.growthbook
    gb.set_attributes(attributes)
    on = [key for key in floor.keys if gb.eval_feature(key).on]
    if record is not None:
        floor.count(record.id, int(time.time()))
    return JSONResponse({"popups": on, "slots": {}})


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    floor = app.state.floor = Floor()
    gc.freeze()  # as Touchpoint tunes it (app.py)
    gc.set_threshold(10_000, 20, 100)
    yield
    floor.writer.close()
    floor.reader.close()


app = Starlette(
    routes=[
        Route("/floor/decide", floor_decide, methods=["POST"]),
        Route("/floor/events", floor_events, methods=["POST"]),
        Route("/growthbook/decide", growthbook_decide, methods=["POST"]),
    ],
    lifespan=lifespan,
)
