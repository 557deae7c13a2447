"""``POST /tp/v1/decide``: page context in, the popup for this page view out.

Hot path: one signed-cookie check, at most one indexed read on the event loop, a pure
decision, one template render. It never writes. Without consent it decides on the page context
alone and neither reads nor sets an identifier.
"""

from __future__ import annotations

import random
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .. import consent as consent_module
from ..errors import RequestError
from ..limits import optional_str, read_json
from ..responses import JSONResponse
from ..targeting import Page
from ..targeting import decide as decide_popup

NO_STORE = {"Cache-Control": "no-store"}


def parse_page(data: dict[str, Any]) -> Page:
    page = data.get("page")
    if not isinstance(page, dict):
        raise RequestError("page must be an object with at least a path")
    path = optional_str(page, "path", max_length=2048)
    if not path or not path.startswith("/"):
        raise RequestError("page.path must be a path starting with /")
    return Page(path=path, title=optional_str(page, "title", max_length=512) or "")


async def decide(request: Request) -> Response:
    tp = request.app.state.tp
    tp.guard(request)
    page = parse_page(await read_json(request, max_bytes=tp.settings.max_body_bytes))
    visitor_id, record = tp.visitor(request)
    visitor = consent_module.targeting_visitor(record, tp.settings.consent_revision)
    outcome = decide_popup(tp.rules, visitor, page, tp.now(), roll=random.random())
    popup = None
    if outcome.decision:
        campaign, variant = outcome.decision.campaign, outcome.decision.variant
        html = tp.rules.templates.render(
            variant.template,
            {
                "campaign": campaign.id,
                "variant": variant.id,
                "page": {"path": page.path, "title": page.title},
                "visitor": {"known": bool(visitor.id)},
            },
        )
        if html is not None:
            popup = {
                "campaign": campaign.id,
                "variant": variant.id,
                "trigger": {campaign.trigger.kind: campaign.trigger.options},
                "html": html,
            }
    body = {"consent": consent_module.state(record, tp.settings.consent_revision), "popup": popup}
    response = JSONResponse(body, headers=NO_STORE)
    if visitor_id and record is None:
        # A validly signed id the database no longer knows (erased, or a reset database).
        tp.recognizer.forget(response, request)
    return response
