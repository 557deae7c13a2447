"""Client addresses: truncated or dropped before anything is derived from them; neither the
address nor the user agent is ever stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.testclient import TestClient
from touchpoint.app import create_app
from touchpoint.errors import ConfigError
from touchpoint.privacy.clientip import truncate_ip, usable_ip
from touchpoint.settings import Settings
from touchpoint.store import catalog
from touchpoint.web.limits import RateLimiter

from ..audience.test_geolocation import _settings, _shown
from ..conftest import PRODUCT
from ..consent.test_consent import ALL
from ..databases import opened


@pytest.mark.parametrize(
    ("ip", "truncated"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("203.0.113.0", "203.0.113.0"),
        ("10.255.255.255", "10.255.255.0"),
        ("2001:db8:1234:5678:9abc::1", "2001:db8:1234::"),
        ("2001:DB8:ABCD:FFFF:FFFF:FFFF:FFFF:FFFF", "2001:db8:abcd::"),
        ("::1", "::"),
        ("fe80::1%eth0", "fe80::"),  # a zone is part of no network
        ("::ffff:203.0.113.77", "203.0.113.0"),  # IPv4 as a dual-stack socket reports it
        (" 198.51.100.9 ", "198.51.100.0"),
    ],
)
def test_truncate_ip(ip: str, truncated: str) -> None:
    assert truncate_ip(ip) == truncated


@pytest.mark.parametrize(
    "ip", ["", "testclient", "203.0.113", "256.1.1.1", "203.0.113.7:443", "[::1]", "10.0.0.0/8"]
)
def test_what_is_not_an_address_gives_nothing(ip: str) -> None:
    assert truncate_ip(ip) is None


def test_ip_handling() -> None:
    assert usable_ip("203.0.113.77", handling="truncate") == "203.0.113.0"
    assert usable_ip("203.0.113.77", handling="drop") is None
    assert usable_ip(None, handling="truncate") is None
    with pytest.raises(ValueError, match="ip_handling must be one of truncate, drop"):
        usable_ip("203.0.113.77", handling="keep")
    with pytest.raises(ConfigError, match="ip_handling must be one of truncate, drop"):
        Settings.load({"ip_handling": "full"}, environ={})


@pytest.mark.parametrize(("handling", "seen"), [("truncate", "2001:db8:1234::"), ("drop", None)])
def test_the_app_hands_out_the_client_address_as_the_setting_says(
    settings: Settings, handling: str, seen: str | None
) -> None:
    app = create_app(Settings.load({**vars_of(settings), "ip_handling": handling}, environ={}))
    request = Request({"type": "http", "client": ("2001:db8:1234:5678::9", 443), "headers": []})
    assert app.state.tp.client_ip(request) == seen


def vars_of(settings: Settings) -> dict[str, object]:
    return {
        "data_dir": settings.data_dir,
        "database": settings.database,
        "rules_dir": settings.rules_dir,
    }


def test_no_address_or_user_agent_is_stored_or_logged(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    address = "203.0.113.77"
    agent = "Mozilla/5.0 (X11; Linux x86_64; rv:999.0) Gecko/20100101 Firefox/999.0 Peculiar/4.2"
    headers = {"User-Agent": agent, "X-Forwarded-For": "198.51.100.23"}
    with TestClient(create_app(settings), client=(address, 4321), headers=headers) as client:
        client.post("/tp/v1/consent", json={"granted": ALL, "method": "banner-accept-all"})
        client.post("/tp/v1/decide", json={"page": {"path": PRODUCT, "title": "Trail runner"}})
        events = [
            {"type": "impression", "campaign": "first-order-coupon"},
            {"type": "dwell", "value": 12},
            {"type": "custom", "name": "size_chosen", "props": {"size": "42"}},
            {"type": "form_submit", "name": "newsletter"},
        ]
        assert client.post("/tp/v1/events", json={"events": events}).status_code < 300
        assert client.post("/tp/v1/identify", json={"email": "ada@example.com"}).status_code == 200
    stored = []
    with opened(settings.database_url) as db:
        for table in catalog.tables(db):
            stored += [
                str(value) for row in db.execute(f'SELECT * FROM "{table}"') for value in row
            ]
    assert any("size_chosen" in value for value in stored)  # the events are there
    text = "\n".join(stored) + "\n".join(caplog.messages)
    for secret in (address, "203.0.113", "198.51.100", "Peculiar", "Firefox", "Linux", "Gecko"):
        assert secret not in text


@pytest.mark.parametrize(("handling", "shown"), [("truncate", ["alpine-shipping"]), ("drop", [])])
def test_the_country_comes_from_the_network_or_from_nothing(
    tmp_path: Path, rules_dir: Path, geoip_database: Path, handling: str, shown: list[str]
) -> None:
    settings = _settings(
        tmp_path, rules_dir, geoip_database=str(geoip_database), ip_handling=handling
    )
    with TestClient(create_app(settings), client=("192.0.2.7", 50000)) as client:  # Switzerland
        assert _shown(client) == shown


def test_the_rate_limit_forgets_addresses() -> None:
    limiter = RateLimiter(60)
    limiter.check("203.0.113.77", now=0.0)
    limiter.check("198.51.100.1", now=50.0)
    limiter.check("192.0.2.1", now=61.0)  # a minute on: the first address's bucket is full
    assert set(limiter.buckets) == {"198.51.100.1", "192.0.2.1"}
    limiter.check("192.0.2.1", now=125.0)
    assert set(limiter.buckets) == {"192.0.2.1"}
