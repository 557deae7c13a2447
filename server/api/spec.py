"""The server API's request bodies: event fields and attribute values.

The request validators (``parse_event``, ``parse_attributes``) and their schemas in the OpenAPI
document (api/openapi.py) both come from these declarations (syntax/shapes.py), so they cannot
disagree. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..audience.fields import NAME
from ..errors import FieldError
from ..store.activity import Activity
from ..syntax.shapes import Field, check

MAX_BATCH = 500
MAX_PROPS = 32
MAX_ITEMS = 100
MAX_ATTRIBUTES = 64  # per request
FUTURE_SKEW = 300  # seconds an event's `at` may lie ahead of the server's clock


REF_FIELDS = (
    Field("visitor_id", "string", "The visitor id (from an export or a webhook).", max_length=64),
    Field("customer_id", "string", "The customer id given to identify.", max_length=128),
    Field("email", "string", "The e-mail address given to identify.", max_length=320),
)
COMMON_FIELDS = (
    Field("at", "time", "When it happened, Unix seconds (default: when it is received)."),
)
EVENT_FIELDS: dict[str, tuple[Field, ...]] = {
    "purchase": (
        Field(
            "order_id",
            "string",
            "The shop's order id; a second push of it is ignored.",
            required=True,
            max_length=128,
        ),
        Field("value", "number", "The order's value."),
        Field("currency", "currency", "ISO 4217 code, e.g. EUR."),
        Field(
            "items",
            "items",
            f"At most {MAX_ITEMS} line items, each a flat object.",
            max_items=MAX_ITEMS,
            pattern=NAME,
        ),
    ),
    "newsletter_open": (Field("name", "string", "The newsletter or mailing."),),
    "email_click": (
        Field("url", "url", "The link clicked.", required=True, max_length=2048),
        Field("name", "string", "The newsletter or mailing."),
    ),
    "webinar": (Field("name", "string", "The webinar attended.", required=True),),
    "custom": (
        Field("name", "string", "The event's name.", required=True, max_length=64),
        Field("props", "flat", f"At most {MAX_PROPS} flat properties.", pattern=NAME),
    ),
}


@dataclass(frozen=True)
class Pushed:
    """One validated event of a push: whom it is about, the activity, the order if any."""

    ref: tuple[str, str]  # ("visitor_id" | "customer_id" | "email", value as given)
    activity: Activity
    order: dict[str, Any] | None = None


def parse_event(item: Any, *, now: int) -> Pushed:
    """One pushed event, validated; raises FieldError naming the first bad field."""
    if not isinstance(item, dict):
        raise FieldError("", "an event must be an object")
    kind = item.get("type")
    if not isinstance(kind, str) or kind not in EVENT_FIELDS:
        raise FieldError("type", f"must be one of {', '.join(EVENT_FIELDS)}")
    fields = {f.name: f for f in (*REF_FIELDS, *COMMON_FIELDS, *EVENT_FIELDS[kind])}
    for name in item:
        if name != "type" and name not in fields:
            raise FieldError(name, f"unknown field for a {kind} event")
    values = {}
    for name, f in fields.items():
        if item.get(name) is None:
            if f.required:
                raise FieldError(name, f"is required for a {kind} event")
            continue
        values[name] = check(f, item[name])
    ref = next(((f.name, values[f.name]) for f in REF_FIELDS if f.name in values), None)
    if ref is None:
        raise FieldError("visitor_id", "give a visitor_id, customer_id or email")
    at = values.get("at", now)
    if at > now + FUTURE_SKEW:
        raise FieldError("at", "lies in the future")
    order = None
    props: dict[str, Any] = dict(values.get("props", {}))
    if kind == "purchase":
        order = {
            "order_id": values["order_id"],
            "value": values.get("value"),
            "currency": values.get("currency"),
            "items": values.get("items", []),
        }
        props = {"currency": values["currency"]} if "currency" in values else {}
        props["items"] = len(values.get("items", []))
    if kind == "email_click":
        props["url"] = values["url"]
    activity = Activity(
        type=kind,
        at=at,
        name=values.get("order_id", values.get("name")),
        value=values.get("value"),
        props=props,
        source="api",
    )
    return Pushed(ref, activity, order)


def parse_attributes(data: dict[str, Any]) -> dict[str, Any]:
    """``{name: value}`` for PUT .../attributes: str, number, bool, or null to clear."""
    if not data or len(data) > MAX_ATTRIBUTES:
        raise FieldError("", f"give 1 to {MAX_ATTRIBUTES} attributes")
    for name, value in data.items():
        if not NAME.match(name):
            raise FieldError(name[:64], "an attribute name uses letters, digits, - and _")
        if value is None or isinstance(value, (bool, int)):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise FieldError(name, "must be a finite number")
        if isinstance(value, str) and len(value) > 256:
            raise FieldError(name, "longer than 256 characters")
        if not isinstance(value, (str, float)):
            raise FieldError(name, "must be a string, number, boolean or null")
    return data
