"""``touchpoint demo-traffic`` against a real demo server: synthetic visitors through the real
routes, counted in the reports like real ones; a server without the demo shop is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from touchpoint.api import keys as apikeys
from touchpoint.cli import main

from ..conftest import LiveServer, live_flags


@pytest.mark.slow
def test_synthetic_visitors_fill_the_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "live-data"
    data.mkdir()
    token = apikeys.ApiKeys(data / "api_keys.json").create(
        "demo", ["events:write", "coupons:redeem"], now=1
    )
    server = LiveServer(tmp_path, "--rate-limit-per-minute=1000000")
    try:
        played = ["demo-traffic", "--url", server.url, "--visitors", "150", "--seed", "7"]
        assert main([*played, "--api-key", token, "--json"]) == 0
    finally:
        server.stop()
    counts = json.loads(capsys.readouterr().out)
    assert counts["visitors"] == 150 and counts["popups seen"] > 0 and counts["purchases"] > 0
    assert main(["report", *live_flags(data), "--json"]) == 0
    overview = json.loads(capsys.readouterr().out)["campaigns"]
    assert sum(c["exposures"] for c in overview) >= counts["popups seen"]
    assert sum(c["unique_converted"] for c in overview) > 0
    # The demo experiment: both notes of the cart shown, as filled slots.
    assert main(["report", "campaign", "cart-note", *live_flags(data), "--json"]) == 0
    variants = json.loads(capsys.readouterr().out)["variants"]
    assert [v["variant"] for v in variants] == ["free-shipping", "free-returns"]
    assert all(v["unique_exposed"] > 10 for v in variants)
    assert sum(v["unique_exposed"] for v in variants) == counts["slots filled"] - hero(overview)


def hero(overview: list[dict[str, int]]) -> int:
    """The home page's slot, filled for returning visitors only."""
    return next(c["exposures"] for c in overview if c["campaign"] == "hero-by-interest")


def test_a_server_without_the_demo_shop_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo-traffic", "--url", "http://127.0.0.1:9", "--visitors", "1"]) == 1
    assert capsys.readouterr().err.startswith("touchpoint: http://127.0.0.1:9: ")
