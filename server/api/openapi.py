"""The OpenAPI 3.1 document of the server API (``openapi()``, served at
``/tp/v1/api/openapi.json`` and committed as ``docs/openapi.json``; the public routes' document
is web/openapi.py). Every request body schema comes from the declarations the routes validate
with (syntax/shapes.py, api/spec.py), so the document and the validators cannot disagree. Pure:
no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..audience.fields import NAME
from . import reportschemas
from .couponspec import coupon_schemas
from .keys import SCOPES
from .spec import COMMON_FIELDS, EVENT_FIELDS, MAX_ATTRIBUTES, MAX_BATCH, REF_FIELDS


@dataclass(frozen=True)
class Operation:
    id: str
    method: str
    path: str  # under the API's base path
    summary: str
    scope: str | None  # None: no key needed
    body: str | None = None  # a schema under components/schemas
    ok: tuple[int, str] = (200, "")  # status and response schema
    errors: tuple[int, ...] = field(default=(400, 401, 403, 404, 413, 422))
    reasons: tuple[tuple[int, str], ...] = ()  # what an error status means here, if not _REASONS
    csv: bool = False  # the body may also be text/csv
    query: tuple[tuple[str, dict[str, Any], str], ...] = ()  # (name, schema, description)


UNIX_RANGE = (
    (
        "since",
        {"type": "integer", "minimum": 0},
        "Only what happened at or after this time, Unix seconds.",
    ),
    (
        "until",
        {"type": "integer", "minimum": 0},
        "Only what happened before this time, Unix seconds.",
    ),
)
DAY_RANGE = (
    (
        "since",
        {"type": "string", "format": "date"},
        "The first day, YYYY-MM-DD in the site's time zone (default: 29 days before until).",
    ),
    ("until", {"type": "string", "format": "date"}, "The last day, included (default: today)."),
)

OPERATIONS = (
    Operation(
        "pushEvents",
        "post",
        "/events",
        "Push one event or a batch of them",
        "events:write",
        "EventPush",
        (202, "PushResult"),
    ),
    Operation(
        "getVisitor",
        "get",
        "/visitors/{ref}",
        "A visitor's profile and history",
        "profiles:read",
        None,
        (200, "Visitor"),
        (401, 403, 404),
    ),
    Operation(
        "setAttributes",
        "put",
        "/visitors/{ref}/attributes",
        "Set or clear (null) attributes",
        "profiles:write",
        "Attributes",
        (200, "AttributesResult"),
    ),
    Operation(
        "deleteAttribute",
        "delete",
        "/visitors/{ref}/attributes/{name}",
        "Clear one attribute",
        "profiles:write",
        None,
        (204, ""),
        (401, 403, 404, 422),
    ),
    Operation(
        "importCoupons",
        "post",
        "/coupons/{pool}/codes",
        "Add codes to an imported pool",
        "coupons:write",
        "CouponCodes",
        (200, "ImportReport"),
        (400, 401, 403, 404, 413, 422),
        (
            (404, "No such pool in coupons.yaml"),
            (422, "Not an imported pool, or not a list of strings"),
        ),
        csv=True,
    ),
    Operation(
        "couponStock",
        "get",
        "/coupons",
        "Codes per pool: free, assigned, redeemed",
        "coupons:read",
        None,
        (200, "CouponStock"),
        (401, 403),
    ),
    Operation(
        "redeemCoupon",
        "post",
        "/coupons/redeem",
        "Redeem a coupon code for an order",
        "coupons:redeem",
        "Redemption",
        (200, "Redeemed"),
        (400, 401, 403, 404, 409, 413, 422),
        (
            (404, "No such coupon code"),
            (409, "Redeemed by another order, or the order redeemed another code"),
            (422, "Invalid fields, or the code has expired"),
        ),
    ),
    Operation(
        "exportSubject",
        "get",
        "/subjects/{ref}",
        "Everything stored about one person (GDPR Art. 15, 20)",
        "privacy:read",
        None,
        (200, "SubjectExport"),
        (401, 403, 404, 422),
    ),
    Operation(
        "eraseSubject",
        "delete",
        "/subjects/{ref}",
        "Erase everything stored about one person (GDPR Art. 17)",
        "privacy:erase",
        None,
        (200, "Erasure"),
        (401, 403, 404, 422),
    ),
    Operation(
        "subjectConsent",
        "get",
        "/subjects/{ref}/consent",
        "One person's consent log, kept after an erasure",
        "privacy:read",
        None,
        (200, "ConsentLog"),
        (401, 403, 404, 422),
    ),
    Operation(
        "consentSummary",
        "get",
        "/consent/summary",
        "Consent answers per revision and method",
        "privacy:read",
        None,
        (200, "ConsentSummary"),
        (400, 401, 403),
        query=UNIX_RANGE,
    ),
    Operation(
        "reportCampaigns",
        "get",
        "/reports/campaigns",
        "Every campaign's results over a range of days",
        "reports:read",
        None,
        (200, "CampaignsReport"),
        (400, 401, 403),
        query=DAY_RANGE,
    ),
    Operation(
        "reportCampaign",
        "get",
        "/reports/campaigns/{campaign}",
        "One campaign's variants, statistics, daily series and verdict",
        "reports:read",
        None,
        (200, "CampaignReport"),
        (400, 401, 403, 404),
        ((404, "No such campaign in the rules or the results"),),
        query=(
            *DAY_RANGE,
            (
                "version",
                {"type": "integer", "minimum": 1},
                "The campaign version (default: the current one).",
            ),
        ),
    ),
    Operation(
        "reportLifecycle",
        "get",
        "/reports/lifecycle",
        "Visitors entering each lifecycle stage, the flows between stages, thresholds crossed",
        "reports:read",
        None,
        (200, "LifecycleReport"),
        (400, 401, 403),
        query=DAY_RANGE,
    ),
    Operation("openapi", "get", "/openapi.json", "This document", None, None, (200, ""), ()),
)


def _event_schema(kind: str) -> dict[str, Any]:
    fields = (*REF_FIELDS, *COMMON_FIELDS, *EVENT_FIELDS[kind])
    return {
        "type": "object",
        "properties": {"type": {"const": kind}, **{f.name: f.schema() for f in fields}},
        "required": ["type", *(f.name for f in fields if f.required)],
        "anyOf": [{"required": [f.name]} for f in REF_FIELDS],
        "additionalProperties": False,
    }


def _schemas() -> dict[str, Any]:

    event_refs = [{"$ref": f"#/components/schemas/{_title(k)}Event"} for k in EVENT_FIELDS]
    flat_value = {"type": ["string", "number", "boolean", "null"]}
    return {
        **{f"{_title(k)}Event": _event_schema(k) for k in EVENT_FIELDS},
        "Event": {"oneOf": event_refs},
        "EventPush": {
            "oneOf": [
                {"$ref": "#/components/schemas/Event"},
                {
                    "type": "object",
                    "required": ["events"],
                    "additionalProperties": False,
                    "properties": {
                        "events": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": MAX_BATCH,
                            "items": {"$ref": "#/components/schemas/Event"},
                        }
                    },
                },
            ]
        },
        "PushResult": {
            "type": "object",
            "required": ["stored", "duplicates"],
            "properties": {
                "stored": {"type": "integer", "description": "Events stored."},
                "duplicates": {
                    "type": "array",
                    "items": {"type": "integer"},
                    "description": "Indexes of purchases whose order_id was known.",
                },
            },
        },
        "Attributes": {
            "type": "object",
            "minProperties": 1,
            "maxProperties": MAX_ATTRIBUTES,
            "propertyNames": {"pattern": NAME.pattern},
            "additionalProperties": flat_value,
        },
        "AttributesResult": {
            "type": "object",
            "properties": {"attributes": {"type": "object", "additionalProperties": flat_value}},
        },
        "Visitor": {
            "type": "object",
            "required": ["id", "identified", "profile"],
            "properties": {name: {"description": text} for name, text in VISITOR_FIELDS.items()},
        },
        **coupon_schemas(),
        **_privacy_schemas(),
        **reportschemas.schemas(),
        "Problem": {
            "type": "object",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "index": {"type": "integer"},
                            "field": {"type": "string"},
                            "message": {"type": "string"},
                        },
                    },
                },
            },
        },
    }


VISITOR_FIELDS = {
    "id": "The visitor id.",
    "identified": "Whether an e-mail or customer id is known.",
    "identifiers": "Kinds and dates of the identifiers; the e-mail itself with data_depth full.",
    "first_name": "With data_depth standard or full.",
    "score": "The lead score now, decay applied (docs/profiles.md).",
    "stage": "The lifecycle stage now.",
    "stage_history": "Every stage change: at, before, after, reason.",
    "consent": "The current consent: revision and granted categories.",
    "profile": "Visits, page views, touches, interests, attributes.",
    "campaigns": "Popup history per campaign.",
    "events": "The event log, oldest first.",
    "orders": "Purchases pushed through this API.",
    "consent_log": "Every consent answer of this visitor id.",
}


def _title(kind: str) -> str:
    return "".join(part.title() for part in kind.split("_"))


_REASONS = {
    400: "Malformed request",
    401: "Missing or unknown API key",
    403: "The key lacks the scope",
    404: "No such visitor (under /visitors: with a profile; under /subjects: with anything stored)",
    409: "Conflict",
    413: "Body too large",
    422: "Invalid fields; nothing was stored",
    503: "The database cannot be written (a full disk, say): nothing was stored; try again"
    " after Retry-After seconds",
}
CSV_HELP = "One code a line: the first column, or the column headed code."


def openapi(base: str = "/tp/v1/api") -> dict[str, Any]:
    """The OpenAPI 3.1 document of the server API under ``base``."""
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        entry: dict[str, Any] = {"operationId": op.id, "summary": op.summary}
        parameters = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
                "description": PATH_PARAMETERS[name],
            }
            for name in PATH_PARAMETERS
            if "{" + name + "}" in op.path
        ]
        parameters += [
            {
                "name": name,
                "in": "query",
                "required": False,
                "schema": schema,
                "description": description,
            }
            for name, schema, description in op.query
        ]
        if parameters:
            entry["parameters"] = parameters
        if op.scope:
            entry["security"] = [{"bearer": [op.scope]}]
            entry["description"] = f"Needs a key with the scope `{op.scope}`."
        else:
            entry["security"] = []
        if op.body:
            content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{op.body}"}}}
            if op.csv:
                content["text/csv"] = {"schema": {"type": "string", "description": CSV_HELP}}
            entry["requestBody"] = {"required": True, "content": content}
        status, schema = op.ok
        ok: dict[str, Any] = {"description": "Success"}
        if schema:
            ok["content"] = {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}
            }
        elif status != 204:
            ok["content"] = {"application/json": {"schema": {"type": "object"}}}
        responses = {str(status): ok}
        reasons = {**_REASONS, **dict(op.reasons)}
        # Whatever writes may meet a database that cannot be written (issue 15).
        for code in (*op.errors, 503) if op.method != "get" else op.errors:
            responses[str(code)] = {
                "description": reasons[code],
                "content": {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                },
            }
        entry["responses"] = responses
        paths.setdefault(base + op.path, {})[op.method] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Touchpoint server API",
            "version": __version__,
            "description": "Push events and attributes, read profiles, load and redeem"
            " coupon codes; data subject requests and proof of consent."
            " See docs/api.md.",
        },
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": f"Scopes: {', '.join(SCOPES)}",
                }
            },
        },
    }


PATH_PARAMETERS = {
    "ref": "A visitor id, email:<address> or customer:<id> (percent-encoded).",
    "name": "An attribute name.",
    "pool": "A pool of rules/coupons.yaml.",
    "campaign": "A campaign id.",
}


def _privacy_schemas() -> dict[str, Any]:
    """The data subject requests' answers (docs/privacy.md#data-subject-requests)."""
    counts = {"type": "object", "additionalProperties": {"type": "integer"}}
    answers = {
        name: {"type": "integer", "description": text}
        for name, text in (
            ("accepted", "Answers granting every category."),
            ("rejected", "Answers granting none."),
            ("customised", "Answers granting some."),
        )
    }
    return {
        "SubjectExport": {
            "type": "object",
            "required": ["visitor_ids", "tables"],
            "properties": {
                "exported_at": {"type": "integer"},
                "visitor_ids": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "The person's visitor ids, merged ones included.",
                },
                "tables": {
                    "type": "object",
                    "description": "Every row naming them, per table "
                    "(docs/privacy.md#what-is-stored-tables-and-columns).",
                    "additionalProperties": {"type": "array", "items": {"type": "object"}},
                },
            },
        },
        "Erasure": {
            "type": "object",
            "required": ["erasure", "at", "deleted", "pseudonymised", "anonymised"],
            "properties": {
                "erasure": {"type": "integer", "description": "The id of the erasure record."},
                "at": {"type": "integer"},
                "deleted": {**counts, "description": "Rows deleted, per table."},
                "pseudonymised": {
                    **counts,
                    "description": "Consent log rows kept as proof, their "
                    "visitor id replaced by a keyed pseudonym.",
                },
                "anonymised": {
                    **counts,
                    "description": "Rows kept without the visitor id: coupon "
                    "codes handed out, coupon redemptions.",
                },
            },
        },
        "ConsentLog": {
            "type": "object",
            "required": ["entries", "erasures"],
            "properties": {
                "entries": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            name: {"description": text}
                            for name, text in CONSENT_ENTRY_FIELDS.items()
                        },
                    },
                },
                "erasures": {
                    "type": "array",
                    "description": "When the person was erased (a "
                    "visitor id reference only): at, via.",
                    "items": {"type": "object"},
                },
            },
        },
        "ConsentSummary": {
            "type": "object",
            "required": ["revisions"],
            "properties": {
                "revisions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "revision": {"type": "integer"},
                            **answers,
                            "granted": {**counts, "description": "Answers granting each category."},
                            "methods": {
                                "type": "object",
                                "description": "The same counts per method.",
                                "additionalProperties": {"type": "object", "properties": answers},
                            },
                        },
                    },
                },
            },
        },
    }


CONSENT_ENTRY_FIELDS = {
    "id": "The entry's number in the log.",
    "visitor_id": "The visitor id, or erased:<pseudonym> after an erasure.",
    "at": "When the answer was given, Unix seconds.",
    "revision": "The consent text's revision (setting consent_revision).",
    "granted": "Categories granted.",
    "denied": "Categories denied.",
    "method": "How: banner-accept-all, banner-reject-all, banner-custom, api, tcf, identify,"
    " reset.",
}
