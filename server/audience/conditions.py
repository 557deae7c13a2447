"""Audience conditions: the fields a rule can test, their matchers, and compiled checks.

A condition is a YAML mapping of field names to matchers; all entries must hold. ``all``,
``any`` and ``not`` combine conditions. Field names are dotted (``page.path``) and may be
written nested (``page: {path: ...}``). Each condition compiles once per rules load into a
closure over :class:`~touchpoint.facts.Facts`, and keeps a description so a decision can say
which condition failed (see :func:`explain`).

The fields themselves are in audience/fields.py.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..syntax import matchers
from .facts import Facts
from .fields import (
    FIELDS,
    HISTORY_EVENTS,
    NAMESPACES,
    FieldSpec,
    dynamic_prefix,
    history_of,
    lookup,
)

Test = Callable[[Facts], bool]
Report = Callable[[str, str], None]  # (key path, message)

COMBINATORS = ("all", "any", "not")


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
            return Condition(
                lambda f: not test(f), f"not ({inner.text})", "not", (inner,), needs=inner.needs
            )
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
                return matchers.choice(value, spec.choices, groups=spec.groups)
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
        column = {
            "seen": "last_seen_at",
            "closed": "last_closed_at",
            "converted": "last_converted_at",
        }.get(event, "")

        def get(f: Facts) -> Any:
            h = history_of(f, campaign)
            if not column:
                return h.impressions if h else 0
            at = getattr(h, column) if h else None
            return None if at is None else f.now - at

        return Condition(
            lambda f: match(get(f)),
            f"campaign.{arg} {text}",
            value=get,
            needs=frozenset({"marketing"}),
        )


def flatten(data: dict[str, Any]) -> list[tuple[str, Any]]:
    """``page: {path: x}`` to ``page.path: x``: namespaces open, field names end the key."""
    out: list[tuple[str, Any]] = []
    for name, value in data.items():
        name = str(name)
        if name in NAMESPACES and name not in FIELDS and isinstance(value, dict):
            out.extend(flatten({f"{name}.{sub}": sub_value for sub, sub_value in value.items()}))
        elif isinstance(value, dict) and (
            dynamic_prefix(name) == name or (name.startswith("campaign.") and name.count(".") == 1)
        ):  # context: {x: 1}, campaign: {id: {seen: true}} and campaign.id: {seen: true}
            out.extend(flatten({f"{name}.{sub}": v for sub, v in value.items()}))
        else:
            out.append((name, value))
    return out


def combine_all(parts: list[Condition]) -> Condition:
    return _combine("all", parts, "all of")


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
