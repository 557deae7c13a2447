"""``POST /tp/v1/decide``: a page view in, the popups to arm and the slot contents out.

Hot path: one signed-cookie check, at most one indexed read on the event loop, a pure decision,
template renders from a cache. With the personalisation consent the page view is counted in the
profile through the writer queue, without waiting for it. Without consent it decides on the page
context alone (the visitor counts as a first-time visitor) and neither reads nor sets an
identifier.
"""

from __future__ import annotations

import random
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .. import store
from ..audience.facts import PageView
from ..consent import categories as consent_module
from ..decide import page
from ..decide.preview import MAX_TOKEN
from ..rules.campaigns import CAMPAIGN_ID
from ..rules.ruleset import Ruleset
from ..store.datadepth import keeps
from ..syntax.shapes import Field, Shape
from .limits import read_json
from .responses import JSONResponse

NO_STORE = {"Cache-Control": "no-store"}
MAX_SLOTS = 20

PAGE = Shape(
    (
        Field(
            "path",
            "string",
            "The page's path.",
            required=True,
            blank=True,
            max_length=2048,
            pattern=re.compile("^/"),
            hint="must be a path starting with /",
        ),
        Field("title", "string", "The page's title.", blank=True, max_length=512),
        Field("query", "string", "The query string, without the ?.", blank=True, max_length=2048),
        Field(
            "referrer",
            "string",
            "The referring URL (document.referrer).",
            blank=True,
            max_length=2048,
        ),
    )
)
DECIDE = Shape(
    (
        Field(
            "page",
            "object",
            "The page viewed.",
            required=True,
            shape=PAGE,
            hint=" with at least a path",
        ),
        Field(
            "slots",
            "names",
            "The content slots on the page (data-tp-slot).",
            max_items=MAX_SLOTS,
            pattern=CAMPAIGN_ID,
            noun="slot names",
            hint="use lowercase letters, digits, - and _",
        ),
        Field(
            "count",
            "boolean",
            "Whether to count the page view (default true); false for a"
            " single-page app's repeated decide on one page.",
        ),
        page.CONTEXT,
        Field(
            "preview",
            "token",
            "A preview link's token (tp_preview): shows its campaign and records nothing.",
            max_length=MAX_TOKEN,
            hint="must be a preview token",
        ),
        Field(
            "lang",
            "lenient",
            "The page's language (<html lang>), for the consent banner's"
            " texts; anything but a string is ignored.",
            max_length=256,
        ),
    )
)


def parse_view(values: dict[str, Any], request: Request) -> PageView:
    """The page view of a valid DECIDE body, with what the request's headers add."""
    given = values["page"]
    headers = request.headers
    return PageView(
        path=given["path"],
        title=given.get("title", ""),
        query=given.get("query", ""),
        referrer=given.get("referrer", ""),
        host=headers.get("host", ""),
        context=values.get("context", {}),
        user_agent=headers.get("user-agent", "")[:512],
        accept_language=headers.get("accept-language", "")[:256],
        address=_address(request),
    )


def _address(request: Request) -> str:
    """The client's network as ip_handling allows it (privacy/clientip.py), for the country;
    without a country database nothing reads it, so it is not worked out (issue 19: parsing and
    truncating it was 8 % of a decide request's CPU)."""
    tp = request.app.state.tp
    return (tp.client_ip(request) or "") if tp.geolocation is not None else ""


async def decide(request: Request) -> Response:
    tp = request.app.state.tp
    tp.guard(request)
    data = DECIDE.parse(await read_json(request, max_bytes=tp.settings.max_body_bytes))
    view = parse_view(data, request)
    slots = tuple(data.get("slots", ()))
    count = data.get("count", True)
    visitor_id, record = await tp.visitor(request)
    rules: Ruleset = tp.rules
    profile, history = consent_module.usable(record, tp.settings.consent_revision)
    facts = page.facts_for(
        rules, view, now=tp.now(), profile=profile, history=history, geolocation=tp.geolocation
    )
    if rules.finite_pools and facts.history is not None:
        facts.empty_pools = tp.stock.empty(rules.finite_pools, tp.reader)
    previewing = data.get("preview")  # a marketer's preview link: records nothing
    counted = False
    # While the database cannot be written the page is still decided, but not counted: the
    # answer does not claim a count the writer would fail to store.
    recording = count and previewing is None and record is not None and not tp.writer.failing
    units: list[page.Unit] = []  # one writer unit for the request: a savepoint and a queue hop
    if recording:
        depth = tp.settings.data_depth
        if facts.known:
            # Before the decision: the page is judged by the profile after this view.
            units.append(page.count(rules, facts, view, record.id, depth=depth))
            counted = True
        elif _measured(record, tp):
            units.append(page.measure(rules, facts, record.id, depth=depth))
    decision = page.decide_page(
        rules,
        facts,
        slots=slots,
        visitor_id=record.id if record and facts.history is not None else None,
        roll=random.random(),
        preview=None if previewing is None else tp.previews.read(previewing, now=facts.now),
    )
    if recording and facts.history is not None:
        arming = page.armed(rules, decision.outcome, facts.now)
        if arming is not None:
            units.append(arming)
    if units:
        await tp.writer.submit_paced(page.together(units))
    body = {
        "consent": consent_state(request, data, record, rules),
        "counted": counted,
        **page.render(rules, decision.outcome, facts),
        **({"preview": decision.preview} if decision.preview else {}),
    }
    response = JSONResponse(body, headers=NO_STORE)
    if visitor_id and record is None:
        # A validly signed id the database no longer knows (erased, or a reset database).
        tp.recognizer.forget(response, request)
    return response


def _measured(record: store.VisitorRecord, tp: Any) -> bool:
    """Whether a page view of a visitor without a profile goes to the event log."""
    granted = consent_module.granted(record, tp.settings.consent_revision)
    return "measurement" in granted and keeps(tp.settings.data_depth, "events")


def consent_state(
    request: Request, data: dict[str, Any], record: store.VisitorRecord | None, rules: Ruleset
) -> dict[str, Any]:
    """The visitor's consent, how it is asked (``mode``), and when the built-in banner is due,
    its texts in the page's language: the snippet carries none."""
    tp = request.app.state.tp
    revision = tp.settings.consent_revision
    config = rules.site.consent
    refused = config.mode == "builtin" and tp.recognizer.refused(request, revision)
    state = consent_module.state(record, revision, refused=refused)
    state["mode"] = config.mode
    if config.mode == "tcf":
        state["timeout"] = config.tcf_timeout * 1000
    elif config.mode == "builtin" and state["prompt"]:
        lang = data.get("lang")
        language = lang if isinstance(lang, str) else request.headers.get("accept-language", "")
        state["banner"] = config.banner(language[:256])
    return state
