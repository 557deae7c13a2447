"""JSON Schemas for the rules files, generated from the definitions the loader validates with.

Editors that speak JSON Schema (VS Code's YAML extension, JetBrains IDEs) autocomplete and flag
mistakes with them: ``touchpoint schema campaign`` (``site``, ``scoring``, ``lifecycle``,
``coupons``)
prints them, and docs/ holds the published copies (a test keeps those up to date). The loader
stays the authority: it also checks what a schema cannot (templates, campaign references,
regexes).
"""

from __future__ import annotations

from typing import Any

from ..audience import fields
from ..audience.channels import VALUES as CHANNELS
from ..audience.fields import FIELDS, HISTORY_EVENTS
from ..consent import banner
from ..coupons import pools as coupons
from ..profiles import lifecycle
from ..store.activity import TYPES
from ..store.records import STAGES
from ..store.rollups import GOAL_EVENTS
from ..store.stock import MAX_CODE
from ..syntax.countries import COUNTRIES
from ..syntax.matchers import NUMBER_OPS, WEEKDAYS
from ..webhooks.delivery import EVENTS
from . import couponfiles, profilefiles
from .campaigns import CAMPAIGN_ID, EXIT_INTENT_SIGNALS, KEYS, KINDS, STYLES, TRIGGERS
from .site import ENV_NAME

DRAFT = "https://json-schema.org/draft/2020-12/schema"
NAME_PATTERN = CAMPAIGN_ID.pattern
GOAL_HELP = (
    "what converts the campaign's visitors, a control variant's too, within `within` (7d) after"
    " their last exposure (docs/reports.md#attribution)"
)
CONTROL_HELP = "a holdout group: sees nothing, records an exposure"


def _obj(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "additionalProperties": False, **extra}


def _one_or_many(item: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [item, {"type": "array", "items": item, "minItems": 1}]}


DEFS: dict[str, Any] = {
    "duration": {
        "description": "7d, 12h, 30m, 45s, never or 0",
        "anyOf": [{"type": "string", "pattern": r"^(\d+[smhd]|never)$"}, {"const": 0}],
    },
    "number": {
        "anyOf": [
            {"type": "number"},
            _obj({op: {"type": "number"} for op in NUMBER_OPS}, minProperties=1),
        ]
    },
    "flag": {"type": "boolean"},
    "text": {
        "anyOf": [
            _one_or_many({"type": ["string", "number"]}),
            _obj({"matches": {"type": "string", "format": "regex"}}, required=["matches"]),
            _obj({"exists": {"type": "boolean"}}, required=["exists"]),
        ]
    },
    "path": {
        "anyOf": [
            _one_or_many({"type": "string", "pattern": "^[/*]"}),
            _obj({"matches": {"type": "string", "format": "regex"}}, required=["matches"]),
        ]
    },
    "language": _one_or_many({"type": "string", "pattern": "^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"}),
    # Any case is accepted (the loader checks lowercase codes); "NO" (Norway) needs its quotes.
    "country_code": {
        "anyOf": [{"enum": sorted(COUNTRIES)}, {"type": "string", "pattern": "^[a-z]{2}$"}]
    },
    "country": _one_or_many({"$ref": "#/$defs/country_code"}),
    "value": {
        "anyOf": [{"$ref": "#/$defs/flag"}, {"$ref": "#/$defs/number"}, {"$ref": "#/$defs/text"}]
    },
    "when": {
        "anyOf": [
            {"type": "boolean"},
            _obj({"within": {"$ref": "#/$defs/duration"}}, required=["within"]),
            _obj({"before": {"$ref": "#/$defs/duration"}}, required=["before"]),
        ]
    },
    "history": _obj(
        {
            **{e: {"$ref": "#/$defs/when"} for e in HISTORY_EVENTS},
            "impressions": {"$ref": "#/$defs/number"},
        }
    ),
    "schedule": _obj(
        {
            "from": {"type": ["string"], "description": "2026-12-01 or 2026-12-01 08:00"},
            "until": {"type": ["string"], "description": "inclusive; a date means the whole day"},
            "weekdays": _one_or_many({"enum": list(WEEKDAYS)}),
            "hours": _one_or_many({"type": "string", "pattern": r"^\d{1,2}:\d{2}-\d{1,2}:\d{2}$"}),
        },
        minProperties=1,
    ),
}


def _field_schema(spec: fields.FieldSpec) -> dict[str, Any]:
    kind = "text" if spec.kind == "host" else spec.kind  # a host matches like any text
    if kind == "choice":
        schema = _one_or_many({"enum": list(spec.choices)})
    else:
        schema = {"$ref": f"#/$defs/{kind}"}
    return {**schema, "description": spec.doc}


def _conditions() -> dict[str, Any]:
    """Conditions: dotted field names, nested namespaces, and all / any / not."""
    ref = {"$ref": "#/$defs/conditions"}
    properties: dict[str, Any] = {
        "all": {"type": "array", "items": ref, "minItems": 1, "description": "all must hold"},
        "any": {"type": "array", "items": ref, "minItems": 1, "description": "one must hold"},
        "not": {
            "anyOf": [ref, {"type": "array", "items": ref}],
            "description": "excluded when all of it holds",
        },
    }
    patterns: dict[str, Any] = {}
    namespaces: dict[str, dict[str, Any]] = {}
    for spec in FIELDS.values():
        value = _field_schema(spec)
        if spec.name == "campaign":
            history = {"$ref": "#/$defs/history"}
            patterns[r"^campaign\.[a-z0-9][a-z0-9_-]*$"] = history
            patterns[r"^campaign\.[a-z0-9][a-z0-9_-]*\.(seen|closed|converted)$"] = {
                "$ref": "#/$defs/when"
            }
            patterns[r"^campaign\.[a-z0-9][a-z0-9_-]*\.impressions$"] = {"$ref": "#/$defs/number"}
            properties["campaign"] = {
                "type": "object",
                "additionalProperties": history,
                "description": spec.doc,
            }
            continue
        if spec.dynamic:
            patterns["^" + spec.name.replace(".", r"\.") + r"\.[A-Za-z0-9_][A-Za-z0-9_-]*$"] = value
            value = {"type": "object", "additionalProperties": value, "description": spec.doc}
        namespace, _, rest = spec.name.partition(".")
        if rest:
            properties[spec.name] = value
            namespaces.setdefault(namespace, {})[rest] = value
        else:
            properties[spec.name] = value
    for namespace, members in namespaces.items():
        properties[namespace] = _obj(members)
    return {
        "type": "object",
        "properties": properties,
        "patternProperties": patterns,
        "additionalProperties": False,
    }


def _trigger() -> dict[str, Any]:
    values = {
        "none": {"type": "null"},
        "seconds": {"type": "number", "minimum": 0, "maximum": 86400},
        "percent": {"type": "number", "minimum": 0, "maximum": 100},
        "count": {"type": "integer", "minimum": 1},
        "selector": {"type": "string", "minLength": 1, "maxLength": 256},
        "name": {"type": "string", "pattern": fields.NAME.pattern},
        "options": {
            "anyOf": [
                {"type": "null"},
                _obj(
                    {
                        "min_seconds": {"type": "number", "minimum": 0, "maximum": 86400},
                        **{signal: {"type": "boolean"} for signal in EXIT_INTENT_SIGNALS},
                    }
                ),
            ]
        },
    }
    return {
        "anyOf": [
            {"enum": ["load", "exit_intent"]},
            _obj(
                {name: values[kind] for name, kind in TRIGGERS.items()},
                minProperties=1,
                maxProperties=1,
            ),
        ]
    }


def campaign_schema() -> dict[str, Any]:
    """The JSON Schema of one campaign file."""
    variant = _obj(
        {
            "id": {"type": "string", "pattern": NAME_PATTERN},
            "weight": {"type": "integer", "minimum": 0},
            "template": {"type": "string", "description": "a file in rules/templates/"},
            "control": {"type": "boolean", "description": CONTROL_HELP},
            "coupon": _obj(
                {
                    "pool": {
                        "type": "string",
                        "pattern": NAME_PATTERN,
                        "description": "a pool of rules/coupons.yaml",
                    }
                },
                required=["pool"],
            ),
        },
        required=["id"],
        # A variant that shows something needs a template.
        **{
            "if": {"properties": {"control": {"const": True}}, "required": ["control"]},
            "else": {"required": ["template"]},
        },
    )
    top = {
        "campaign": {"type": "string", "pattern": NAME_PATTERN},
        "kind": {"enum": list(KINDS)},
        "style": {"enum": list(STYLES)},
        "slot": {"type": "string", "pattern": NAME_PATTERN},
        "trigger": _trigger(),
        "audience": {
            "anyOf": [
                {"$ref": "#/$defs/conditions"},
                {"type": "array", "items": {"$ref": "#/$defs/conditions"}},
            ]
        },
        "schedule": {"$ref": "#/$defs/schedule"},
        "frequency": _obj(
            {
                "after_close": {"$ref": "#/$defs/duration"},
                "after_convert": {"$ref": "#/$defs/duration"},
                "max_impressions": {"type": "integer", "minimum": 1},
                "max_per_session": {"type": "integer", "minimum": 1},
            }
        ),
        "priority": {"type": "integer"},
        "version": {"type": "integer", "minimum": 1},
        "goal": _obj(
            {
                "event": {"enum": list(GOAL_EVENTS), "description": GOAL_HELP},
                "name": {"type": "string", "minLength": 1},
                "path": {
                    "anyOf": [
                        {"type": "string", "pattern": "^/"},
                        {"type": "array", "items": {"type": "string", "pattern": "^/"}},
                    ]
                },
                "within": {"$ref": "#/$defs/duration"},
            },
            required=["event"],
        ),
        "variants": {"type": "array", "items": variant, "minItems": 1},
    }
    assert set(top) == set(KEYS[""])
    return {
        "$schema": DRAFT,
        "title": "Touchpoint campaign (rules/*.yaml)",
        **_obj(top, required=["campaign", "variants"]),
        # Content fills a slot; a popup needs a trigger.
        "if": {"properties": {"kind": {"const": "content"}}, "required": ["kind"]},
        "then": {"required": ["slot"]},
        "else": {"required": ["trigger"]},
        "$defs": {**DEFS, "conditions": _conditions()},
    }


def site_schema() -> dict[str, Any]:
    """The JSON Schema of rules/site.yaml."""
    top = {
        "timezone": {"type": "string", "description": "IANA name, e.g. Europe/Berlin"},
        "session_idle": {"$ref": "#/$defs/duration"},
        "popups": _obj({"min_gap": {"$ref": "#/$defs/duration"}}),
        "interests": {
            "type": "object",
            "additionalProperties": _one_or_many({"type": "string", "pattern": "^/"}),
        },
        "consent": _obj(
            {
                "mode": {"enum": list(banner.MODES)},
                "privacy_policy": {"type": "string", "pattern": r"^(/|https?://)\S+$"},
                "tcf_timeout": {"type": "string", "pattern": r"^\d+s$"},
                "texts": {
                    "type": "object",
                    "propertyNames": {"pattern": banner.LANGUAGE.pattern},
                    "additionalProperties": _obj(
                        {
                            key: {"type": "string", "minLength": 1, "maxLength": banner.MAX_TEXT}
                            for key in banner.TEXT_KEYS
                        }
                    ),
                },
            }
        ),
        "webhooks": {
            "type": "object",
            "propertyNames": {"pattern": fields.NAME.pattern},
            "additionalProperties": _obj(
                {
                    "url": {"type": "string", "pattern": "^https?://"},
                    "secret_env": {
                        "type": "string",
                        "pattern": ENV_NAME.pattern,
                        "description": "the environment variable holding the whsec_ secret "
                        "(touchpoint webhooks secret makes one)",
                    },
                    "events": _one_or_many({"enum": list(EVENTS)}),
                },
                required=["url", "secret_env"],
            ),
        },
    }
    assert set(top) == set(KEYS["site"])
    return {
        "$schema": DRAFT,
        "title": "Touchpoint site settings (rules/site.yaml)",
        **_obj(top),
        "$defs": {"duration": DEFS["duration"]},
    }


def scoring_schema() -> dict[str, Any]:
    """The JSON Schema of rules/scoring.yaml."""
    name = {"type": "string", "pattern": fields.NAME.pattern}
    count = {"type": "integer", "minimum": 1}
    point = _obj(
        {
            "id": {**name, "description": "names the rule in explanations and counters"},
            "activity": {"enum": list(TYPES)},
            "points": {"type": "number", "description": "negative to take points away"},
            "path": DEFS["path"]["anyOf"][0],
            "name": DEFS["text"],
            "min_value": {"type": "number", "description": "dwell seconds, scroll percent"},
            "returning": {"type": "boolean", "description": "a second or later visit"},
            "channel": _one_or_many({"enum": list(CHANNELS)}),
            "first_time": {"type": "boolean", "description": "only the first time ever"},
            "max_per_day": count,
            "max_per_visit": count,
        },
        required=["id", "activity", "points"],
    )
    threshold = _obj(
        {
            "name": name,
            "at": {"type": "number", "exclusiveMinimum": 0},
            "actions": _obj(
                {
                    "webhook": {**name, "description": "an endpoint name from site.yaml webhooks"},
                    "stage": {"enum": list(STAGES)},
                    "attribute": {
                        "type": "object",
                        "additionalProperties": {"type": ["string", "number", "boolean"]},
                    },
                }
            ),
        },
        required=["name", "at"],
    )
    top = {
        "points": {"type": "array", "items": point},
        "decay": _obj(
            {"half_life": {"$ref": "#/$defs/duration"}, "after": {"$ref": "#/$defs/duration"}}
        ),
        "thresholds": {"type": "array", "items": threshold},
    }
    keys = profilefiles.KEYS
    assert set(top) == set(keys["scoring"]) and set(point["properties"]) == set(
        keys["scoring.points"]
    )
    return {
        "$schema": DRAFT,
        "title": "Touchpoint lead scoring (rules/scoring.yaml)",
        **_obj(top),
        "$defs": {"duration": DEFS["duration"]},
    }


def lifecycle_schema() -> dict[str, Any]:
    """The JSON Schema of rules/lifecycle.yaml."""
    values = {
        "choice": _one_or_many({"enum": list(STAGES)}),
        "flag": {"type": "boolean"},
        "number": DEFS["number"],
    }
    when = _obj({name: values[kind] for name, kind in lifecycle.CONDITIONS.items()})
    stage = _obj(
        {
            "stage": {"enum": list(STAGES)},
            "when": {
                "anyOf": [when, {"type": "array", "items": when}],
                "description": "all must hold; a list: one of them must hold",
            },
        },
        required=["stage"],
    )
    return {
        "$schema": DRAFT,
        "title": "Touchpoint lifecycle stages (rules/lifecycle.yaml)",
        **_obj({"stages": {"type": "array", "items": stage, "minItems": 1}}, required=["stages"]),
    }


def coupons_schema() -> dict[str, Any]:
    """The JSON Schema of rules/coupons.yaml."""
    count = {"type": "integer", "minimum": 1}
    code = {"type": "string", "minLength": 1, "maxLength": MAX_CODE, "pattern": r"^\S+$"}
    pool = _obj(
        {
            "codes": {"enum": list(coupons.KINDS)},
            "pattern": {
                **code,
                "pattern": rf"^(?:[^X\s]*X){{{coupons.MIN_RANDOM}}}\S*$",
                "description": f"each X one random character; at least"
                f" {coupons.MIN_RANDOM}, e.g. WELCOME-XXXX-XXXX",
            },
            "code": {**code, "description": "the one code of a static pool"},
            "limit": {**count, "description": "generated: at most this many codes, ever"},
            "low_stock": {**count, "description": "warn when fewer codes than this remain"},
            "valid": _obj(
                {
                    "days": {**count, "description": "from when the visitor gets the code"},
                    "until": {
                        "type": "string",
                        "description": "a date (the whole day) or 2026-12-24 18:00, site time",
                    },
                },
                minProperties=1,
            ),
        },
        required=["codes"],
        allOf=[
            {
                "if": {"properties": {"codes": {"const": kind}}},
                "then": {"required": [needs]} if needs else {},
                "else": {"not": {"required": [own]}},
            }
            for kind, needs, own in (
                ("generated", "pattern", "pattern"),
                ("static", "code", "code"),
            )
        ]
        + [
            {
                "if": {"properties": {"codes": {"const": "generated"}}},
                "else": {"not": {"required": ["limit"]}},
            },
            {
                "if": {"properties": {"codes": {"const": "static"}}},
                "then": {"not": {"required": ["low_stock"]}},
            },
        ],
    )
    top = {
        "exclude": {
            "$ref": "#/$defs/conditions",
            "description": "nobody it matches gets a coupon from any campaign",
        },
        "pools": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": coupons.POOL_NAME.pattern},
            "additionalProperties": pool,
        },
    }
    keys = couponfiles.KEYS
    assert set(top) == set(keys["coupons"])
    assert set(pool["properties"]) == set(keys["coupons.pools.NAME"])
    return {
        "$schema": DRAFT,
        "title": "Touchpoint coupon pools (rules/coupons.yaml)",
        **_obj(top, required=["pools"]),
        "$defs": {**DEFS, "conditions": _conditions()},
    }


SCHEMAS = {
    "campaign": campaign_schema,
    "site": site_schema,
    "scoring": scoring_schema,
    "lifecycle": lifecycle_schema,
    "coupons": coupons_schema,
}
