"""Revealing coupon codes over HTTP: POST /tp/v1/coupons/reveal, the campaigns that hand out
codes (exclusions, consent, empty pools), and many concurrent reveals at a two-worker server."""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient
from touchpoint import store
from touchpoint.app import create_app
from touchpoint.cli import main
from touchpoint.coupons.pools import Pool
from touchpoint.coupons.stock import Stock
from touchpoint.settings import Settings

from ..conftest import ROOT, LiveServer, live_flags
from ..databases import opened

CONSENT_ALL = {"granted": ["measurement", "personalisation", "marketing"]}
PRODUCT = {"page": {"path": "/demo/products/trail-runner.html"}}
LIMITED = """\
campaign: limited-offer
kind: popup
trigger: {after_seconds: 1}
audience: {page.path: /offer/*}
variants:
  - {id: only, template: first-order-coupon.html, coupon: {pool: limited}}
"""
LIMITED_POOL = "  limited: {codes: imported, low_stock: 5}\n"  # appended under pools:


@pytest.fixture
def offer_rules(tmp_path: Path) -> Path:
    """The shipped rules plus a campaign handing out codes from a small imported pool."""
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    with (rules / "coupons.yaml").open("a") as pools:
        pools.write(LIMITED_POOL)
    (rules / "limited-offer.yaml").write_text(LIMITED)
    return rules


def import_codes(settings_args: list[str], codes: list[str], tmp_path: Path) -> None:
    csv = tmp_path / "codes.csv"
    csv.write_text("code\n" + "\n".join(codes) + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "touchpoint.cli",
            "coupons",
            "import",
            "limited",
            str(csv),
            *settings_args,
        ],
        check=True,
        capture_output=True,
        text=True,
    )


@pytest.fixture
def offers(tmp_path: Path, offer_rules: Path) -> TestClient:
    settings = Settings(data_dir=str(tmp_path / "data"), rules_dir=str(offer_rules))
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        client.app_state = client.app.state  # type: ignore[attr-defined]
        yield client


def visitor(client: TestClient | httpx.Client) -> None:
    assert client.post("/tp/v1/consent", json=CONSENT_ALL).status_code == 200


def reveal(client: TestClient | httpx.Client, campaign: str, variant: str) -> httpx.Response:
    return client.post("/tp/v1/coupons/reveal", json={"campaign": campaign, "variant": variant})


def race_for_limited(
    clients: list[httpx.Client], threads: int
) -> tuple[list[tuple[int, str | None]], tuple[int, str | None]]:
    """Every client reveals the limited offer at once: each one's status and code, and what the
    first client gets when it asks again."""

    def one(client: httpx.Client) -> tuple[int, str | None]:
        answer = reveal(client, "limited-offer", "only")
        return answer.status_code, answer.json().get("code")

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(one, clients))
    return results, one(clients[0])


def test_a_reveal_assigns_one_code_and_asking_again_returns_it(offers: TestClient) -> None:
    visitor(offers)
    first = reveal(offers, "first-order-coupon", "ten-percent")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["pool"] == "welcome" and body["code"].startswith("WELCOME-")
    assert body["expires_at"] > 0
    again = reveal(offers, "first-order-coupon", "ten-percent")
    assert again.json() == body


def test_deciding_burns_no_code(offers: TestClient, tmp_path: Path) -> None:
    visitor(offers)
    answer = offers.post("/tp/v1/decide", json=PRODUCT).json()
    assert "first-order-coupon" in [p["campaign"] for p in answer["popups"]]
    db = sqlite3.connect(tmp_path / "data" / "touchpoint.db")
    assert db.execute("SELECT count(*) FROM coupon_codes").fetchone()[0] == 0


def test_reveal_needs_the_marketing_consent(offers: TestClient) -> None:
    answer = reveal(offers, "first-order-coupon", "ten-percent")
    assert answer.status_code == 403
    assert "marketing consent" in answer.json()["error"]
    offers.post("/tp/v1/consent", json={"granted": ["personalisation"]})
    assert reveal(offers, "first-order-coupon", "ten-percent").status_code == 403


@pytest.mark.parametrize(
    ("campaign", "variant"),
    [("no-such-campaign", "x"), ("first-order-coupon", "nope"), ("newsletter-signup", "signup")],
)
def test_reveal_of_a_popup_without_a_coupon_is_404(
    offers: TestClient, campaign: str, variant: str
) -> None:
    visitor(offers)
    answer = reveal(offers, campaign, variant)
    assert answer.status_code == 404
    assert campaign in answer.json()["error"]


@pytest.mark.parametrize("body", [{}, {"campaign": 3, "variant": "x"}, {"campaign": "A B"}])
def test_reveal_refuses_malformed_requests(offers: TestClient, body: dict[str, object]) -> None:
    visitor(offers)
    assert offers.post("/tp/v1/coupons/reveal", json=body).status_code == 400


def test_excluded_visitors_neither_see_coupon_campaigns_nor_get_codes(
    offers: TestClient, tmp_path: Path
) -> None:
    visitor(offers)
    db = sqlite3.connect(tmp_path / "data" / "touchpoint.db")
    with db:
        db.execute(
            "UPDATE visitors SET data = json_set(data, '$.attributes.bad_review', json('true'))"
        )
    answer = offers.post("/tp/v1/decide", json=PRODUCT).json()
    assert "first-order-coupon" not in [p["campaign"] for p in answer["popups"]]
    refused = reveal(offers, "first-order-coupon", "ten-percent")
    assert refused.status_code == 409
    assert "excluded" in refused.json()["error"]


def test_an_empty_pool_ends_its_campaign(
    offers: TestClient, tmp_path: Path, offer_rules: Path
) -> None:
    page = {"page": {"path": "/offer/today"}}
    visitor(offers)
    assert offers.post("/tp/v1/decide", json=page).json()["popups"] == []  # no codes yet
    settings_args = ["--data-dir", str(tmp_path / "data"), "--rules-dir", str(offer_rules)]
    import_codes(settings_args, ["ONLY-ONE-CODE"], tmp_path)
    offers.app_state.tp.stock.refilled()  # type: ignore[attr-defined]
    popups = offers.post("/tp/v1/decide", json=page).json()["popups"]
    assert [p["campaign"] for p in popups] == ["limited-offer"]
    assert reveal(offers, "limited-offer", "only").json()["code"] == "ONLY-ONE-CODE"
    offers.cookies.clear()
    visitor(offers)  # somebody else: the pool is empty now
    gone = reveal(offers, "limited-offer", "only")
    assert gone.status_code == 410
    assert "empty" in gone.json()["error"]
    assert offers.post("/tp/v1/decide", json=page).json()["popups"] == []


def test_an_emptying_is_logged_once_not_per_refused_visitor(
    offers: TestClient, tmp_path: Path, offer_rules: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings_args = ["--data-dir", str(tmp_path / "data"), "--rules-dir", str(offer_rules)]
    stock = offers.app_state.tp.stock  # type: ignore[attr-defined]

    def empty_pool_warnings(code: str) -> int:
        import_codes(settings_args, [code], tmp_path)
        stock.refilled()
        for _ in range(4):  # the first visitor gets the code, three are refused
            offers.cookies.clear()
            visitor(offers)
            reveal(offers, "limited-offer", "only")
        return sum("is empty" in r.getMessage() for r in caplog.records)

    with caplog.at_level(logging.WARNING, logger="touchpoint.coupons"):
        assert empty_pool_warnings("FIRST-BATCH") == 1
        assert empty_pool_warnings("REFILL") == 2  # emptied again after a refill: news again


def test_concurrent_reveals_at_two_workers_never_share_a_code(
    tmp_path: Path, offer_rules: Path
) -> None:
    """Many visitors reveal at once from a small pool, against two server processes: every
    code goes to at most one visitor, the pool is used up exactly, the rest get 410."""
    data = tmp_path / "live-data"
    data.mkdir()
    codes = [f"LIMITED-{i:04d}" for i in range(120)]
    import_codes([*live_flags(data), "--rules-dir", str(offer_rules)], codes, tmp_path)
    server = LiveServer(
        tmp_path, "--workers=2", "--rules-dir", str(offer_rules), "--rate-limit-per-minute=100000"
    )
    try:
        clients = [httpx.Client(base_url=server.url) for _ in range(160)]
        for client in clients:
            visitor(client)
        results, again = race_for_limited(clients, 32)
    finally:
        for client in clients:
            client.close()
        server.stop()
    given = [code for status, code in results if status == 200]
    assert Counter(status for status, _ in results) == {200: 120, 410: 40}
    assert sorted(given) == codes  # each code once
    assert again == results[0]  # idempotent for the same visitor
    with opened(server.database) as db:
        rows = db.execute("SELECT code, visitor_id FROM coupon_codes").fetchall()
    assert len({visitor for _, visitor in rows}) == 120 == len(rows)
    assert all(visitor for _, visitor in rows)


def test_simulate_says_why_a_coupon_campaign_is_not_shown(
    tmp_path: Path, offer_rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    common = [
        "simulate",
        "/offer/today",
        "--rules-dir",
        str(offer_rules),
        "--data-dir",
        str(data),
        "--json",
    ]

    def reason(*extra: str) -> str | None:
        assert main([*common, *extra]) == 0
        rows = json.loads(capsys.readouterr().out)["campaigns"]
        return next(r["reason"] for r in rows if r["campaign"] == "limited-offer")

    assert reason() == "coupons need the marketing consent (one code per visitor)"
    assert reason("--profile", "{}") == "coupon pool 'limited' is empty"
    late = reason("--profile", '{"attributes": {"late_payer": true}}')
    assert late is not None and late.startswith("coupons.yaml exclude:")
    data.mkdir()  # the server's data folder, before its first start
    import_codes(["--data-dir", str(data), "--rules-dir", str(offer_rules)], ["ONE-CODE"], tmp_path)
    assert reason("--profile", "{}") is None


def test_pools_past_their_end_or_limit_count_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    store.migrate(path)
    reader = store.Reader(path)
    pools = {
        "ended": Pool("ended", "static", code="OLD-CODE", valid_until=1),
        "shared": Pool("shared", "static", code="SHARED-CODE"),
        "capped": Pool("capped", "generated", pattern="CAP-XXXXXX", limit=5),
        "stocked": Pool("stocked", "imported"),
    }
    try:
        assert Stock().empty(pools, reader) == {"ended", "stocked"}
    finally:
        reader.close()


def test_a_shared_code_needs_no_consent_and_records_nothing(
    offers: TestClient, tmp_path: Path
) -> None:
    cart = {"page": {"path": "/demo/cart.html"}, "context": {"page_type": "cart", "cart_value": 80}}
    popups = offers.post("/tp/v1/decide", json=cart).json()["popups"]
    assert "cart-coupon" in [p["campaign"] for p in popups]
    answer = reveal(offers, "cart-coupon", "five-euro-off")
    assert answer.status_code == 200
    assert answer.json()["code"] == "CART5-OFF"
    assert "tp_vid" not in offers.cookies
    db = sqlite3.connect(tmp_path / "data" / "touchpoint.db")
    assert db.execute("SELECT count(*) FROM coupon_reveals").fetchone() == (0,)
    visitor(offers)  # with consent, who was shown the shared code is recorded (attribution)
    assert reveal(offers, "cart-coupon", "five-euro-off").json()["code"] == "CART5-OFF"
    assert db.execute("SELECT campaign FROM coupon_reveals").fetchall() == [("cart-coupon",)]
