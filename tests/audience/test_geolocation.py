"""The visitor's country from a local MaxMind-format database: lookups, start-up failures,
replaced files, country conditions over HTTP, and the address never stored."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import tzdata  # type: ignore[import-untyped]
from starlette.testclient import TestClient
from touchpoint.app import create_app
from touchpoint.audience import geolocation
from touchpoint.audience.geolocation import CountryDatabase, truncate
from touchpoint.cli import main
from touchpoint.errors import ConfigError
from touchpoint.settings import Settings
from touchpoint.syntax.countries import COUNTRIES, country_code

from .. import mmdb
from ..databases import opened

AUSTRIA_SWITZERLAND = """\
campaign: alpine-shipping
kind: popup
style: bar-top
trigger: load
audience: {country: [at, ch]}
variants:
  - {id: a, template: location-coupon.html}
"""


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("2001:db8:ab:cd:1:2:3:4", "2001:db8:ab::"),
        ("::ffff:192.0.2.9", "192.0.2.0"),  # IPv4 mapped into IPv6, as dual-stack sockets give
        ("fe80::1%eth0", "fe80::"),
        ("testclient", ""),
        ("", ""),
    ],
)
def test_an_address_is_looked_up_by_its_network(address: str, network: str) -> None:
    assert truncate(address) == network


@pytest.mark.parametrize(
    ("address", "country"),
    [
        ("127.0.0.1", "AT"),
        ("192.0.2.200", "CH"),
        ("2001:db8:ab:ff::1", "CH"),  # the /48 inside Germany's /32
        ("2001:db8:1::1", "DE"),
        ("198.51.100.5", "DE"),  # only a registered country: that one
        ("::ffff:127.1.2.3", "AT"),
        ("203.0.113.1", None),  # not in the database
        ("10.1.2.3", None),  # a private address
        ("fd00::1", None),
        ("not an address", None),
    ],
)
def test_countries_from_the_database(geoip_database: Path, address: str, country: str) -> None:
    assert CountryDatabase(geoip_database).country(address) == country


def test_the_lookup_never_sees_the_last_octet(tmp_path: Path) -> None:
    """Two halves of one /24 in different countries: the address is looked up as its /24, so
    both halves answer as the first does."""
    path = mmdb.write(
        tmp_path / "halves.mmdb",
        {"192.0.2.0/25": mmdb.country("CH"), "192.0.2.128/25": mmdb.country("LI")},
    )
    database = CountryDatabase(path)
    assert database.country("192.0.2.200") == database.country("192.0.2.1") == "CH"


def test_why_a_country_is_unknown(geoip_database: Path) -> None:
    database = CountryDatabase(geoip_database)
    assert database.unknown("10.0.0.1") == (
        "the address's network is not in the geolocation database"
    )
    assert database.unknown("testclient") == "no client address"
    assert geolocation.unknown_country(None, "10.0.0.1") == (
        "country unknown: no geolocation source, setting geoip_database is empty"
    )


def test_country_codes_are_iso_3166_alpha_2() -> None:
    table = Path(tzdata.__file__).parent / "zoneinfo" / "iso3166.tab"
    lines = table.read_text().splitlines()
    assigned = {line.split("\t")[0] for line in lines if line and not line.startswith("#")}
    assert COUNTRIES == assigned | {"XK"}  # Kosovo, as geolocation databases write it
    assert country_code(" at ") == "AT"
    with pytest.raises(ValueError, match="did you mean `GB`"):
        country_code("UK")
    with pytest.raises(ValueError, match="did you mean `GR`"):
        country_code("EL")


def _damaged(geoip_database: Path) -> bytes:
    data = geoip_database.read_bytes()
    tree_end = data.index(mmdb.METADATA_MARKER)
    return b"\xff" * tree_end + data[tree_end:]  # every record points past the data


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"", "not a MaxMind-format database (.mmdb)"),
        (b"GeoLite2-Country_20261201/GeoLite2-Country.mmdb\0", "not a MaxMind-format database"),
        ("damaged", "damaged MaxMind-format database: "),
        ("folder", "a folder; name the .mmdb file in it"),
        ("asn", "a Test-ASN database has no countries; use a country one"),
    ],
)
def test_a_missing_or_broken_file_is_one_clear_error(
    tmp_path: Path, geoip_database: Path, content: bytes | str | None, message: str
) -> None:
    path = tmp_path / "broken.mmdb"
    if content == "damaged":
        path.write_bytes(_damaged(geoip_database))
    elif content == "folder":
        path.mkdir()
    elif content == "asn":
        mmdb.write(
            path,
            {"192.0.2.0/24": {"autonomous_system_number": mmdb.UInt(6, 64496)}},
            database_type="Test-ASN",
        )
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        geolocation.open_source(str(path))
    assert str(info.value).startswith(f"geoip_database {path}: {message}")
    assert "\n" not in str(info.value)


def test_no_setting_no_source() -> None:
    assert geolocation.open_source("") is None


def test_a_replaced_file_is_picked_up_and_a_broken_one_keeps_the_last(
    tmp_path: Path, geoip_database: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = CountryDatabase(geoip_database)
    assert database.refresh() is False  # unchanged
    assert database.country("203.0.113.9") is None
    # An update is written next to the file and renamed over it, as docs/operations.md says.
    update = mmdb.write(tmp_path / "new.mmdb", {"203.0.113.0/24": mmdb.country("LI")})
    os.replace(update, geoip_database)
    assert database.refresh() is True
    assert database.country("203.0.113.9") == "LI"
    assert database.country("127.0.0.1") is None
    geoip_database.write_bytes(b"half a download")
    with caplog.at_level(logging.WARNING, logger="touchpoint.geolocation"):
        assert database.refresh() is False
        assert database.refresh() is False  # warned once for this change
    assert database.country("203.0.113.9") == "LI"
    assert [r.getMessage() for r in caplog.records] == [
        f"geoip_database {geoip_database}: not a MaxMind-format database (.mmdb);"
        " keeping the one in use"
    ]


def _settings(tmp_path: Path, rules_dir: Path, **more: str) -> Settings:
    (rules_dir / "alpine-shipping.yaml").write_text(AUSTRIA_SWITZERLAND)
    return Settings.load(
        {"data_dir": str(tmp_path / "data"), "rules_dir": str(rules_dir), **more}, environ={}
    )


def _shown(client: TestClient) -> list[str]:
    body = client.post("/tp/v1/decide", json={"page": {"path": "/demo/"}}).json()
    return [popup["campaign"] for popup in body["popups"]]


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        ("192.0.2.7", ["alpine-shipping"]),  # Switzerland
        ("2001:db8:ab::7", ["alpine-shipping"]),  # Switzerland
        ("2001:db8:1::7", []),  # Germany
        ("203.0.113.7", []),  # unknown
    ],
)
def test_decide_by_the_visitors_country(
    tmp_path: Path, rules_dir: Path, geoip_database: Path, address: str, shown: list[str]
) -> None:
    settings = _settings(tmp_path, rules_dir, geoip_database=str(geoip_database))
    with TestClient(create_app(settings), client=(address, 50000)) as client:
        assert _shown(client) == shown


def test_without_a_source_the_country_is_unknown(tmp_path: Path, rules_dir: Path) -> None:
    with TestClient(create_app(_settings(tmp_path, rules_dir)), client=("192.0.2.7", 1)) as c:
        assert _shown(c) == []


def test_startup_fails_on_a_missing_database(tmp_path: Path, rules_dir: Path) -> None:
    missing = tmp_path / "GeoLite2-Country.mmdb"
    with pytest.raises(ConfigError, match=f"geoip_database {missing}: no such file"):
        create_app(_settings(tmp_path, rules_dir, geoip_database=str(missing)))


def test_serve_ends_with_one_line_naming_the_file(
    tmp_path: Path, rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "countries.mmdb"
    broken.write_bytes(b"<html>404 Not Found</html>")
    argv = ["serve", "--rules-dir", str(rules_dir), "--data-dir", str(tmp_path / "data")]
    assert main([*argv, "--geoip-database", str(broken)]) == 1
    assert capsys.readouterr().err == (
        f"touchpoint: geoip_database {broken}: not a MaxMind-format database (.mmdb)\n"
    )


def test_the_live_server_looks_up_the_forwarded_address_and_stores_none(
    tmp_path: Path, rules_dir: Path, geoip_database: Path
) -> None:
    """Through the trusted proxy on 127.0.0.1 (forwarded_allow_ips), the country is the
    forwarded address's; a visitor who granted everything is counted, tracked, identified,
    and the address appears nowhere in the database."""
    import httpx2 as httpx

    from ..conftest import LiveServer

    (rules_dir / "alpine-shipping.yaml").write_text(AUSTRIA_SWITZERLAND.replace("[at, ch]", "CH"))
    server = LiveServer(
        tmp_path, "--rules-dir", str(rules_dir), "--geoip-database", str(geoip_database)
    )
    address = "192.0.2.123"
    try:
        headers = {"Origin": server.url}
        with httpx.Client(base_url=server.url, headers=headers) as client:
            page = {"page": {"path": "/demo/"}}
            direct = client.post("/tp/v1/decide", json=page).json()  # 127.0.0.1: Austria
            assert direct["popups"] == []
            client.headers["X-Forwarded-For"] = address
            granted = ["marketing", "measurement", "personalisation"]
            client.post("/tp/v1/consent", json={"granted": granted}).raise_for_status()
            body = client.post("/tp/v1/decide", json=page).json()
            assert [p["campaign"] for p in body["popups"]] == ["alpine-shipping"]
            assert body["counted"] is True
            events = [{"type": "click", "name": "shipping", "path": "/demo/"}]
            assert client.post("/tp/v1/events", json={"events": events}).status_code == 202
            identify = {"email": "anna@example.com", "first_name": "Anna"}
            client.post("/tp/v1/identify", json=identify).raise_for_status()
    finally:
        server.stop()
    with opened(server.database) as conn:
        assert conn.execute("SELECT page_views FROM visitors").fetchall() == [(1,)]
    stored = b"".join(p.read_bytes() for p in server.data_dir.glob("touchpoint.db*"))
    for form in (address.encode(), address.encode("utf-16-le"), socket.inet_aton(address)):
        assert form not in stored
    assert address not in server.output()


EITHER = AUSTRIA_SWITZERLAND.replace(
    "audience: {country: [at, ch]}",
    "audience:\n  any:\n    - country: [at, ch]\n    - language: de-AT",
)


def test_check_warns_at_each_country_condition_without_a_source(
    rules_dir: Path, geoip_database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (rules_dir / "alpine-shipping.yaml").write_text(EITHER)
    assert main(["check", "--rules-dir", str(rules_dir)]) == 0
    out, err = capsys.readouterr()
    assert out == f"ok: 2 campaign(s) in {rules_dir}, 1 warning\n"
    assert err == (
        f"{rules_dir / 'alpine-shipping.yaml'}:7:7: warning: audience.any.0.country: no"
        " geolocation source configured (setting geoip_database) — this condition is never true\n"
        "warning: 1 country condition(s) can never hold: no geolocation source is configured."
        " Set geoip_database to a country database (.mmdb), see docs/operations.md#geolocation\n"
    )
    checked = ["check", "--rules-dir", str(rules_dir), "--geoip-database", str(geoip_database)]
    assert main(checked) == 0
    assert capsys.readouterr() == (f"ok: 2 campaign(s) in {rules_dir}\n", "")
    assert main([*checked[:-1], str(geoip_database.with_name("gone.mmdb"))]) == 1
    assert capsys.readouterr().err == (
        f"touchpoint: geoip_database {geoip_database.with_name('gone.mmdb')}: no such file\n"
    )


Simulate = Callable[..., str]


@pytest.fixture
def simulate(rules_dir: Path, capsys: pytest.CaptureFixture[str]) -> Simulate:
    """``touchpoint simulate /demo/`` with the campaign for Austria and Switzerland: the header
    and the line explaining that campaign."""
    (rules_dir / "alpine-shipping.yaml").write_text(AUSTRIA_SWITZERLAND)

    def run(*args: str) -> str:
        assert main(["simulate", "/demo/", "--rules-dir", str(rules_dir), "--at", "0", *args]) == 0
        lines = capsys.readouterr().out.splitlines()
        return lines[0] + "\n" + next(line for line in lines if line.startswith("  alpine"))

    return run


def test_simulate_says_why_the_country_is_unknown(simulate: Simulate, geoip_database: Path) -> None:
    assert simulate() == (
        "/demo/ for an anonymous visitor at 1970-01-01T00:00:00+00:00:\n"
        "  alpine-shipping                  not chosen: audience: country is AT or CH (country"
        " unknown: no geolocation source, setting geoip_database is empty)"
    )
    database = ("--geoip-database", str(geoip_database))
    assert simulate(*database).endswith("(country unknown: no client address)")
    assert simulate(*database, "--ip", "10.0.0.1").endswith(
        "(country unknown: the address's network is not in the geolocation database)"
    )
    assert simulate(*database, "--ip", "2001:db8:1::1").endswith("country is AT or CH (it is 'DE')")


@pytest.mark.parametrize(
    "args",
    [("--country", "ch"), ("--ip", "192.0.2.1", "--geoip-database", "{db}")],
)
def test_simulate_a_country(
    simulate: Simulate, geoip_database: Path, args: tuple[str, ...]
) -> None:
    args = tuple(a.replace("{db}", str(geoip_database)) for a in args)
    assert simulate(*args) == (
        "/demo/ for an anonymous visitor in CH at 1970-01-01T00:00:00+00:00:\n"
        "  alpine-shipping                  chosen"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--country", "Swiss"), "--country: 'Swiss' is not an ISO 3166-1 alpha-2 country code"),
        (("--ip", "192.0.2.1"), "--ip needs a geolocation source (setting geoip_database)"),
        (("--ip", "localhost"), "--ip: 'localhost' is not an IP address"),
    ],
)
def test_simulate_refuses_what_it_cannot_use(
    rules_dir: Path, args: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", "/", "--rules-dir", str(rules_dir), *args]) == 1
    assert capsys.readouterr().err.startswith(f"touchpoint: {message}")


def test_the_server_watches_the_file(tmp_path: Path, geoip_database: Path) -> None:
    import asyncio

    database = CountryDatabase(geoip_database)

    async def replace_while_watching() -> None:
        watching = asyncio.create_task(geolocation.watch(database, interval=0.01))
        update = mmdb.write(tmp_path / "new.mmdb", {"203.0.113.0/24": mmdb.country("LI")})
        os.replace(update, geoip_database)
        for _ in range(200):
            await asyncio.sleep(0.01)
            if database.country("203.0.113.1"):
                break
        watching.cancel()

    asyncio.run(replace_while_watching())
    assert database.country("203.0.113.1") == "LI"
