"""The OpenAPI schemas of the reports (api/reports.py, results/report.py; docs/reports.md
explains every figure)."""

from __future__ import annotations

from typing import Any

from ..store.rollups import CAMPAIGN_COUNTS

_NUMBER = {"type": ["number", "null"]}
_INTERVAL = {
    "type": ["array", "null"],
    "items": {"type": "number"},
    "minItems": 2,
    "maxItems": 2,
}
_RANGE = {
    "type": "object",
    "required": ["since", "until"],
    "properties": {
        "since": {"type": "string", "format": "date"},
        "until": {"type": "string", "format": "date"},
    },
}
_COUNTS = {name: {"type": "integer", "minimum": 0} for name in CAMPAIGN_COUNTS}
_MONEY = {
    "type": "object",
    "description": "Per currency (ISO 4217): redemptions and their value.",
    "additionalProperties": {
        "type": "object",
        "required": ["redemptions", "revenue"],
        "properties": {
            "redemptions": {"type": "integer"},
            "revenue": {"type": "number"},
            "revenue_squares": {"type": "number"},
            "per_exposed_visitor": _NUMBER,
        },
    },
}
_COMPARISON = {
    "type": "object",
    "required": ["uplift", "uplift_interval", "p_value", "chance_to_beat_control"],
    "properties": {
        "uplift": {**_NUMBER, "description": "Relative: 0.12 is +12% against the control."},
        "uplift_interval": {**_INTERVAL, "description": "95% interval of the uplift."},
        "p_value": {**_NUMBER, "description": "Two-sided, Welch's t-test."},
        "chance_to_beat_control": {**_NUMBER, "description": "Bayesian, flat prior."},
    },
}
_VERDICT = {
    "type": "object",
    "required": ["call", "text"],
    "properties": {
        "call": {
            "enum": [
                "winner",
                "loser",
                "no_difference",
                "too_small",
                "sample_ratio_mismatch",
                "no_experiment",
            ]
        },
        "text": {"type": "string"},
        "control": {"type": "string", "description": "The variant the others are held to."},
        "p_value": {"type": "number", "description": "The sample-ratio check's p-value."},
        "winners": {"type": "array", "items": {"type": "string"}},
        "small": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Variants with too few visitors or conversions to call.",
        },
        "undecided": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Variants with enough data but no clear difference yet.",
        },
        "losers": {"type": "array", "items": {"type": "string"}},
    },
}


def schemas() -> dict[str, Any]:
    return {
        "CampaignsReport": {
            "type": "object",
            "required": ["range", "campaigns"],
            "properties": {
                "range": _RANGE,
                "campaigns": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["campaign", "in_rules", *CAMPAIGN_COUNTS, "conversion_rate"],
                        "properties": {
                            "campaign": {"type": "string"},
                            "kind": {"type": ["string", "null"]},
                            "in_rules": {"type": "boolean"},
                            **_COUNTS,
                            "conversion_rate": _NUMBER,
                            "revenue": _MONEY,
                            "verdict": _VERDICT,
                        },
                    },
                },
            },
        },
        "CampaignReport": {
            "type": "object",
            "required": ["campaign", "version", "range", "variants", "verdict", "daily"],
            "properties": {
                "campaign": {"type": "string"},
                "version": {"type": "integer"},
                "kind": {"type": ["string", "null"]},
                "range": _RANGE,
                "control": {"type": ["string", "null"]},
                "variants": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["variant", "control", *CAMPAIGN_COUNTS, "conversion_rate"],
                        "properties": {
                            "variant": {"type": "string"},
                            "control": {"type": "boolean"},
                            "weight": {"type": ["integer", "null"]},
                            **_COUNTS,
                            "conversion_rate": _NUMBER,
                            "conversion_interval": _INTERVAL,
                            "revenue": _MONEY,
                            "versus_control": {
                                "type": "object",
                                "properties": {
                                    "conversion": _COMPARISON,
                                    "revenue": {
                                        "type": "object",
                                        "additionalProperties": _COMPARISON,
                                    },
                                },
                            },
                        },
                    },
                },
                "sample_ratio": {
                    "type": ["object", "null"],
                    "properties": {"p_value": {"type": "number"}, "flagged": {"type": "boolean"}},
                },
                "verdict": _VERDICT,
                "daily": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["day", "variants"],
                        "properties": {
                            "day": {"type": "string", "format": "date"},
                            "variants": {
                                "type": "object",
                                "additionalProperties": {"type": "object", "properties": _COUNTS},
                            },
                        },
                    },
                },
            },
        },
        "LifecycleReport": {
            "type": "object",
            "required": ["range", "stages", "flows", "thresholds", "daily"],
            "properties": {
                "range": _RANGE,
                "stages": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "stage": {"type": "string"},
                            "entered": {"type": "integer"},
                        },
                    },
                },
                "flows": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "from": {"type": ["string", "null"]},
                            "to": {"type": "string"},
                            "visitors": {"type": "integer"},
                            "backwards": {"type": "boolean"},
                        },
                    },
                },
                "thresholds": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "threshold": {"type": "string"},
                            "crossings": {"type": "integer"},
                        },
                    },
                },
                "daily": {"type": "array", "items": {"type": "object"}},
            },
        },
    }
