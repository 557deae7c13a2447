"""A scripted stand-in for the Touchpoint server, to test the snippet in a real browser.

It serves the built snippet at ``/tp/t.js`` and the pages of ``tests/snippet_pages/`` at
``/pages/``, answers ``/tp/v1/decide`` with the answers a test scripted, ``/tp/v1/consent`` and
``/tp/v1/events``, ``/tp/v1/identify`` and ``/tp/v1/reset`` as the real server does, and logs the
body of every request the snippet makes:

    POST /__script  {"decide": [answer, ...], "granted": [...]}
                    the next decide answers in order, the last one repeating (an answer's
                    "delay" holds it back that many milliseconds); the consent the server holds
                    (none by default). Clears the log.
    POST /__script  {..., "ineligible": [campaign, ...]}
                    campaigns /tp/v1/eligible says false for, after "eligible_delay" ms
    POST /__script  {..., "events_unavailable": n}
                    the next n /tp/v1/events requests answer 503 with Retry-After: 1, storing
                    nothing (a full disk); "events_refused" in the log counts them
    POST /__script  {..., "coupon": {"status": 200, "body": {...}, "delay": ms}}
                    what /tp/v1/coupons/reveal answers (by default 200 with a code
                    CODE-<campaign>-<n>, n counting the reveals, and no expiry)
    GET  /__log     {"decide": [body, ...], "consent": [...], "events": [event, ...],
                     "identify": [...], "reset": [...], "eligible": [...], "reveal": [...]}

A scripted answer is completed with the real server's defaults (``consent`` from what the
harness holds, ``counted: true``, no popups, no slots, the popups' stylesheet when a popup
shows something). Run it alone to try a page by hand:

    .venv/bin/python -m tests.snippet_harness 8001
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import httpx2 as httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from touchpoint.render.popups import stylesheet

from .processes import ServerProcess, free_port

ROOT = Path(__file__).resolve().parent.parent
SNIPPET = ROOT / "server" / "assets" / "t.js"
PAGES = Path(__file__).resolve().parent / "snippet_pages"
CATEGORIES = {"marketing", "measurement", "personalisation"}
STRICT_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';"
    " img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class Script:
    """What the harness answers next, and what it has been sent."""

    def __init__(self) -> None:
        self.reset([], None)

    def reset(
        self,
        answers: list[dict[str, Any]],
        granted: list[str] | None,
        ineligible: list[str] | None = None,
        eligible_delay: int = 0,
        coupon: dict[str, Any] | None = None,
        events_unavailable: int = 0,
    ) -> None:
        self.answers = answers
        self.granted = granted
        self.ineligible = set(ineligible or ())
        self.eligible_delay = eligible_delay
        self.coupon = coupon or {}
        self.events_unavailable = events_unavailable
        self.log: dict[str, list[Any]] = {
            "decide": [],
            "consent": [],
            "events": [],
            "identify": [],
            "reset": [],
            "eligible": [],
            "reveal": [],
            "events_refused": [],
        }

    def consent(self) -> dict[str, Any]:
        if self.granted is None:
            return {"revision": 1, "granted": [], "prompt": True, "known": False}
        return {
            "revision": 1,
            "granted": self.granted,
            "prompt": False,
            "known": bool(self.granted),
        }

    def next_answer(self) -> dict[str, Any]:
        if len(self.answers) > 1:
            scripted = self.answers.pop(0)
        else:
            scripted = self.answers[0] if self.answers else {}
        answer = {"consent": self.consent(), "counted": True, "popups": [], "slots": {}}
        return {**answer, **stylesheet(scripted.get("popups", [])), **scripted}


def create_harness() -> Starlette:
    script = Script()

    async def body(request: Request) -> dict[str, Any]:
        # The snippet sends JSON as text/plain, as a "simple" request.
        data: dict[str, Any] = json.loads(await request.body())
        return data

    async def snippet(request: Request) -> Response:
        return FileResponse(SNIPPET, media_type="text/javascript; charset=utf-8")

    async def decide(request: Request) -> Response:
        script.log["decide"].append(await body(request))
        answer = script.next_answer()
        await asyncio.sleep(answer.pop("delay", 0) / 1000)
        return JSONResponse(answer)

    async def consent(request: Request) -> Response:
        data = await body(request)
        script.log["consent"].append(data)
        script.granted = sorted(CATEGORIES & set(data["granted"]))
        return JSONResponse({"revision": 1, "granted": script.granted})

    async def events(request: Request) -> Response:
        sent = (await body(request))["events"]
        if script.events_unavailable > 0:
            script.events_unavailable -= 1
            script.log["events_refused"].append(len(sent))
            error = {"error": "storage unavailable (database or disk is full): nothing was stored"}
            return JSONResponse(error, status_code=503, headers={"Retry-After": "1"})
        script.log["events"].extend(sent)
        return JSONResponse({"stored": len(sent)}, status_code=202)

    async def identify(request: Request) -> Response:
        script.log["identify"].append(await body(request))
        return JSONResponse({"visitor": "known"})

    async def reset(request: Request) -> Response:
        script.log["reset"].append(await body(request))
        return JSONResponse({"visitor": "anonymous"})

    async def eligible(request: Request) -> Response:
        data = await body(request)
        script.log["eligible"].append(data)
        await asyncio.sleep(script.eligible_delay / 1000)
        return JSONResponse({"eligible": data["campaign"] not in script.ineligible})

    async def reveal(request: Request) -> Response:
        data = await body(request)
        script.log["reveal"].append(data)
        coupon = script.coupon
        await asyncio.sleep(coupon.get("delay", 0) / 1000)
        n = len(script.log["reveal"])
        code = {"code": f"CODE-{data['campaign']}-{n}", "pool": "sample", "expires_at": None}
        return JSONResponse(coupon.get("body", code), status_code=coupon.get("status", 200))

    async def strict_page(request: Request) -> Response:
        # A page under a strict Content-Security-Policy: what docs/embedding.md asks sites for.
        return FileResponse(PAGES / "csp.html", headers={"Content-Security-Policy": STRICT_CSP})

    async def set_script(request: Request) -> Response:
        data = await request.json()
        script.reset(
            list(data.get("decide", [])),
            data.get("granted"),
            data.get("ineligible"),
            data.get("eligible_delay", 0),
            data.get("coupon"),
            data.get("events_unavailable", 0),
        )
        return Response(status_code=204)

    async def log(request: Request) -> Response:
        return JSONResponse(script.log)

    return Starlette(
        routes=[
            Route("/tp/t.js", snippet),
            Route("/tp/v1/decide", decide, methods=["POST"]),
            Route("/tp/v1/consent", consent, methods=["POST"]),
            Route("/tp/v1/events", events, methods=["POST"]),
            Route("/tp/v1/identify", identify, methods=["POST"]),
            Route("/tp/v1/reset", reset, methods=["POST"]),
            Route("/tp/v1/eligible", eligible, methods=["POST"]),
            Route("/tp/v1/coupons/reveal", reveal, methods=["POST"]),
            Route("/csp.html", strict_page),
            Route("/__script", set_script, methods=["POST"]),
            Route("/__log", log),
            Mount("/pages", StaticFiles(directory=PAGES)),
        ]
    )


class Harness(ServerProcess):
    """The harness in a uvicorn subprocess on a free port of 127.0.0.1."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / "snippet-harness.log"
        command = [sys.executable, "-m", "tests.snippet_harness", str(self.port)]
        self.start(command, ready_path="/__log", cwd=Path(__file__).parent.parent)

    def script(
        self, *answers: dict[str, Any], granted: list[str] | None = None, **more: Any
    ) -> None:
        """Answer the next decides with ``answers``; the server holds consent ``granted``;
        ``more``: ``ineligible`` campaigns and ``eligible_delay`` for /tp/v1/eligible, ``coupon``
        for /tp/v1/coupons/reveal."""
        data = {"decide": answers, "granted": granted, **more}
        response = httpx.post(self.url + "/__script", json=data)
        response.raise_for_status()

    def log(self) -> dict[str, list[Any]]:
        """The bodies of the decide and consent requests, and the events, sent so far."""
        logged: dict[str, list[Any]] = httpx.get(self.url + "/__log").json()
        return logged


if __name__ == "__main__":
    import uvicorn

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8001
    uvicorn.run(create_harness(), host="127.0.0.1", port=port, log_level="warning")
