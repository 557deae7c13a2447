"""Preview links: ``touchpoint preview`` makes one, decide shows the campaign it names whatever
the audience says, counts nothing and explains the real decision; bad links are clear 4xx."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient
from touchpoint.cli import main
from touchpoint.decide.preview import Previews
from touchpoint.settings import Settings

HOME = {"page": {"path": "/"}, "slots": ["hero"]}  # outside the campaign's product pages


def link(settings: Settings, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    argv = [
        "preview",
        "first-order-coupon",
        "--rules-dir",
        settings.rules_dir,
        "--data-dir",
        settings.data_dir,
        *extra,
    ]
    assert main(argv) == 0
    printed = capsys.readouterr()
    assert "works until" in printed.err
    return printed.out.strip()


def test_a_preview_link_shows_the_campaign_and_records_nothing(
    client: TestClient, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    url = link(settings, capsys, "--url", "https://shop.example/?ref=mail#top")
    assert url.startswith("https://shop.example/?ref=mail&tp_preview=") and url.endswith("#top")
    token = parse_qs(urlsplit(url).query)["tp_preview"][0]
    client.post("/tp/v1/consent", json={"granted": ["personalisation", "marketing"]})
    answer = client.post("/tp/v1/decide", json={**HOME, "preview": token}).json()
    assert [(p["campaign"], p["variant"]) for p in answer["popups"]] == [
        ("first-order-coupon", "ten-percent")
    ]
    assert "<h2" in answer["popups"][0]["html"]
    assert answer["counted"] is False
    assert answer["preview"]["campaign"] == "first-order-coupon"
    # The trace tells the marketer why a visitor on this page would not get it.
    [line] = answer["preview"]["trace"]
    assert line.startswith("first-order-coupon (first-order-coupon.yaml:")
    assert "not chosen" in line and "page.path" in line
    # Without the link the page shows nothing, and no page view was counted by the preview.
    assert client.post("/tp/v1/decide", json=HOME).json()["popups"] == []


@pytest.mark.parametrize(
    ("token", "status", "message"),
    [
        ("forged.token", 400, "preview link is invalid"),
        (12, 400, "preview must be a preview token"),
        ("x" * 600, 400, "preview must be a preview token"),
    ],
)
def test_a_bad_preview_link_is_a_clear_error(
    client: TestClient, token: object, status: int, message: str
) -> None:
    response = client.post("/tp/v1/decide", json={**HOME, "preview": token})
    assert response.status_code == status
    assert message in response.json()["error"]


def test_expired_links_and_vanished_campaigns_are_refused(
    client: TestClient, settings: Settings, rules_dir: Path
) -> None:
    previews = Previews(settings.resolve_secret_key())
    now = int(time.time())
    expired = previews.token("first-order-coupon", None, expires=now - 1)
    response = client.post("/tp/v1/decide", json={**HOME, "preview": expired})
    assert (response.status_code, response.json()["error"]) == (
        400,
        "preview link has expired; create a new one with touchpoint preview",
    )
    gone = previews.token("spring-sale", None, expires=now + 60)
    response = client.post("/tp/v1/decide", json={**HOME, "preview": gone})
    assert response.status_code == 422
    assert "no campaign 'spring-sale'" in response.json()["error"]
    # A token signed with another key (another installation) is not accepted.
    other = Previews("another-installation-key-" * 2).token(
        "first-order-coupon", None, expires=now + 60
    )
    assert client.post("/tp/v1/decide", json={**HOME, "preview": other}).status_code == 400


def test_preview_names_unknown_campaigns_and_variants(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--rules-dir", settings.rules_dir, "--data-dir", settings.data_dir]
    assert main(["preview", "first-order-coupon", "--variant", "nope", *base]) == 1
    assert "first-order-coupon has no variant 'nope'" in capsys.readouterr().err
    assert main(["preview", "spring-sale", *base]) == 1
    assert "no campaign 'spring-sale'" in capsys.readouterr().err
    assert main(["preview", "first-order-coupon", "--ttl", "soon", *base]) == 1
    assert "--ttl" in capsys.readouterr().err
