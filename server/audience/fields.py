"""The fields an audience condition can test (``page.path``, ``visitor.stage``, ``context.x``
...): each one's kind, what it reads from :class:`~touchpoint.audience.facts.Facts`, and which
facts it needs.

FIELDS is the single definition of the language's fields: validation, evaluation, the JSON
Schema and docs/rules.md (checked by a test) all follow it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..profiles import lifecycle
from ..store.records import STAGES
from . import channels
from .facts import DEVICE_TYPES, UTM_KEYS, Facts

HISTORY_EVENTS = ("seen", "closed", "converted")
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class FieldSpec:
    """One field of the language. ``dynamic`` fields take a name after their own (``context.
    cart_value``); ``needs`` is the consent category the value depends on, if any."""

    name: str
    # path, host, text, choice, language, country, number, flag, value, history or schedule
    kind: str
    doc: str
    get: Callable[..., Any]
    needs: str = ""
    choices: tuple[str, ...] = ()
    groups: dict[str, frozenset[str]] | None = None  # choices that stand for several values
    dynamic: bool = False
    unknown: Callable[[Facts], str] | None = None  # why the value is None, for explanations


def _utm(key: str) -> Callable[[Facts], Any]:
    return lambda f: f.touch.utm.get(key)


def _first_touch(key: str) -> Callable[[Facts], Any]:
    def get(f: Facts) -> Any:
        touch = f.profile.first_touch
        if touch is None:
            return None
        if key in ("channel", "host"):
            return getattr(touch, key)
        return touch.utm.get(key)

    return get


def history_of(f: Facts, campaign: str) -> Any:
    return f.history.get(campaign) if f.history else None


P, M = "personalisation", "marketing"  # the consent a field needs
FIELDS: dict[str, FieldSpec] = {
    spec.name: spec
    for spec in [
        FieldSpec(
            "page.path",
            "path",
            "the page's path; globs: * within a segment, ** across",
            lambda f: f.path,
        ),
        FieldSpec(
            "page.query",
            "text",
            "a query parameter of the page's URL",
            lambda f, key: f.query.get(key),
            dynamic=True,
        ),
        FieldSpec(
            "referrer.host",
            "host",
            "the host of the page's referrer, without www.",
            lambda f: f.referrer_host,
        ),
        FieldSpec(
            "referrer.channel",
            "choice",
            "the channel the visit came through",
            lambda f: f.touch.channel,
            choices=channels.VALUES,
            groups=channels.GROUPS,
        ),
        *[FieldSpec(f"utm.{k}", "text", f"utm_{k} of the visit", _utm(k)) for k in UTM_KEYS],
        FieldSpec(
            "first_touch.channel",
            "choice",
            "the channel of the visitor's first visit",
            _first_touch("channel"),
            needs=P,
            choices=channels.VALUES,
            groups=channels.GROUPS,
        ),
        FieldSpec(
            "first_touch.host",
            "host",
            "the referrer host of the first visit",
            _first_touch("host"),
            needs=P,
        ),
        *[
            FieldSpec(
                f"first_touch.{k}",
                "text",
                f"utm_{k} of the visitor's first visit",
                _first_touch(k),
                needs=P,
            )
            for k in UTM_KEYS
        ],
        FieldSpec(
            "device.type",
            "choice",
            "desktop, mobile, tablet or bot",
            lambda f: f.device.type,
            choices=DEVICE_TYPES,
        ),
        FieldSpec(
            "device.os",
            "text",
            "operating system family, e.g. iOS, Android, Windows",
            lambda f: f.device.os,
        ),
        FieldSpec(
            "device.browser",
            "text",
            "browser family, e.g. Chrome, Firefox, Safari",
            lambda f: f.device.browser,
        ),
        FieldSpec(
            "language",
            "language",
            "the visitor's preferred language (en, de-AT)",
            lambda f: f.languages[0] if f.languages else None,
        ),
        FieldSpec(
            "country",
            "country",
            "the visitor's country from their address (ISO 3166-1 alpha-2: AT, CH)",
            lambda f: f.country,
            unknown=Facts.country_unknown,
        ),
        FieldSpec(
            "visitor.returning",
            "flag",
            "whether this is a second or later visit",
            lambda f: f.profile.returning,
            needs=P,
        ),
        FieldSpec(
            "visitor.visits",
            "number",
            "visits (sessions), this one included",
            lambda f: f.profile.visits,
            needs=P,
        ),
        FieldSpec(
            "visitor.page_views",
            "number",
            "page views ever, this one included",
            lambda f: f.profile.page_views,
            needs=P,
        ),
        FieldSpec(
            "visitor.session_page_views",
            "number",
            "page views in this visit, this one included",
            lambda f: f.profile.session_page_views,
            needs=P,
        ),
        FieldSpec(
            "visitor.stage",
            "choice",
            "the lifecycle stage (lifecycle.yaml), as of now",
            lambda f: f.stage,
            needs=P,
            choices=STAGES,
        ),
        FieldSpec(
            "visitor.score",
            "number",
            "the lead score (scoring.yaml), decayed to now",
            lambda f: f.score,
            needs=P,
        ),
        FieldSpec(
            "visitor.purchases",
            "number",
            "purchases pushed through the server API",
            lambda f: f.profile.purchases,
            needs=P,
        ),
        FieldSpec(
            "visitor.days_since_last_purchase",
            "number",
            "whole days since the last purchase (not set: never bought)",
            lambda f: lifecycle.days_since(f.profile.last_purchase_at, f.now),
            needs=P,
        ),
        FieldSpec(
            "visitor.days_since_last_visit",
            "number",
            "whole days since the last page view (0 during a visit)",
            lambda f: lifecycle.days_since(f.profile.last_seen_at, f.now),
            needs=P,
        ),
        FieldSpec(
            "visitor.days_in_stage",
            "number",
            "whole days in the current stage",
            lambda f: lifecycle.days_in_stage(f.profile, f.now, f.stage),
            needs=P,
        ),
        FieldSpec(
            "visitor.identified",
            "flag",
            "whether the visitor is known by e-mail or id",
            lambda f: f.profile.identified,
            needs=P,
        ),
        FieldSpec(
            "visitor.attributes",
            "value",
            "an attribute set through the server API",
            lambda f, key: f.profile.attributes.get(key),
            needs=P,
            dynamic=True,
        ),
        FieldSpec(
            "visitor.interests",
            "number",
            "page views in an interest (site.yaml)",
            lambda f, key: f.profile.interests.get(key, 0),
            needs=P,
            dynamic=True,
        ),
        FieldSpec(
            "visitor.top_interest",
            "text",
            "the interest with the most page views",
            lambda f: f.profile.top_interest,
            needs=P,
        ),
        FieldSpec(
            "context",
            "value",
            "a value the page pushed (cart_value, page_type, ...)",
            lambda f, key: f.context.get(key),
            dynamic=True,
        ),
        FieldSpec(
            "campaign",
            "history",
            "what the visitor did with another campaign",
            history_of,
            needs=M,
            dynamic=True,
        ),
        FieldSpec(
            "schedule",
            "schedule",
            "dates, weekdays and hours in the site's time zone",
            lambda f: f.local,
        ),
    ]
}
NAMESPACES = frozenset(name.split(".")[0] for name in FIELDS if "." in name)


def lookup(name: str) -> tuple[FieldSpec | None, str]:
    """The field for a dotted name, and the dynamic part after it (``context.x`` -> x)."""
    if name in FIELDS:
        return FIELDS[name], ""
    prefix = dynamic_prefix(name)
    if prefix and prefix != name:
        return FIELDS[prefix], name[len(prefix) + 1 :]
    return None, ""


def dynamic_prefix(name: str) -> str | None:
    for spec in FIELDS.values():
        if spec.dynamic and (name == spec.name or name.startswith(spec.name + ".")):
            return spec.name
    return None
