"""The consent banner's server side: site.yaml's consent section, the texts, refusals, GPC."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from touchpoint.app import create_app
from touchpoint.consent.banner import TEXTS, ConsentConfig, pick_language
from touchpoint.render import popups
from touchpoint.rules import ruleset as rules
from touchpoint.rules.ruleset import RulesError
from touchpoint.settings import Settings

from ..databases import opened
from ..web.test_decide import decide
from .test_consent import ALL, grant


def grant_with_gpc(client: TestClient, granted: list[str], method: str):  # type: ignore[no-untyped-def]
    body = {"granted": granted, "method": method}
    return client.post("/tp/v1/consent", json=body, headers={"Sec-GPC": "1"})


def problems(rules_dir: Path, text: str) -> list[str]:
    (rules_dir / "site.yaml").write_text(text)
    with pytest.raises(RulesError) as info:
        rules.load(rules_dir)
    return [str(p) for p in info.value.problems]


def client_for(settings: Settings, rules_dir: Path, site: str) -> TestClient:
    (rules_dir / "site.yaml").write_text(site)
    return TestClient(create_app(settings))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("consent:\n  mode: banner\n", "site.yaml:2:3: consent.mode: one of builtin"),
        ("consent:\n  privacy_policy: privacy.html\n", "2:3: consent.privacy_policy: a path like"),
        ("consent:\n  tcf_timeout: 3 s\n", "2:3: consent.tcf_timeout: expected a duration"),
        ("consent:\n  tcf_timeout: 5m\n", "2:3: consent.tcf_timeout: between 1s and 30s"),
        ("consent:\n  modus: tcf\n", "2:3: consent.modus: unknown key — did you mean `mode`?"),
        ("consent:\n  texts:\n    de:\n      titel: X\n", "4:7: consent.texts.de.titel: unknown"),
        ("consent:\n  texts:\n    de:\n      title: ''\n", "4:7: consent.texts.de.title: a text"),
        ("consent:\n  texts:\n    German: {title: X}\n", "3:5: consent.texts.German: a language"),
        ("consent: builtin\n", "site.yaml:1:1: consent: must be a mapping"),
    ],
)
def test_consent_section_problems_name_file_line_and_key(
    rules_dir: Path, text: str, expected: str
) -> None:
    found = problems(rules_dir, text)
    assert len(found) == 1 and expected in found[0], found


def test_texts_override_per_language_and_a_new_language_falls_back_to_english(
    rules_dir: Path,
) -> None:
    (rules_dir / "site.yaml").write_text(
        "consent:\n  privacy_policy: /privacy.html\n  texts:\n"
        "    de: {title: Datenschutz & Sie}\n    fr: {accept_all: Tout accepter}\n"
    )
    config = rules.load(rules_dir).site.consent
    german = config.banner("de-AT")
    assert german["lang"] == "de"
    assert '<h2 id="tp-title">Datenschutz &amp; Sie</h2>' in german["html"]  # escaped
    assert ">Alle ablehnen</button>" in german["html"]
    assert '<a href="/privacy.html">Datenschutzerklärung</a>' in german["html"]
    french = config.banner("fr")["html"]
    assert ">Tout accepter</button>" in french and ">Reject all</button>" in french


def test_shipped_languages_have_every_text() -> None:
    assert set(TEXTS["de"]) == set(TEXTS["en"])
    assert pick_language("fr-CH, de;q=0.8", TEXTS) == "de"
    assert pick_language("", TEXTS) == pick_language("pt-BR", TEXTS) == "en"


def test_reject_all_looks_exactly_like_accept_all() -> None:
    html = ConsentConfig().banner("en")["html"]
    reject = re.search(r'<button class="([^"]*)" type="button" data-a="reject">', html)
    accept = re.search(r'<button class="([^"]*)" type="button" data-a="accept">', html)
    assert reject and accept and reject.group(1) == accept.group(1) == "tp-button"
    # One switch per category, none ticked by the markup; necessary is fixed on.
    assert html.count('role="switch"') == 4 and html.count("checked") == 1


def test_texts_endpoint_serves_the_language_asked_for(client: TestClient) -> None:
    response = client.get("/tp/v1/consent?lang=de")
    assert response.status_code == 200
    body = response.json()
    assert body["mode"] == "builtin"
    assert body["lang"] == "de"
    assert ">Alle akzeptieren</button>" in body["html"]
    assert body["css"].startswith(popups.CSS)  # the popups' styles, then the banner's own
    assert ".consent" in body["css"]
    assert "set-cookie" not in response.headers
    fallback = client.get("/tp/v1/consent", headers={"Accept-Language": "it"}).json()
    assert ">Reject all</button>" in fallback["html"]


def test_decide_carries_the_banner_only_while_a_prompt_is_due(client: TestClient) -> None:
    ask = client.post("/tp/v1/decide", json={"page": {"path": "/"}, "lang": "de"}).json()
    assert TEXTS["de"]["title"] in ask["consent"]["banner"]["html"]
    grant(client, ALL, method="banner-accept-all")
    assert "banner" not in decide(client).json()["consent"]


def test_external_and_tcf_modes_show_no_banner(settings: Settings, rules_dir: Path) -> None:
    with client_for(settings, rules_dir, "consent: {mode: external}\n") as client:
        state = decide(client).json()["consent"]
        assert state["mode"] == "external" and state["prompt"] and "banner" not in state
    with client_for(settings, rules_dir, "consent: {mode: tcf, tcf_timeout: 2s}\n") as client:
        state = decide(client).json()["consent"]
        assert state["mode"] == "tcf" and state["timeout"] == 2000 and "banner" not in state


def test_refusal_is_remembered_by_a_cookie_without_an_identifier(client: TestClient) -> None:
    first = grant(client, [], method="banner-reject-all").headers["set-cookie"]
    client.cookies.clear()
    second = grant(client, [], method="banner-reject-all").headers["set-cookie"]
    assert first == second  # the same cookie for everybody: nothing tells two visitors apart
    for attribute in ("tp_refused=1;", "HttpOnly", "Max-Age=15724800", "Path=/", "SameSite=lax"):
        assert attribute in first
    assert "tp_vid" not in client.cookies
    state = decide(client).json()["consent"]
    assert state["prompt"] is False and "banner" not in state
    assert state["granted"] == []


def test_an_api_refusal_sets_no_refusal_cookie(client: TestClient) -> None:
    assert "set-cookie" not in grant(client, [], method="api").headers


def test_a_revision_bump_asks_again_after_a_refusal(client: TestClient, settings: Settings) -> None:
    grant(client, [], method="banner-reject-all")
    refused = client.cookies["tp_refused"]
    bumped = Settings.load(
        {
            "data_dir": str(settings.data_dir),
            "database": settings.database,
            "rules_dir": str(settings.rules_dir),
            "consent_revision": 2,
        },
        environ={},
    )
    with TestClient(create_app(bumped)) as later:
        later.cookies.set("tp_refused", refused)
        assert decide(later).json()["consent"]["prompt"] is True


def test_granting_later_clears_the_refusal(client: TestClient) -> None:
    grant(client, [], method="banner-reject-all")
    response = grant(client, ["measurement"], method="banner-custom")
    cookies = response.headers.get_list("set-cookie")
    assert any(c.startswith("tp_refused=") and "Max-Age=0" in c for c in cookies)
    assert "tp_vid" in client.cookies


def test_withdrawal_in_the_banner_expires_the_recognition_cookie(client: TestClient) -> None:
    grant(client, ALL, method="banner-accept-all")
    response = grant(client, [], method="banner-custom")
    cookies = response.headers.get_list("set-cookie")
    assert any(c.startswith("tp_vid=") and "Max-Age=0" in c for c in cookies)
    assert any(c.startswith("tp_refused=1;") for c in cookies)


def test_gpc_reduces_accept_all_to_measurement(client: TestClient, settings: Settings) -> None:
    response = grant_with_gpc(client, ALL, "banner-accept-all")
    assert response.json()["granted"] == ["measurement"]
    assert decide(client).json()["consent"]["granted"] == ["measurement"]
    with opened(settings.database_url) as conn:
        logged = conn.execute("SELECT granted, denied, method FROM consent_log").fetchall()
    assert logged == [('["measurement"]', '["marketing", "personalisation"]', "banner-accept-all")]


def test_gpc_honours_a_choice_made_category_by_category(client: TestClient) -> None:
    response = grant_with_gpc(client, ALL, "banner-custom")
    assert response.json()["granted"] == ALL
