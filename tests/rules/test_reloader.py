"""Hot reload: edits take effect without a restart; a broken edit keeps the last good rules."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from starlette.testclient import TestClient
from touchpoint.app import create_app
from touchpoint.settings import Settings

from ..web.test_decide import decide

SPRING = """\
campaign: spring
trigger: {after_seconds: 3}
priority: 50
variants:
  - {id: a, template: first-order-coupon.html}
"""


def eventually(check: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "no reload within the deadline"
        time.sleep(0.05)


def test_edits_reload_and_a_broken_edit_keeps_the_last_good_rules(settings: Settings) -> None:
    rules_dir = Path(settings.rules_dir)
    with TestClient(create_app(settings)) as client:
        assert decide(client).json()["popups"][0]["campaign"] == "first-order-coupon"

        (rules_dir / "spring.yaml").write_text(SPRING)
        eventually(lambda: client.get("/tp/healthz").json()["campaigns"] == 2)
        assert decide(client).json()["popups"][0]["campaign"] == "spring"

        (rules_dir / "spring.yaml").write_text(
            SPRING.replace("after_seconds: 3", "after_seconds: x")
        )
        eventually(lambda: client.get("/tp/healthz").json()["status"] == "degraded")
        health = client.get("/tp/healthz")
        assert health.status_code == 200
        assert health.json()["rules_problems"] == [
            "spring.yaml:2:11: trigger.after_seconds: a number of seconds from 0 to 86400, e.g. 20"
        ]
        assert decide(client).json()["popups"][0]["campaign"] == "spring"  # still the last good set

        (rules_dir / "spring.yaml").unlink()
        eventually(lambda: client.get("/tp/healthz").json() == {"status": "ok", "campaigns": 1})
        assert decide(client).json()["popups"][0]["campaign"] == "first-order-coupon"


def test_template_edits_reload(settings: Settings) -> None:
    template = Path(settings.rules_dir) / "templates" / "first-order-coupon.html"
    with TestClient(create_app(settings)) as client:
        template.write_text("<h2>Spring is here</h2>\n")
        eventually(lambda: "Spring is here" in decide(client).json()["popups"][0]["html"])


def test_reload_can_be_turned_off(tmp_path: Path, rules_dir: Path) -> None:
    settings = Settings.load(
        {"data_dir": str(tmp_path), "rules_dir": str(rules_dir), "reload_rules": False}, environ={}
    )
    with TestClient(create_app(settings)) as client:
        (rules_dir / "spring.yaml").write_text(SPRING)
        time.sleep(1.2)
        assert client.get("/tp/healthz").json()["campaigns"] == 1


def test_scoring_and_lifecycle_edits_reload_and_a_broken_one_keeps_the_last_good(
    settings: Settings,
) -> None:
    rules_dir = Path(settings.rules_dir)
    with TestClient(create_app(settings)) as client:
        tp = client.app.state.tp  # type: ignore[attr-defined]
        assert tp.rules.profile.scoring.points == ()
        (rules_dir / "scoring.yaml").write_text(
            "points: [{id: visit, activity: page_view, points: 1}]\n"
        )
        eventually(lambda: len(tp.rules.profile.scoring.points) == 1)
        (rules_dir / "lifecycle.yaml").write_text("stages: [{stage: vip}]\n")
        eventually(lambda: client.get("/tp/healthz").json()["status"] == "degraded")
        assert client.get("/tp/healthz").json()["rules_problems"] == [
            "lifecycle.yaml:1:11: stages.0.stage: required: one of visitor, lead, new-customer,"
            " customer, inactive, win-back"
        ]
        assert tp.rules.profile.scoring.points[0].id == "visit"  # the last good set
