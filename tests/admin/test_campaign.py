"""One campaign's page in the console: its variants with the report's figures and verdict, the
charts' data per day and variant, the range form, CSV, a 404 page for an unknown campaign."""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from touchpoint.admin.campaign import Figures, verdict_text
from touchpoint.app import create_app
from touchpoint.results import report
from touchpoint.settings import Settings
from touchpoint.store import CAMPAIGN_COUNTS

from ..conftest import ROOT

CAMPAIGN = "exit-survey"  # a survey against a holdout, in the demo rules


@pytest.fixture
def rules_dir(rules_dir: Path) -> Path:
    shutil.copy(ROOT / "rules" / "exit-survey.yaml", rules_dir)
    return rules_dir


def seen(settings: Settings, variant: str, *, convert: bool = False) -> None:
    """One more visitor (a client of their own) who consented and saw ``variant``."""
    with TestClient(create_app(settings)) as visitor:
        visitor.post("/tp/v1/consent", json={"granted": ["marketing", "measurement"]})
        events = [{"type": "impression", "campaign": CAMPAIGN, "variant": variant}]
        if convert:
            events.append({"type": "convert", "campaign": CAMPAIGN, "variant": variant})
        assert visitor.post("/tp/v1/events", json={"events": events}).status_code == 202


def attribute(page: str, name: str, index: int = 0) -> object:
    value = page.split(f'{name}="')[index + 1].split('"')[0]
    return json.loads(html.unescape(value))


def test_the_variants_with_the_reports_figures_verdict_and_charts(
    client: TestClient, settings: Settings
) -> None:
    seen(settings, "survey", convert=True)
    seen(settings, "survey")
    seen(settings, "holdout")
    page = client.get(f"/tp/admin/results/{CAMPAIGN}")
    assert page.status_code == 200
    assert "<h1>Campaign exit-survey</h1>" in page.text
    # the results section stays current in the navigation
    assert '<a href="/tp/admin/results" aria-current="page">Results</a>' in page.text
    assert 'scope="col" class="num">Chance to beat control</th>' in page.text
    assert "Verdict: Too early to call" in page.text
    assert "Too few visitors or conversions to call" in page.text
    assert '<th scope="row">holdout <span class="muted">(control)</span></th>' in page.text
    assert "50.0\u00a0%" in page.text  # survey: 1 of 2
    converted = attribute(page.text, "data-series", 0)
    exposures = attribute(page.text, "data-series", 1)
    assert isinstance(converted, dict) and isinstance(exposures, dict)
    assert len(converted["x"]) == 30 and converted["y"] == "conversions"
    lines = {s["label"]: sum(s["values"]) for s in converted["series"]}
    assert lines["survey"] == 1 and lines["holdout"] == 0
    assert {s["label"]: sum(s["values"]) for s in exposures["series"]}["survey"] == 2
    assert 'src="/tp/admin/static/charts.js"' in page.text


def test_the_page_in_german(client: TestClient, settings: Settings) -> None:
    seen(settings, "survey", convert=True)
    seen(settings, "survey")
    page = client.get(f"/tp/admin/results/{CAMPAIGN}", headers={"Accept-Language": "de"})
    assert "<h1>Kampagne exit-survey</h1>" in page.text
    assert "Ergebnis: Noch zu früh für ein Urteil" in page.text
    assert "50,0\u00a0%" in page.text
    assert "Zu wenige Besucher oder Conversions, um survey schon zu beurteilen" in page.text


def counts(exposed: int, converted: int) -> dict[str, int]:
    return {name: 0 for name in CAMPAIGN_COUNTS} | {
        "unique_exposed": exposed,
        "exposures": exposed,
        "unique_converted": converted,
    }


@pytest.mark.parametrize(
    "arms",
    [
        [(1000, 100)],  # one variant
        [(1000, 100), (1000, 160)],  # a winner
        [(1000, 160), (1000, 100), (1000, 95)],  # two losers
        [(1000, 100), (1000, 104)],  # no clear difference
        [(50, 5), (60, 9)],  # too small
        [(1000, 100), (1000, 170), (1000, 95), (40, 2)],  # a bit of everything
    ],
)
def test_the_console_says_the_reports_verdict_in_english_and_in_german(
    arms: list[tuple[int, int]],
) -> None:
    """The verdict is composed from its parts (results/report.py): in English word for word
    the report's text, in German a sentence for every part."""
    ids = ["control", "a", "b", "c"][: len(arms)]
    experiment = report._experiment(
        None, 1, {variant: counts(*arm) for variant, arm in zip(ids, arms, strict=True)}, {}
    )
    says(experiment["verdict"])


def test_the_console_says_a_sample_ratio_mismatch_in_english_and_in_german() -> None:
    says(report._verdict([], "control", {"flagged": True, "p_value": 0.0004}))


def says(verdict: dict[str, Any]) -> None:
    english = verdict["text"]
    if "p_value" in verdict:  # the console writes p-values as its tables do
        english = english.replace(f"{verdict['p_value']:.2g}", Figures("en").p(verdict["p_value"]))
    assert verdict_text(verdict, "en", Figures("en")) == english
    german = verdict_text(verdict, "de", Figures("de"))
    assert german and german != verdict["text"]
    for name in [*verdict.get("winners", []), *verdict.get("small", [])]:
        assert name in german


def test_an_unknown_campaign_is_a_404_page(client: TestClient) -> None:
    page = client.get("/tp/admin/results/no-such-campaign")
    assert page.status_code == 404
    assert "There is no campaign “no-such-campaign” in the rules or the results." in page.text
    assert client.get("/tp/admin/results/no-such-campaign.csv").status_code == 404
    escaped = client.get("/tp/admin/results/%3Cb%3E")
    assert escaped.status_code == 404 and "<b>" not in escaped.text


def test_bad_dates_are_shown_beside_the_fields(client: TestClient) -> None:
    page = client.get(f"/tp/admin/results/{CAMPAIGN}?since=2026-02-30")
    assert page.status_code == 200
    assert 'id="since-error">Write the date as YYYY-MM-DD.' in page.text
    long = client.get(f"/tp/admin/results/{CAMPAIGN}?since=2020-01-01&until=2026-01-01")
    assert "At most 731 days in one report." in long.text and "<table" not in long.text
    assert client.get(f"/tp/admin/results/{CAMPAIGN}.csv?until=x").status_code == 400


def test_the_variants_and_the_daily_series_as_csv(client: TestClient, settings: Settings) -> None:
    seen(settings, "survey", convert=True)
    query = "since=2026-01-01&until=2026-12-31"
    page = client.get(f"/tp/admin/results/{CAMPAIGN}?{query}")
    assert f'href="/tp/admin/results/{CAMPAIGN}.csv?since=2026-01-01&amp;until=2026-12-31"' in (
        page.text
    )
    variants = client.get(f"/tp/admin/results/{CAMPAIGN}.csv?{query}")
    assert variants.headers["content-type"] == "text/csv; charset=utf-8"
    assert f"{CAMPAIGN}-2026-01-01-2026-12-31.csv" in variants.headers["content-disposition"]
    header, *rows = variants.text.splitlines()
    assert header == (
        "variant,weight,exposures,visitors,converted,rate,95% interval,uplift,"
        "uplift 95% interval,chance to beat,p-value,revenue/visitor"
    )
    assert [row.split(",")[:3] for row in rows] == [
        ["holdout (control)", "1", "0"],
        ["survey", "9", "1"],
    ]
    daily = client.get(f"/tp/admin/results/{CAMPAIGN}.csv?{query}&daily=1")
    header, row = daily.text.splitlines()
    assert header.startswith("day,variant,armed,exposures")
    assert ",survey," in row
