"""A stand-in console for the charts and the editor of server/admin/static/ in a real browser.

Every answer carries a strict Content-Security-Policy, as the console's will:

    GET  /static/...   the built files of server/admin/static/
    GET  /charts       two charts (conversions, rates) above their tables; ?lang=de in German,
                       ?broken=1 with a chart of bad data first
    GET  /editor       a form with a rules textarea enhanced by editor.js; ?csrf=... another
                       CSRF token than the validator's
    POST /editor       echoes the submitted text, as the form would save it
    GET  /schema       the campaign schema (docs/schema/campaign.schema.json)
    POST /validate     a fake validator: each line holding ``BROKEN`` is an error from that
                       word's column; 403 without the right X-CSRF-Token header

Run it alone to try the pages by hand: ``.venv/bin/python -m tests.admin.assets_harness 8002``
"""

from __future__ import annotations

import html
import json
import sys
from pathlib import Path
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..processes import ServerProcess, free_port

ROOT = Path(__file__).resolve().parent.parent.parent
STATIC = ROOT / "server" / "admin" / "static"
SCHEMA = ROOT / "docs" / "schema" / "campaign.schema.json"
CSP = "default-src 'self'; script-src 'self'; style-src 'self'"
CSRF = "token-123"
DAYS = [f"2026-11-{day:02d}" for day in range(1, 15)]
CONVERSIONS: dict[str, list[float | None]] = {
    "Holdout": [3, 4, 2, 5, 3, 4, 6, 3, 2, 4, 5, 3, 4, 5],
    "Ten percent": [6, 8, 7, 9, 12, 10, 11, 9, 8, 13, 12, 10, 14, 12],
    "Free shipping": [5, 7, 9, 8, 7, 11, None, 10, 9, 8, 12, 11, 10, 13],
}
EXPOSED = 120
CAMPAIGN = """\
campaign: first-order-coupon
kind: popup
trigger: {exit_intent: {}}
frequency: {after_close: 7d}
variants:
  - {id: ten-percent, weight: 90}
  - {id: holdout, weight: 10, control: true}
"""


def page(title: str, body: str, *, head: str = "", lang: str = "en") -> HTMLResponse:
    return HTMLResponse(
        f'<!doctype html><html lang="{html.escape(lang)}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{title}</title><link rel="stylesheet" href="/static/page.css">{head}</head>'
        f"<body><main><h1>{title}</h1>{body}</main></body></html>"
    )


def chart(caption: str, kind: str, series: dict[str, list[float | None]]) -> str:
    data = {
        "x": DAYS,
        "y": kind,
        "series": [{"label": label, "values": values} for label, values in series.items()],
    }
    head = "".join(f"<th scope=col>{html.escape(label)}</th>" for label in series)
    rows = "".join(
        f"<tr><th scope=row>{day}</th>"
        + "".join(f"<td>{'' if v[i] is None else v[i]}</td>" for v in series.values())
        + "</tr>"
        for i, day in enumerate(DAYS)
    )
    return (
        f'<figure data-chart data-series="{html.escape(json.dumps(data))}">'
        f"<figcaption>{caption}</figcaption></figure>"
        f"<details><summary>Numbers</summary><table><thead><tr><th scope=col>Day</th>{head}"
        f"</tr></thead><tbody>{rows}</tbody></table></details>"
    )


async def charts(request: Request) -> Response:
    rates = {
        label: [None if v is None else v / EXPOSED for v in values]
        for label, values in CONVERSIONS.items()
    }
    # ?broken=1: a chart whose data does not parse, first on the page
    broken = '<figure data-chart data-series="{oops"><figcaption>Broken</figcaption></figure>'
    return page(
        "Results: first-order-coupon",
        (broken if request.query_params.get("broken") else "")
        + chart("Conversions per day", "conversions", CONVERSIONS)
        + chart("Conversion rate per day", "rate", rates),
        head='<link rel="stylesheet" href="/static/charts.css">'
        '<script defer src="/static/charts.js"></script>',
        lang=request.query_params.get("lang", "en"),
    )


async def editor(request: Request) -> Response:
    if request.method == "POST":
        # Parsed by hand: Starlette's form parser needs python-multipart, which we do not install.
        text = parse_qs((await request.body()).decode())["text"][0]
        return page("Saved", f'<pre id="saved">{html.escape(text)}</pre>')
    csrf = request.query_params.get("csrf", CSRF)
    return page(
        "Edit rules/first-order-coupon.yaml",
        '<form method="post" action="/editor">'
        '<label for="text">Campaign file</label>'
        f'<textarea id="text" name="text" rows="12" cols="80" data-editor '
        f'data-path="first-order-coupon.yaml" data-schema-url="/schema" '
        f'data-validate-url="/validate" data-csrf="{html.escape(csrf)}">'
        f"{html.escape(CAMPAIGN)}</textarea>"
        '<button type="submit">Save</button></form>',
        head='<link rel="stylesheet" href="/static/editor.css">'
        '<script defer src="/static/editor.js"></script>',
    )


async def validate(request: Request) -> Response:
    if request.headers.get("x-csrf-token") != CSRF:
        return JSONResponse({"error": "CSRF token missing or wrong"}, status_code=403)
    body = await request.json()
    assert body["path"] == "first-order-coupon.yaml"
    problems = [
        {
            "line": number,
            "column": line.index("BROKEN") + 1,
            "message": "unknown key BROKEN",
            "severity": "error",
        }
        for number, line in enumerate(body["text"].splitlines(), start=1)
        if "BROKEN" in line
    ]
    return JSONResponse({"problems": problems})


async def schema(request: Request) -> Response:
    return FileResponse(SCHEMA, media_type="application/schema+json")


async def page_css(request: Request) -> Response:
    return Response(
        "body{font-family:system-ui,sans-serif;margin:0;padding:1rem 2rem}"
        "main{max-width:70rem;margin:auto}figure{margin:1rem 0}",
        media_type="text/css",
    )


class StrictCSP:
    """Adds the console's Content-Security-Policy to every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_csp(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message["headers"],
                    (b"content-security-policy", CSP.encode()),
                ]
            await send(message)

        await self.app(scope, receive, send_with_csp)


def create_harness() -> ASGIApp:
    app = Starlette(
        routes=[
            Route("/charts", charts),
            Route("/editor", editor, methods=["GET", "POST"]),
            Route("/schema", schema),
            Route("/validate", validate, methods=["POST"]),
            Route("/static/page.css", page_css),
            Route("/favicon.ico", lambda request: Response(status_code=204)),
            Mount("/static", StaticFiles(directory=STATIC)),
        ]
    )
    return StrictCSP(app)


class AssetsHarness(ServerProcess):
    """The harness in a uvicorn subprocess on a free port of 127.0.0.1."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / "assets-harness.log"
        command = [sys.executable, "-m", "tests.admin.assets_harness", str(self.port)]
        self.start(command, ready_path="/schema", cwd=ROOT)


if __name__ == "__main__":
    import uvicorn

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8002
    uvicorn.run(create_harness(), host="127.0.0.1", port=port, log_level="warning")
