"""The coupon routes of the server API: a redemption's fields and their validator, and the
schemas of the coupon bodies and answers in the OpenAPI document (api/spec.py lists the
operations; api/coupons.py answers them). Pure: no I/O, no clock."""

from __future__ import annotations

from typing import Any

from ..errors import FieldError
from ..syntax.shapes import Field, check
from .spec import REF_FIELDS

REDEMPTION_FIELDS = (
    Field("code", "string", "The coupon code the order used.", required=True, max_length=64),
    Field(
        "order_id",
        "string",
        "The shop's order id: the same order and code again answer as the first time.",
        required=True,
        max_length=128,
    ),
    Field("value", "number", "The order's value, credited to the campaign."),
    Field("currency", "currency", "ISO 4217 code, e.g. EUR."),
)


def parse_redemption(data: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, str] | None]:
    """A redemption's values, and who redeemed it if the shop says (``visitor_id``,
    ``customer_id`` or ``email``, as in events); raises FieldError naming the first bad field."""
    fields = {f.name: f for f in (*REDEMPTION_FIELDS, *REF_FIELDS)}
    for name in data:
        if name not in fields:
            raise FieldError(name, "unknown field for a redemption")
    values = {}
    for name, f in fields.items():
        if data.get(name) is None:
            if f.required:
                raise FieldError(name, "is required")
            continue
        values[name] = check(f, data[name])
    values["code"] = values["code"].strip()
    ref = next(((f.name, values.pop(f.name)) for f in REF_FIELDS if f.name in values), None)
    for f in REF_FIELDS:
        values.pop(f.name, None)
    return values, ref


def coupon_schemas() -> dict[str, Any]:
    """The coupon routes' bodies and answers, for the OpenAPI document."""
    integer, text = {"type": "integer"}, {"type": "string"}
    maybe = {"type": ["integer", "null"]}
    redeemed = {f.name: f.schema() for f in REDEMPTION_FIELDS}
    return {
        "CouponCodes": {
            "type": "object",
            "required": ["codes"],
            "additionalProperties": False,
            "properties": {"codes": {"type": "array", "items": text}},
        },
        "ImportReport": {
            "type": "object",
            "properties": {
                "added": {**integer, "description": "Codes added to the pool."},
                "duplicates": {**integer, "description": "Codes repeated within the request."},
                "already_stored": {**integer, "description": "Codes stored before (in any pool)."},
                "invalid": {
                    **integer,
                    "description": "Empty codes, or with a space or control"
                    " character, or longer than 64.",
                },
                "unlisted": {
                    **integer,
                    "description": "Skipped codes beyond the first 100 listed.",
                },
                "problems": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "line": {**integer, "description": "The CSV line."},
                            "index": {**integer, "description": "The index in codes."},
                            "code": text,
                            "problem": text,
                        },
                    },
                },
            },
        },
        "CouponStock": {
            "type": "object",
            "properties": {
                "pools": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "pool": text,
                            "codes": {
                                "type": ["string", "null"],
                                "description": "generated, imported or static; null: not in"
                                " coupons.yaml any more",
                            },
                            "free": {**integer, "description": "Codes in stock."},
                            "assigned": {
                                **integer,
                                "description": "Codes handed out (static: visitors"
                                " shown the code).",
                            },
                            "redeemed": integer,
                            "generated": integer,
                            "limit": maybe,
                            "remaining": {
                                **maybe,
                                "description": "Codes left to hand out; null: never runs out.",
                            },
                            "low_stock": maybe,
                            "low": {
                                "type": "boolean",
                                "description": "remaining is below low_stock.",
                            },
                        },
                    },
                }
            },
        },
        "Redemption": {
            "type": "object",
            "required": ["code", "order_id"],
            "additionalProperties": False,
            "properties": {**redeemed, **{f.name: f.schema() for f in REF_FIELDS}},
            "description": "visitor_id, customer_id or email (optional): who"
            " redeemed it; credits a shared code to the campaign"
            " that showed it to them.",
        },
        "Redeemed": {
            "type": "object",
            "properties": {
                **redeemed,
                "pool": text,
                "visitor_id": {"type": ["string", "null"]},
                "campaign": {"type": ["string", "null"], "description": "That revealed the code."},
                "variant": {"type": ["string", "null"]},
                "redeemed_at": {**integer, "description": "Unix seconds."},
            },
        },
    }
