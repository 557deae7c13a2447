"""data_depth: each level's list of tables and columns (store/datadepth.py) is the whole
schema, is what docs/privacy.md shows, and is all a visit at that level leaves in the database."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from touchpoint import store
from touchpoint.app import create_app
from touchpoint.store import datadepth
from touchpoint.store.records import Profile, Touch

from ..privacy.test_subjects import SITE, everything, key, make_settings, visit

DOCS = Path(__file__).parent.parent.parent / "docs"
# Tables of features that may not be in this schema yet; every other table listed must be.
LATER = {"coupon_codes", "coupon_reveals", "coupon_redemptions"}


def schema(path: Path) -> dict[str, list[str]]:
    conn = sqlite3.connect(path)
    try:
        tables = [
            t
            for (t,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_%' ESCAPE '\\'"
            )
        ]
        return {
            t: [c for (c,) in conn.execute("SELECT name FROM pragma_table_xinfo(?)", (t,))]
            for t in tables
        }
    finally:
        conn.close()


def test_every_table_and_column_has_a_level(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    store.migrate(path)
    tables = schema(path)
    for table, columns in tables.items():
        assert table in datadepth.WRITTEN, f"{table}: give its columns a data_depth level"
        listed = [c for c in datadepth.WRITTEN[table] if not c.startswith("data.")]
        assert sorted(listed) == sorted(c for c in columns if c != "data" or table != "visitors")
    assert set(datadepth.WRITTEN) - set(tables) <= LATER
    # The JSON part of the profile, key by key.
    full = Profile(
        first_touch=Touch("search", "x"),
        last_touch=Touch("search", "x"),
        attributes={"a": 1},
        interests={"i": 1},
        last_category="c",
        last_product="p",
        first_name="f",
        score_at=1,
        purchases=1,
        last_purchase_at=1,
        stage_since=1,
        scoring={"r": 1},
    )
    keys = {c.removeprefix("data.") for c in datadepth.WRITTEN["visitors"] if c.startswith("data.")}
    assert keys == set(full.data_json())


def test_the_privacy_page_shows_the_table() -> None:
    assert datadepth.markdown() in (DOCS / "privacy.md").read_text()


def test_levels_only_add() -> None:
    minimal, standard, full = (datadepth.stored(level) for level in datadepth.LEVELS)
    for smaller, larger in ((minimal, standard), (standard, full)):
        assert all(columns <= larger[table] for table, columns in smaller.items())
    assert "events" not in minimal and "stage_history" not in minimal
    assert "value" not in standard["identities"] and "value" in full["identities"]
    with pytest.raises(ValueError):
        datadepth.stored("everything")


def filled(value: Any) -> bool:
    return value not in (None, "", "[]", "{}")


def stored_columns(path: Path) -> set[tuple[str, str]]:
    """Every (table, column) holding something, the profile's JSON key by key."""
    found = set()
    conn = sqlite3.connect(path)
    try:
        for table in schema(path):
            cursor = conn.execute(f'SELECT * FROM "{table}"')
            names = [d[0] for d in cursor.description]
            for row in cursor:
                for name, value in zip(names, row, strict=True):
                    if table == "visitors" and name == "data":
                        found |= {(table, f"data.{k}") for k in json.loads(value)}
                    elif filled(value):
                        found.add((table, name))
    finally:
        conn.close()
    return found


@pytest.mark.parametrize("level", datadepth.LEVELS)
def test_a_visit_stores_nothing_beyond_its_level(
    tmp_path: Path, rules_dir: Path, level: str
) -> None:
    (rules_dir / "site.yaml").write_text(SITE)
    settings = make_settings(tmp_path, rules_dir, data_depth=level)
    app = create_app(settings)
    with TestClient(app) as client:
        auth = key(settings, "events:write", name="shop")
        ada = visit(client, auth, email="ada@example.com", customer_id="C-1", first_name="Ada")
        # Another browser with the measurement consent only.
        other = TestClient(app)
        other.post("/tp/v1/consent", json={"granted": ["measurement"]})
        other.post("/tp/v1/decide", json={"page": {"path": "/demo/"}})
        other.post("/tp/v1/events", json={"events": [{"type": "dwell", "value": 5}]})
        client.post(
            "/tp/v1/consent", json={"granted": ["measurement", "personalisation", "marketing"]}
        )
    allowed = {(t, c) for t, columns in datadepth.stored(level).items() for c in columns}
    found = stored_columns(settings.database_url)
    assert found - allowed == set()
    text = json.dumps(everything(settings.database_url))
    rows = everything(settings.database_url)
    if level == "minimal":
        assert rows["events"] == [] and rows["stage_history"] == []
        assert ("visitors", "data.first_name") not in found
        assert rows["campaign_state"] != [] and rows["orders"] != []  # suppression, order ids
    else:
        assert ("events", "props") in found and ("stage_history", "reason") in found
        assert ("visitors", "data.first_name") in found
        assert ("orders", "items") in found
    if level == "full":
        assert ("identities", "value") in found and "ada@example.com" in text
    else:
        assert "ada@example.com" not in text
    assert ("visitors", "score") in found and ("visitors", "data.interests") in found
    assert ada in text
