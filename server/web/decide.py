"""``POST /tp/v1/decide``: a page view in, the popups to arm and the slot contents out.

Hot path: one signed-cookie check, at most one indexed read on the event loop, a pure decision,
template renders from a cache. With the personalisation consent the page view is counted in the
profile through the writer queue, without waiting for it. Without consent it decides on the page
context alone (the visitor counts as a first-time visitor) and neither reads nor sets an
identifier.
"""

from __future__ import annotations

import random
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .. import store
from ..audience.conditions import NAME
from ..audience.facts import Facts, PageView
from ..consent import categories as consent_module
from ..decide import preview as preview_module
from ..decide.targeting import Decision, Outcome
from ..decide.targeting import decide as decide_page
from ..errors import RequestError
from ..render.popups import stylesheet
from ..rules.campaigns import CAMPAIGN_ID
from ..rules.ruleset import Ruleset
from ..store.activity import Activity
from ..store.datadepth import keeps
from ..store.records import PageViewUpdate
from ..webhooks import delivery as webhooks
from .limits import flat_values, optional_str, read_json
from .responses import JSONResponse

NO_STORE = {"Cache-Control": "no-store"}
MAX_CONTEXT_KEYS = 32
MAX_SLOTS = 20


def parse_context(value: Any) -> dict[str, Any]:
    """What the page pushed: short names to strings, finite numbers or booleans."""
    return flat_values(value, "context", max_keys=MAX_CONTEXT_KEYS, name=NAME)


def parse_slots(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_SLOTS:
        raise RequestError(f"slots must be a list of at most {MAX_SLOTS} slot names")
    if not all(isinstance(s, str) and CAMPAIGN_ID.match(s) for s in value):
        raise RequestError("slot names use lowercase letters, digits, - and _")
    return tuple(value)


def parse_view(data: dict[str, Any], request: Request) -> PageView:
    page = data.get("page")
    if not isinstance(page, dict):
        raise RequestError("page must be an object with at least a path")
    path = optional_str(page, "path", max_length=2048)
    if not path or not path.startswith("/"):
        raise RequestError("page.path must be a path starting with /")
    headers = request.headers
    return PageView(
        path=path,
        title=optional_str(page, "title", max_length=512) or "",
        query=optional_str(page, "query", max_length=2048) or "",
        referrer=optional_str(page, "referrer", max_length=2048) or "",
        host=headers.get("host", ""),
        context=parse_context(data.get("context")),
        user_agent=headers.get("user-agent", "")[:512],
        accept_language=headers.get("accept-language", "")[:256],
        # As ip_handling says: the network only, or nothing (server/clientip.py).
        address=request.app.state.tp.client_ip(request) or "",
    )


async def decide(request: Request) -> Response:
    tp = request.app.state.tp
    tp.guard(request)
    data = await read_json(request, max_bytes=tp.settings.max_body_bytes)
    view = parse_view(data, request)
    slots = parse_slots(data.get("slots"))
    count = data.get("count", True)
    if not isinstance(count, bool):
        raise RequestError("count must be true or false")
    visitor_id, record = tp.visitor(request)
    rules: Ruleset = tp.rules
    profile, history = consent_module.usable(record, tp.settings.consent_revision)
    facts = Facts(
        view,
        now=tp.now(),
        tz=rules.site.timezone,
        profile=profile,
        history=history,
        session_idle=rules.site.session_idle,
        profile_rules=rules.profile,
        geolocation=tp.geolocation,
    )
    if rules.finite_pools and facts.history is not None:
        facts.empty_pools = tp.stock.empty(rules.finite_pools, tp.reader)
    counted = False
    previewing = data.get("preview")  # a marketer's preview link: records nothing
    if count and previewing is None and record is not None and facts.known:
        update = PageViewUpdate(
            at=facts.now,
            touch=None if facts.internal else facts.touch,
            interests=rules.site.interests_of(view.path),
            category=_context_str(view.context, "category"),
            product=_context_str(view.context, "product"),
            path=view.path,
        )
        read, idle, visitor = facts.profile, rules.site.session_idle, record.id
        depth = tp.settings.data_depth
        # The page is judged by the profile after this view (scored, its stage settled), and
        # the same result is what the writer stores.
        result = rules.profile.page_view(read, update, session_idle=idle, visitor_id=visitor)
        facts.profile = result[0]

        def count_view(conn: Any) -> None:
            effects = store.record_page_view(
                conn, visitor, update, session_idle=idle, rules=rules.profile, read=read,
                result=result, depth=depth,
            )  # fmt: skip
            webhooks.report(conn, rules.site.webhooks, visitor, effects, now=update.at)

        tp.writer.submit(count_view)
        counted = True
    elif count and previewing is None and record is not None and _measured(record, tp):
        # Measurement alone: the page view goes to the event log, no profile exists.
        visitor, seen = record.id, Activity("page_view", facts.now, path=view.path)
        depth = tp.settings.data_depth
        tp.writer.submit(
            lambda conn: store.record_activities(
                conn, visitor, [seen], rules=rules.profile, now=seen.at, depth=depth
            )
        )
    extra: dict[str, Any] = {}
    if previewing is not None:
        shown = tp.previews.read(previewing, now=facts.now)
        campaign, variant = preview_module.resolve(shown, rules)
        outcome, trace = preview_module.outcome(campaign, variant, rules, facts, slots)
        extra["preview"] = {"campaign": campaign.id, "variant": variant.id, "trace": trace}
    else:
        outcome = decide_page(
            rules,
            facts,
            slots=slots,
            visitor_id=record.id if record and facts.history is not None else None,
            roll=random.random(),
        )
    body = {
        "consent": consent_state(request, data, record, rules),
        "counted": counted,
        **render(rules, outcome, facts),
        **extra,
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


def _context_str(context: dict[str, Any], key: str) -> str | None:
    value = context.get(key)
    return value if isinstance(value, str) and value else None


def render(rules: Ruleset, outcome: Outcome, facts: Facts) -> dict[str, Any]:
    """The popups and slot contents of ``outcome`` as the snippet receives them."""
    profile = facts.profile
    visitor = {
        "known": facts.known,
        "returning": profile.returning,
        "first_name": profile.first_name,
        "last_category": profile.last_category,
        "last_product": profile.last_product,
        "top_interest": profile.top_interest,
    }
    page = {"path": facts.path, "title": facts.view.title}
    context = {**rules.templates.context_defaults, **facts.context}

    def html(decision: Decision) -> str | None:
        variant = decision.variant
        if variant.template is None:  # a control: shows nothing, records an exposure
            return ""
        return rules.templates.render(
            variant.template,
            {
                "campaign": decision.campaign.id,
                "variant": variant.id,
                "page": page,
                "visitor": visitor,
                "context": context,
            },
        )

    session_seconds = None  # how long the visit has lasted, for after_seconds_on_site
    if profile.session_started_at is not None:
        session_seconds = facts.now - profile.session_started_at
    popups = []
    for decision in outcome.popups:
        campaign = decision.campaign
        markup = html(decision)
        if markup is None:
            continue
        popups.append(
            {
                "campaign": campaign.id,
                "variant": decision.variant.id,
                "style": campaign.style,
                "trigger": campaign.trigger.client(session_seconds=session_seconds),  # type: ignore[union-attr]
                "control": decision.variant.control,
                "html": markup,
            }
        )
    slots = {}
    for slot, decision in outcome.slots.items():
        markup = html(decision)
        if markup is not None:
            slots[slot] = {
                "campaign": decision.campaign.id,
                "variant": decision.variant.id,
                "control": decision.variant.control,
                "html": markup,
            }
    # The popups' stylesheet once, with the popups that use it: the snippet carries none.
    return {"popups": popups, "slots": slots, **stylesheet(popups)}
