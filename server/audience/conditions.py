"""Audience conditions: the fields a rule can test, their matchers, and compiled checks.

A condition is a YAML mapping of field names to matchers; all entries must hold. ``all``,
``any`` and ``not`` combine conditions. Field names are dotted (``page.path``) and may be
written nested (``page: {path: ...}``). Each condition compiles once per rules load into a
closure over :class:`~touchpoint.facts.Facts`, and keeps a description so a decision can say
which condition failed (see :func:`explain`).

FIELDS is the single definition of the language's fields: validation, evaluation, the JSON
Schema and docs/rules.md (checked by a test) all follow it.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..profiles import lifecycle
from ..store.records import STAGES
from ..syntax import matchers
from .facts import CHANNELS, DEVICE_TYPES, UTM_KEYS, Facts

Test = Callable[[Facts], bool]
Report = Callable[[str, str], None]  # (key path, message)

HISTORY_EVENTS = ("seen", "closed", "converted")
COMBINATORS = ("all", "any", "not")
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


def _history(f: Facts, campaign: str) -> Any:
    return f.history.get(campaign) if f.history else None


P, M = "personalisation", "marketing"
FIELDS: dict[str, FieldSpec] = {
    spec.name: spec
    for spec in [
        FieldSpec("page.path", "path", "the page's path; globs: * within a segment, ** across",
                  lambda f: f.path),
        FieldSpec("page.query", "text", "a query parameter of the page's URL",
                  lambda f, key: f.query.get(key), dynamic=True),
        FieldSpec("referrer.host", "host", "the host of the page's referrer, without www.",
                  lambda f: f.referrer_host),
        FieldSpec("referrer.channel", "choice", "the channel the visit came through",
                  lambda f: f.touch.channel, choices=CHANNELS),
        *[FieldSpec(f"utm.{k}", "text", f"utm_{k} of the visit", _utm(k)) for k in UTM_KEYS],
        FieldSpec("first_touch.channel", "choice", "the channel of the visitor's first visit",
                  _first_touch("channel"), needs=P, choices=CHANNELS),
        FieldSpec("first_touch.host", "host", "the referrer host of the first visit",
                  _first_touch("host"), needs=P),
        *[FieldSpec(f"first_touch.{k}", "text", f"utm_{k} of the visitor's first visit",
                    _first_touch(k), needs=P) for k in UTM_KEYS],
        FieldSpec("device.type", "choice", "desktop, mobile, tablet or bot",
                  lambda f: f.device.type, choices=DEVICE_TYPES),
        FieldSpec("device.os", "text", "operating system family, e.g. iOS, Android, Windows",
                  lambda f: f.device.os),
        FieldSpec("device.browser", "text", "browser family, e.g. Chrome, Firefox, Safari",
                  lambda f: f.device.browser),
        FieldSpec("language", "language", "the visitor's preferred language (en, de-AT)",
                  lambda f: f.languages[0] if f.languages else None),
        FieldSpec("country", "country",
                  "the visitor's country from their address (ISO 3166-1 alpha-2: AT, CH)",
                  lambda f: f.country, unknown=Facts.country_unknown),
        FieldSpec("visitor.returning", "flag", "whether this is a second or later visit",
                  lambda f: f.profile.returning, needs=P),
        FieldSpec("visitor.visits", "number", "visits (sessions), this one included",
                  lambda f: f.profile.visits, needs=P),
        FieldSpec("visitor.page_views", "number", "page views ever, this one included",
                  lambda f: f.profile.page_views, needs=P),
        FieldSpec("visitor.session_page_views", "number",
                  "page views in this visit, this one included",
                  lambda f: f.profile.session_page_views, needs=P),
        FieldSpec("visitor.stage", "choice", "the lifecycle stage (lifecycle.yaml), as of now",
                  lambda f: f.stage, needs=P, choices=STAGES),
        FieldSpec("visitor.score", "number", "the lead score (scoring.yaml), decayed to now",
                  lambda f: f.score, needs=P),
        FieldSpec("visitor.purchases", "number", "purchases pushed through the server API",
                  lambda f: f.profile.purchases, needs=P),
        FieldSpec("visitor.days_since_last_purchase", "number",
                  "whole days since the last purchase (not set: never bought)",
                  lambda f: lifecycle.days_since(f.profile.last_purchase_at, f.now), needs=P),
        FieldSpec("visitor.days_since_last_visit", "number",
                  "whole days since the last page view (0 during a visit)",
                  lambda f: lifecycle.days_since(f.profile.last_seen_at, f.now), needs=P),
        FieldSpec("visitor.days_in_stage", "number", "whole days in the current stage",
                  lambda f: lifecycle.days_in_stage(f.profile, f.now, f.stage), needs=P),
        FieldSpec("visitor.identified", "flag", "whether the visitor is known by e-mail or id",
                  lambda f: f.profile.identified, needs=P),
        FieldSpec("visitor.attributes", "value", "an attribute set through the server API",
                  lambda f, key: f.profile.attributes.get(key), needs=P, dynamic=True),
        FieldSpec("visitor.interests", "number", "page views in an interest (site.yaml)",
                  lambda f, key: f.profile.interests.get(key, 0), needs=P, dynamic=True),
        FieldSpec("visitor.top_interest", "text", "the interest with the most page views",
                  lambda f: f.profile.top_interest, needs=P),
        FieldSpec("context", "value", "a value the page pushed (cart_value, page_type, ...)",
                  lambda f, key: f.context.get(key), dynamic=True),
        FieldSpec("campaign", "history", "what the visitor did with another campaign",
                  _history, needs=M, dynamic=True),
        FieldSpec("schedule", "schedule", "dates, weekdays and hours in the site's time zone",
                  lambda f: f.local),
    ]
}  # fmt: skip
NAMESPACES = frozenset(name.split(".")[0] for name in FIELDS if "." in name)


@dataclass(frozen=True)
class Condition:
    """A compiled condition: ``test`` decides, ``text`` and ``children`` explain."""

    test: Test
    text: str
    op: str = "leaf"  # leaf, all, any, not
    children: tuple[Condition, ...] = ()
    value: Callable[[Facts], Any] | None = None  # a leaf's input, shown when it fails
    needs: frozenset[str] = frozenset()
    unknown: Callable[[Facts], str] | None = None  # why the input is None, when it is


TRUE = Condition(lambda f: True, "always", op="all")


def explain(condition: Condition, facts: Facts) -> str | None:
    """Why ``condition`` fails for ``facts`` (the first failing part), or None if it holds."""
    if condition.test(facts):
        return None
    if condition.op == "all":
        for child in condition.children:
            reason = explain(child, facts)
            if reason:
                return reason
    if condition.op == "any":
        return "none of: " + "; ".join(_text(c, facts) for c in condition.children)
    if condition.op == "not":
        return f"excluded: {condition.children[0].text}"
    if condition.value is not None:
        actual = condition.value(facts)
        if actual is None and condition.unknown is not None:
            return _text(condition, facts)
        if isinstance(actual, dt.datetime):
            actual = actual.strftime("%a %Y-%m-%d %H:%M")
        return f"{condition.text} (it is {actual!r})"
    return condition.text


def _text(condition: Condition, facts: Facts) -> str:
    """A condition's words, with why its input is unknown where that is the reason it fails
    (a country without a geolocation source)."""
    if condition.unknown is not None and condition.value is not None:
        if condition.value(facts) is None:
            return f"{condition.text} ({condition.unknown(facts)})"
    return condition.text


# --- compiling ------------------------------------------------------------------------------


class Compiler:
    """Compiles condition mappings, reporting problems by key path through ``report``.

    ``interests`` are the names site.yaml defines; campaign ids used in ``campaign.<id>``
    conditions are collected in ``campaign_refs`` for the loader to check once all are known.
    """

    def __init__(self, report: Report, *, interests: frozenset[str]) -> None:
        self.report = report
        self.interests = interests
        self.campaign_refs: list[tuple[str, str]] = []  # (key path, campaign id)
        self.country_refs: list[str] = []  # key paths of country conditions

    def conditions(self, data: Any, key: str) -> Condition | None:
        """A mapping (all entries must hold) or a list of mappings (all must hold)."""
        if isinstance(data, list):
            items = [self.conditions(item, f"{key}.{i}") for i, item in enumerate(data)]
            return _combine("all", [p for p in items if p], "all of")
        if not isinstance(data, dict):
            self.report(key, "must be a mapping of conditions, e.g. {page.path: /products/*}")
            return None
        parts: list[Condition] = []
        for name, value in flatten(data):
            part = self._entry(name, value, f"{key}.{name}" if key else name)
            if part is not None:
                parts.append(part)
        if len(parts) == 1:
            return parts[0]
        return _combine("all", parts, "all of")

    def _entry(self, name: str, value: Any, key: str) -> Condition | None:
        if name in ("all", "any"):
            if not isinstance(value, list) or not value:
                self.report(key, f"`{name}` takes a list of conditions")
                return None
            parts = [self.conditions(item, f"{key}.{i}") for i, item in enumerate(value)]
            if not all(parts):
                return None
            return _combine(name, [p for p in parts if p], f"{name} of")
        if name == "not":
            inner = self.conditions(value, key)
            if inner is None:
                return None
            test = inner.test
            return Condition(lambda f: not test(f), f"not ({inner.text})", "not", (inner,),
                             needs=inner.needs)  # fmt: skip
        spec, arg = lookup(name)
        if spec is None:
            names = sorted({*FIELDS, *COMBINATORS})
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" — did you mean `{close[0]}`?" if close else ""
            self.report(key, f"unknown condition `{name}`{hint} (see docs/rules.md)")
            return None
        if spec.dynamic and not arg:
            self.report(key, f"`{name}` needs a name after it, e.g. `{name}.cart_value`")
            return None
        if spec.name == "visitor.interests" and arg not in self.interests:
            known = ", ".join(sorted(self.interests)) or "none defined in site.yaml"
            self.report(key, f"unknown interest {arg!r} (interests: {known})")
            return None
        if spec.name == "campaign":
            return self._history(arg, value, key)
        if spec.dynamic:
            spec_get = spec.get
            get: Callable[[Facts], Any] = lambda f: spec_get(f, arg)  # noqa: E731
        else:
            get = spec.get
        matcher = self.matcher(spec, value, key)
        if matcher is None:
            return None
        match, text = matcher
        if spec.name == "country":
            self.country_refs.append(key)
        return Condition(
            lambda f: match(get(f)),
            f"{name} {text}",
            value=get,
            needs=frozenset({spec.needs} - {""}),
            unknown=spec.unknown,
        )

    def matcher(
        self, spec: FieldSpec, value: Any, key: str
    ) -> tuple[Callable[[Any], bool], str] | None:
        kind = spec.kind
        if kind == "value":  # context and attributes: the matcher's own shape tells the type
            kind = matchers.kind_of(value)
        try:
            if kind == "flag":
                if not isinstance(value, bool):
                    raise ValueError("must be true or false")
                return (lambda v: v is value), f"is {str(value).lower()}"
            if kind == "number":
                return matchers.number(value)
            if kind == "choice":
                return matchers.choice(value, spec.choices)
            if kind == "language":
                return matchers.language(value)
            if kind == "country":
                return matchers.country(value)
            if kind == "schedule":
                return matchers.schedule(value)
            if kind == "path" and not isinstance(value, dict):
                return matchers.globs(value, segments=True, want_slash=True)
            if kind in ("path", "host", "text"):
                return matchers.text(value)
        except ValueError as exc:
            self.report(key, str(exc))
            return None
        raise AssertionError(kind)

    def _history(self, arg: str, value: Any, key: str) -> Condition | None:
        campaign, _, event = arg.partition(".")
        if event not in (*HISTORY_EVENTS, "impressions"):
            self.report(
                key,
                "write campaign.<id>.seen, .closed, .converted or .impressions,"
                " e.g. campaign.newsletter.converted: true",
            )
            return None
        self.campaign_refs.append((key, campaign))
        try:
            match, text = matchers.number(value) if event == "impressions" else matchers.when(value)
        except ValueError as exc:
            self.report(key, str(exc))
            return None
        column = {"seen": "last_seen_at", "closed": "last_closed_at",
                  "converted": "last_converted_at"}.get(event, "")  # fmt: skip

        def get(f: Facts) -> Any:
            h = _history(f, campaign)
            if not column:
                return h.impressions if h else 0
            at = getattr(h, column) if h else None
            return None if at is None else f.now - at

        return Condition(lambda f: match(get(f)), f"campaign.{arg} {text}", value=get,
                         needs=frozenset({M}))  # fmt: skip


def flatten(data: dict[str, Any]) -> list[tuple[str, Any]]:
    """``page: {path: x}`` to ``page.path: x``: namespaces open, field names end the key."""
    out: list[tuple[str, Any]] = []
    for name, value in data.items():
        name = str(name)
        if name in NAMESPACES and name not in FIELDS and isinstance(value, dict):
            out.extend(flatten({f"{name}.{sub}": sub_value for sub, sub_value in value.items()}))
        elif isinstance(value, dict) and (
            _dynamic_prefix(name) == name or (name.startswith("campaign.") and name.count(".") == 1)
        ):  # context: {x: 1}, campaign: {id: {seen: true}} and campaign.id: {seen: true}
            out.extend(flatten({f"{name}.{sub}": v for sub, v in value.items()}))
        else:
            out.append((name, value))
    return out


def combine_all(parts: list[Condition]) -> Condition:
    return _combine("all", parts, "all of")


def lookup(name: str) -> tuple[FieldSpec | None, str]:
    """The field for a dotted name, and the dynamic part after it (``context.x`` -> x)."""
    if name in FIELDS:
        return FIELDS[name], ""
    prefix = _dynamic_prefix(name)
    if prefix and prefix != name:
        return FIELDS[prefix], name[len(prefix) + 1 :]
    return None, ""


def _dynamic_prefix(name: str) -> str | None:
    for spec in FIELDS.values():
        if spec.dynamic and (name == spec.name or name.startswith(spec.name + ".")):
            return spec.name
    return None


def _combine(op: str, parts: list[Condition], label: str) -> Condition:
    tests = tuple(p.test for p in parts)
    if op == "all":
        if not tests:
            return TRUE
        if len(tests) == 2:
            a, b = tests
            test: Test = lambda f: a(f) and b(f)  # noqa: E731
        else:
            test = lambda f: all(t(f) for t in tests)  # noqa: E731
    else:
        test = lambda f: any(t(f) for t in tests)  # noqa: E731
    return Condition(
        test,
        f"{label} ({'; '.join(p.text for p in parts)})",
        op,
        tuple(parts),
        needs=frozenset().union(*(p.needs for p in parts)),
    )
