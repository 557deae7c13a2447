"""One page view's decision, as the decide route, a preview link and ``touchpoint simulate``
all take it (docs/rules.md): the page view counted in the profile (the page is judged by the
profile as it stands after the view), the campaigns decided, or the one a preview forces, or
every campaign explained, and the popups and slot contents the snippet receives.

Pure but for the units of work it returns: the caller hands them to the writer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import store
from ..audience.facts import Facts, PageView
from ..audience.fields import NAME
from ..audience.geolocation import Geolocation
from ..render.popups import stylesheet
from ..rules.ruleset import Ruleset
from ..store import Connection
from ..store.activity import Activity
from ..store.records import PageViewUpdate, Profile
from ..syntax.shapes import Field, check
from ..webhooks import delivery as webhooks
from .preview import Preview, resolve
from .preview import outcome as preview_outcome
from .targeting import Decision, Outcome, decide, explanation

MAX_CONTEXT_KEYS = 32
# What the page pushed (touchpoint('context', ...)): short names to strings, numbers, booleans.
CONTEXT = Field(
    "context",
    "flat",
    "What the page pushed: cart value, page type, logged in ...",
    max_items=MAX_CONTEXT_KEYS,
    pattern=NAME,
)
Unit = Callable[[Connection], Any]  # a unit of work for the writer


def facts_for(
    rules: Ruleset,
    view: PageView,
    *,
    now: int,
    profile: Profile | None,
    history: dict[str, store.CampaignHistory] | None,
    geolocation: Geolocation | None = None,
) -> Facts:
    """The facts of a page view under the site's time zone, visit length and profile rules;
    ``profile`` and ``history`` are what the visitor's consent lets be used (None: nothing)."""
    return Facts(
        view,
        now=now,
        tz=rules.site.timezone,
        profile=profile,
        history=history,
        session_idle=rules.site.session_idle,
        profile_rules=rules.profile,
        geolocation=geolocation,
    )


def parse_context(value: Any) -> dict[str, Any]:
    """What the page pushed (:data:`CONTEXT`), checked."""
    return check(CONTEXT, value, "context", status=400)  # type: ignore[no-any-return]


def count(rules: Ruleset, facts: Facts, view: PageView, visitor_id: str, *, depth: str) -> Unit:
    """Count the page view of a visitor with a profile: ``facts.profile`` becomes the profile
    after the view (scored, its stage settled), and the returned unit stores that same result
    and queues the webhooks of what it changed."""
    update = PageViewUpdate(
        at=facts.now,
        touch=None if facts.internal else facts.touch,
        interests=rules.site.interests_of(view.path),
        category=_context_str(view.context, "category"),
        product=_context_str(view.context, "product"),
        path=view.path,
    )
    read, idle = facts.profile, rules.site.session_idle
    result = rules.profile.page_view(read, update, session_idle=idle, visitor_id=visitor_id)
    facts.profile = result[0]

    def count_view(conn: Connection) -> None:
        effects = store.record_page_view(
            conn,
            visitor_id,
            update,
            session_idle=idle,
            rules=rules.profile,
            read=read,
            result=result,
            depth=depth,
        )
        webhooks.report(conn, rules.site.webhooks, visitor_id, effects, now=update.at)
        if rules.goals and facts.history is not None:
            seen = [store.page_view_activity(update)]
            store.count_goals(conn, visitor_id, seen, rules.goals, rules.site.timezone)

    return count_view


def armed(rules: Ruleset, outcome: Outcome, at: int) -> Unit | None:
    """Count the campaigns a decide answer armed (popups and slots) in the rollups; None when
    it armed none. For visitors with a campaign history (the marketing consent): the same
    visitors whose exposures and conversions are counted."""
    chosen = [*outcome.popups, *outcome.slots.values()]
    if not chosen:
        return None
    on = store.day(at, rules.site.timezone)

    def count_armed(conn: Connection) -> None:
        for d in chosen:
            store.count_campaign(conn, on, d.campaign.id, d.variant.id, d.campaign.version, armed=1)

    return count_armed


def together(units: list[Unit]) -> Unit:
    """One unit of work doing ``units`` in order: what one request stores is one savepoint."""
    if len(units) == 1:
        return units[0]

    def all_of(conn: Connection) -> None:
        for unit in units:
            unit(conn)

    return all_of


def measure(rules: Ruleset, facts: Facts, visitor_id: str, *, depth: str) -> Unit:
    """Log the page view of a visitor with the measurement consent alone (no profile exists)."""
    seen = Activity("page_view", facts.now, path=facts.path)
    return lambda conn: store.record_activities(
        conn, visitor_id, [seen], rules=rules.profile, now=seen.at, depth=depth
    )


@dataclass
class PageDecision:
    outcome: Outcome
    preview: dict[str, Any] | None = None  # a preview's campaign, variant and real decision
    explained: dict[str, Any] | None = None  # explain=True: every campaign and why (simulate)


def decide_page(
    rules: Ruleset,
    facts: Facts,
    *,
    slots: tuple[str, ...] = (),
    visitor_id: str | None = None,
    roll: float = 0.0,
    preview: Preview | None = None,
    explain: bool = False,
    fired: str | None = None,
) -> PageDecision:
    """The decision for the page view ``facts``: the popups to arm and the slots to fill.

    ``preview`` forces the campaign of a preview link and explains what the visitor would
    really get; ``explain`` decides as usual and says for every campaign why it lost (and, with
    ``fired``, which popup that trigger shows). ``visitor_id`` (with the marketing consent)
    makes variants sticky; without it ``roll`` in [0, 1) picks one.
    """
    if preview is not None:
        campaign, variant = resolve(preview, rules)
        forced, lines = preview_outcome(campaign, variant, rules, facts, slots)
        shown = {"campaign": campaign.id, "variant": variant.id, "trace": lines}
        return PageDecision(forced, preview=shown)
    if explain:
        outcome = decide(rules, facts, slots=slots, visitor_id=visitor_id, explain=True)
        return PageDecision(outcome, explained=explanation(rules, outcome, fired=fired))
    return PageDecision(decide(rules, facts, slots=slots, visitor_id=visitor_id, roll=roll))


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
        # The browser's preferred language, lowercased ("de-at"; "" when it sends none), so a
        # template speaks it: {% if visitor.language.startswith("de") %}.
        "language": facts.languages[0] if facts.languages else "",
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
