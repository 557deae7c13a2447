"""A scripted experiment through the real endpoints of a real server: the reports give exactly
the counts the script produced and the statistics gbstats computes from them; purging every
event and erasing a visitor leave them as they were."""

from __future__ import annotations

import shutil
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from gbstats.bayesian.tests import EffectBayesianABTest
from gbstats.frequentist.tests import TwoSidedTTest
from gbstats.models.statistics import ProportionStatistic
from gbstats.utils import check_srm
from touchpoint.api import keys as apikeys

from ..conftest import ROOT, LiveServer
from ..databases import opened

AB_TEST = """\
campaign: ab-test
kind: popup
trigger: {after_seconds: 1}
audience: {page.path: /ab/*}
frequency: {after_close: 0, after_convert: 0}
variants:
  - {id: a, weight: 50, template: newsletter-signup.html}
  - {id: b, weight: 50, template: newsletter-signup.html}
"""
VISITORS = 400
CONSENT_ALL = {"granted": ["measurement", "personalisation", "marketing"]}
TOLERANCE = 1e-3


@pytest.fixture
def experiment(tmp_path: Path) -> Any:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    (rules / "ab-test.yaml").write_text(AB_TEST)
    data = tmp_path / "live-data"
    data.mkdir()
    keys = apikeys.ApiKeys(data / "api_keys.json")
    token = keys.create("bi", ["reports:read"], now=1)
    eraser = keys.create("dpo", ["privacy:erase"], now=1)
    server = LiveServer(tmp_path, "--rules-dir", str(rules), "--rate-limit-per-minute=1000000")
    try:
        yield server, {"Authorization": f"Bearer {token}"}, data, eraser
    finally:
        server.stop()


def play(url: str) -> tuple[Counter[str], Counter[str], list[str]]:
    """Each visitor consents, views a page of the test, sees its variant; a known share
    converts (1 in 10 of a, 1 in 6 of b), some twice. Returns exposed and converted visitors
    per variant, and the visitor ids."""
    exposed: Counter[str] = Counter()
    converted: Counter[str] = Counter()
    ids = []
    for i in range(VISITORS):
        with httpx.Client(base_url=url) as client:
            assert client.post("/tp/v1/consent", json=CONSENT_ALL).status_code == 200
            ids.append(client.cookies["tp_vid"].split(".")[0])
            answer = client.post("/tp/v1/decide", json={"page": {"path": "/ab/page"}}).json()
            (popup,) = [p for p in answer["popups"] if p["campaign"] == "ab-test"]
            variant = popup["variant"]
            seen = {"type": "impression", "campaign": "ab-test", "variant": variant}
            events = [seen, seen] if i % 7 == 0 else [seen]  # some see it twice
            if i % (10 if variant == "a" else 6) == 0:
                converted[variant] += 1
                convert = {"type": "convert", "campaign": "ab-test", "variant": variant}
                events += [convert, convert] if i % 4 == 0 else [convert]
            stored = client.post("/tp/v1/events", json={"events": events})
            assert stored.status_code == 202, stored.text
            exposed[variant] += 1
    return exposed, converted, ids


def gbstats(control: tuple[int, int], variant: tuple[int, int]) -> tuple[Any, Any]:
    a = ProportionStatistic(n=control[0], sum=control[1])
    b = ProportionStatistic(n=variant[0], sum=variant[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return TwoSidedTTest(a, b).compute_result(), EffectBayesianABTest(a, b).compute_result()


@pytest.mark.slow
def test_a_scripted_experiment_reports_its_counts_and_gbstats_statistics(experiment: Any) -> None:
    server, auth, data, eraser = experiment
    exposed, converted, ids = play(server.url)
    url = f"{server.url}/tp/v1/api/reports/campaigns/ab-test"
    report = httpx.get(url, headers=auth).json()

    variants = {v["variant"]: v for v in report["variants"]}
    assert list(variants) == ["a", "b"]
    for name in ("a", "b"):
        assert variants[name]["unique_exposed"] == exposed[name]
        assert variants[name]["unique_converted"] == converted[name]
        assert variants[name]["armed"] == exposed[name]
    assert sum(v["exposures"] for v in variants.values()) == VISITORS + len(range(0, VISITORS, 7))
    assert report["control"] == "a"  # no control variant: the first one is the baseline

    frequentist, bayesian = gbstats((exposed["a"], converted["a"]), (exposed["b"], converted["b"]))
    versus = variants["b"]["versus_control"]["conversion"]
    assert versus["uplift"] == pytest.approx(frequentist.expected, abs=TOLERANCE)
    assert versus["uplift_interval"] == pytest.approx(frequentist.ci, abs=TOLERANCE)
    assert versus["p_value"] == pytest.approx(frequentist.p_value, abs=TOLERANCE)
    assert versus["chance_to_beat_control"] == pytest.approx(bayesian.chance_to_win, abs=TOLERANCE)
    srm = check_srm([exposed["a"], exposed["b"]], [50, 50])
    assert report["sample_ratio"]["p_value"] == pytest.approx(srm, abs=1e-9)
    assert report["verdict"]["call"] in ("winner", "no_difference")

    # Every event purged, one visitor erased: the report is what it was, and names nobody.
    with opened(server.database) as db:
        db.execute("DELETE FROM events")
    erasure = httpx.delete(
        f"{server.url}/tp/v1/api/subjects/{ids[0]}", headers={"Authorization": f"Bearer {eraser}"}
    )
    assert erasure.status_code == 200, erasure.text
    assert httpx.get(url, headers=auth).json() == report
    for visitor in ids:
        assert visitor not in repr(report)


@pytest.mark.parametrize(
    ("query", "status", "detail"),
    [
        ("?since=2026-13-01", 400, "since must be a date as YYYY-MM-DD"),
        ("?since=2026-12-05&until=2026-12-01", 400, "is after until"),
        ("?since=2020-01-01&until=2026-01-01", 400, "at most 731"),
    ],
)
def test_bad_ranges_are_refused(experiment: Any, query: str, status: int, detail: str) -> None:
    server, auth, *_ = experiment
    answer = httpx.get(f"{server.url}/tp/v1/api/reports/campaigns{query}", headers=auth)
    assert answer.status_code == status
    assert detail in answer.json()["detail"]


def test_an_unknown_campaign_is_404_and_the_scope_is_needed(experiment: Any) -> None:
    server, auth, *_ = experiment
    unknown = httpx.get(f"{server.url}/tp/v1/api/reports/campaigns/nope", headers=auth)
    assert unknown.status_code == 404
    assert "no campaign 'nope'" in unknown.json()["detail"]
    assert httpx.get(f"{server.url}/tp/v1/api/reports/lifecycle").status_code == 401
