"""Docs are part of done: every setting and every rules key is documented."""

from __future__ import annotations

from pathlib import Path

from touchpoint.audience.fields import FIELDS
from touchpoint.rules import profilefiles
from touchpoint.rules.ruleset import KEYS, TRIGGERS
from touchpoint.settings import Settings

DOCS = Path(__file__).parent.parent / "docs"


def test_every_setting_is_documented() -> None:
    text = (DOCS / "operations.md").read_text()
    for field in Settings.fields():
        flag = "--" + field.name.replace("_", "-")
        row = f"| `{field.name}` | `{flag}` | `TOUCHPOINT_{field.name.upper()}` |"
        assert row in text, f"setting {field.name} is missing from docs/operations.md"
        assert field.metadata["help"] in text


def test_every_rules_key_is_documented() -> None:
    text = (DOCS / "rules.md").read_text()
    for section, keys in KEYS.items():
        for key in keys:
            documented = f"`{key}" in text or f".{key}`" in text
            assert documented, f"rules key {section}.{key} is missing from docs/rules.md"


def test_every_condition_field_and_trigger_is_documented() -> None:
    text = (DOCS / "rules.md").read_text()
    # The first cells of table rows: where the reference names fields and triggers.
    first_cells = "".join(
        line.split("|")[1] for line in text.splitlines() if line.startswith("| `")
    )
    for name, spec in FIELDS.items():
        if name == "campaign":
            shown = "`campaign.ID.seen`"
        elif spec.dynamic:
            shown = f"`{name}.NAME`"
        else:
            shown = f"`{name}`"
        assert shown in first_cells, f"condition field {name} is missing from docs/rules.md"
    for trigger in TRIGGERS:
        assert f" `{trigger}" in first_cells, f"trigger {trigger} is missing from docs/rules.md"


def test_every_scoring_and_lifecycle_key_is_documented() -> None:
    text = (DOCS / "profiles.md").read_text()
    first_cells = "".join(
        line.split("|")[1] for line in text.splitlines() if line.startswith("| `")
    )
    for section, keys in profilefiles.KEYS.items():
        for key in keys:
            assert f"`{key}`" in first_cells or f".{key}`" in first_cells, (
                f"{section}.{key} is missing from docs/profiles.md"
            )
