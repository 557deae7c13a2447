"""``POST /tp/v1/eligible``: may a popup armed earlier in this page view still show?

A popup waits for its trigger (seconds, a scroll depth, exit intent) after the decide answer;
meanwhile the visitor may have closed or converted it, or seen another popup, in another tab.
The snippet asks just before showing it, within a short time budget: the answer applies the
frequency rules and the site's gap between popups to the visitor's history as it is now. The
audience is not evaluated again: the page has not changed since the decision.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..audience.facts import PageView
from ..consent import categories as consent_module
from ..decide.page import facts_for
from ..decide.targeting import recheck
from ..errors import RequestError
from ..syntax.shapes import Field, Shape
from .decide import NO_STORE
from .limits import read_json
from .responses import JSONResponse

ELIGIBLE = Shape(
    (
        Field(
            "campaign",
            "string",
            "The campaign of the popup about to show.",
            required=True,
            blank=True,
            max_length=64,
        ),
    )
)


async def eligible(request: Request) -> Response:
    tp = request.app.state.tp
    tp.guard(request)
    data = ELIGIBLE.parse(await read_json(request, max_bytes=tp.settings.max_body_bytes))
    campaign_id = data["campaign"]
    campaign = tp.rules.by_id.get(campaign_id)
    if campaign is None:
        raise RequestError(f"unknown campaign {campaign_id!r}", status=422)
    _, record = await tp.visitor(request)
    profile, history = consent_module.usable(record, tp.settings.consent_revision)
    # The page does not matter: the audience is not evaluated again.
    facts = facts_for(tp.rules, PageView(path="/"), now=tp.now(), profile=profile, history=history)
    # Without the marketing consent there is no history to check: the decision stands.
    return JSONResponse({"eligible": recheck(campaign, tp.rules, facts) is None}, headers=NO_STORE)
