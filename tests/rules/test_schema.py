"""The published JSON Schemas: up to date, and they agree with the loader on real files."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from touchpoint.rules.schema import SCHEMAS

ROOT = Path(__file__).parent.parent.parent
RULES = ROOT / "rules"
POPUP = "campaign: x\ntrigger: load\nvariants: [{id: a, template: t.html}]\n"


def validator(which: str) -> jsonschema.Draft202012Validator:
    schema = SCHEMAS[which]()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def load(text: str) -> object:
    # Editors see YAML dates as strings; so does this test.
    return json.loads(json.dumps(yaml.safe_load(text), default=str))


@pytest.mark.parametrize("which", sorted(SCHEMAS))
def test_published_schemas_are_up_to_date(which: str) -> None:
    published = json.loads((ROOT / "docs" / "schema" / f"{which}.schema.json").read_text())
    assert published == SCHEMAS[which](), "run: touchpoint schema {which} > docs/schema/..."


def test_every_example_rules_file_validates() -> None:
    files = sorted(RULES.glob("*.yaml"))
    assert files
    for path in files:
        which = (
            path.stem if path.stem in ("site", "scoring", "lifecycle", "coupons") else "campaign"
        )
        errors = list(validator(which).iter_errors(load(path.read_text())))
        assert not errors, f"{path.name}: {[e.message for e in errors]}"


@pytest.mark.parametrize(
    "text",
    [
        POPUP + "audiance: {}\n",
        POPUP + "frequency: {after_close: 7 days}\n",
        "campaign: x\ntrigger: {hover: 1}\nvariants: [{id: a, template: t.html}]\n",
        POPUP + "audience: {visitor.stage: leed}\n",
        POPUP + "audience: {visitor: {visits: x}}\n",
        POPUP + "audience: {pgae.path: /x}\n",
        POPUP + "audience: {country: [AT, UK]}\n",
        POPUP + "audience: {country: Austria}\n",
        "campaign: X\nvariants: [{id: a, template: t.html}]\n",
        "campaign: x\nvariants: [{id: a, template: t.html}]\n",  # a popup without a trigger
        "campaign: x\ntrigger: load\nvariants: [{id: a}]\n",  # nothing to show
        "campaign: x\nkind: content\nvariants: [{id: a, template: t.html}]\n",  # no slot
    ],
)
def test_the_schema_flags_mistakes(text: str) -> None:
    assert list(validator("campaign").iter_errors(load(text)))


def test_the_schema_accepts_every_condition_form() -> None:
    text = """
campaign: x
trigger: {click: ".buy"}
audience:
  page: {path: [/a/*], query: {ref: x}}
  visitor.attributes.late_payer: true
  context: {cart_value: {gt: 50}}
  campaign: {other: {converted: {within: 7d}}}
  campaign.other.seen: false
  any: [{utm.source: news*}, {referrer.channel: [search, email]}]
  not: {device.type: bot}
  language: [de, en-GB]
  country: [AT, ch, "NO"]
schedule: {from: 2026-12-01, until: "2026-12-24 18:00", weekdays: [sat], hours: "09:00-18:00"}
variants: [{id: a, template: t.html}, {id: h, weight: 1, control: true}]
"""
    assert not [e.message for e in validator("campaign").iter_errors(load(text))]


@pytest.mark.parametrize(
    "text",
    [
        "pools: {w: {codes: generate, pattern: W-XXXXXX}}\n",  # not a kind
        "pools: {w: {codes: generated}}\n",  # no pattern
        "pools: {w: {codes: generated, pattern: W-XXXX}}\n",  # too few random places
        "pools: {w: {codes: static}}\n",  # no code
        "pools: {w: {codes: static, code: A B}}\n",  # a space
        "pools: {w: {codes: static, code: FREE, low_stock: 5}}\n",  # never runs out
        "pools: {w: {codes: imported, limit: 5}}\n",  # a limit is for generated pools
        "pools: {w: {codes: imported, pattern: W-XXXXXX}}\n",
        "pools: {W: {codes: imported}}\n",  # pool names are lowercase
        "pools: {w: {codes: imported, valid: {weeks: 2}}}\n",
        "pools: {w: {codes: imported}}\nexclude: {visitor.stag: lead}\n",
        "exclude: {}\n",  # no pools
    ],
)
def test_the_coupons_schema_flags_mistakes(text: str) -> None:
    assert list(validator("coupons").iter_errors(load(text)))


def test_the_coupons_schema_accepts_every_kind_of_pool() -> None:
    text = """
exclude: {any: [{visitor.attributes.late_payer: true}, {visitor.stage: inactive}]}
pools:
  welcome: {codes: generated, pattern: WELCOME-XXXX-XXXX, limit: 5000, low_stock: 50}
  spring: {codes: imported, low_stock: 100, valid: {until: 2027-03-31, days: 30}}
  freeship: {codes: static, code: FREESHIP, valid: {until: "2027-03-31 18:00"}}
"""
    assert not [e.message for e in validator("coupons").iter_errors(load(text))]
