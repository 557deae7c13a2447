"""The example rules: every touchpoint from the brief does what its file says."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from touchpoint.app import create_app
from touchpoint.audience.facts import Facts, PageView
from touchpoint.decide.targeting import decide
from touchpoint.rules import ruleset as rules
from touchpoint.settings import Settings
from touchpoint.store import CampaignHistory
from touchpoint.store.records import Profile

RULES = Path(__file__).parent.parent.parent / "rules"
RULESET = rules.load(RULES)
BERLIN = RULESET.site.timezone
MONDAY_10 = int(dt.datetime(2026, 11, 23, 10, 0, tzinfo=BERLIN).timestamp())
SUNDAY_10 = MONDAY_10 - 86400
RETURNING = Profile(visits=2, page_views=9, session_page_views=2, interests={"running": 4})


def facts(
    path: str,
    *,
    profile: Profile | None = None,
    now: int = MONDAY_10,
    history: dict[str, CampaignHistory] | None = None,
    marketing: bool = True,
    **view: Any,
) -> Facts:
    """A page view; ``marketing`` (the consent coupon campaigns need) gives an empty history."""
    return Facts(
        PageView(path=f"/demo/{path}", **view),
        now=now,
        tz=BERLIN,
        profile=profile,
        history=history if history is not None or not marketing else {},
        session_idle=RULESET.site.session_idle,
    )


def armed(f: Facts) -> dict[str, str]:
    """Trigger -> the campaign armed for it."""
    return {d.campaign.trigger.client()["on"]: d.campaign.id for d in decide(RULESET, f).popups}  # type: ignore[union-attr]


def test_every_example_loads_without_a_warning() -> None:
    """A fresh checkout starts quietly: the scoring example shows the sales webhook as a comment
    to uncomment once site.yaml names the endpoint (tests/profiles/test_lead_journey.py)."""
    assert len(RULESET.campaigns) == 12
    assert RULESET.warnings == ()


PRODUCT = "products/trail-runner.html"
CART = {"page_type": "cart", "cart_value": 129.0}


@pytest.mark.parametrize(
    ("f", "trigger", "campaign"),
    [
        (facts(PRODUCT), "exit_intent", "first-order-coupon"),
        (facts(PRODUCT, marketing=False), "exit_intent", None),  # a code is one per visitor
        (facts(PRODUCT, profile=Profile(attributes={"late_payer": True})), "exit_intent", None),
        (facts(PRODUCT, profile=Profile(attributes={"bad_review": True})), "exit_intent", None),
        (facts(PRODUCT, profile=Profile(stage="customer")), "exit_intent", None),
        (facts("category/running.html"), "scroll", "newsletter-signup"),
        (
            facts(
                "category/running.html",
                history={
                    "newsletter-signup": CampaignHistory(
                        1, MONDAY_10 - 10**6, last_converted_at=MONDAY_10 - 10**6
                    )
                },
            ),
            "scroll",
            None,
        ),
        (facts("", profile=replace(RETURNING, stage="lead")), "exit_intent", "exit-survey"),
        (facts(""), "exit_intent", None),
        (facts("", accept_language="de-AT,de;q=0.8"), "load", "location-coupon"),
        (facts("", accept_language="de-DE"), "load", None),
        (facts("cart.html", context=CART), "exit_intent", "cart-coupon"),
        (facts("cart.html", context=CART, marketing=False), "exit_intent", "cart-coupon"),
        (facts("cart.html", context={**CART, "cart_value": 30}), "exit_intent", None),
        (facts(PRODUCT, profile=RETURNING), "seconds", "product-test"),
        (facts(PRODUCT), "seconds", None),
        (facts(PRODUCT), "inactivity", "service-chat"),
        (facts(PRODUCT, now=SUNDAY_10), "inactivity", None),
        (facts(PRODUCT), "click", "ebook"),
        (
            facts("", profile=Profile(stage="lead", score=120), accept_language="de-AT"),
            "load",
            "workshop-offer",
        ),
        (
            facts("", profile=Profile(stage="lead", score=99), accept_language="de-AT"),
            "load",
            "location-coupon",
        ),
    ],
)
def test_popup_touchpoints(f: Facts, trigger: str, campaign: str | None) -> None:
    assert armed(f).get(trigger) == campaign


def test_min_gap_between_popups() -> None:
    seen = {"ebook": CampaignHistory(1, MONDAY_10 - 60)}
    assert armed(facts(PRODUCT, history=seen)) == {}
    seen = {"ebook": CampaignHistory(1, MONDAY_10 - 120)}
    assert armed(facts(PRODUCT, history=seen))["exit_intent"] == "first-order-coupon"


@pytest.mark.parametrize(
    ("profile", "campaign"),
    [
        (None, None),
        (Profile(visits=1, interests={"running": 3}), None),
        (RETURNING, "hero-by-interest"),
        (replace(RETURNING, stage="inactive"), "win-back"),
    ],
)
def test_hero_slot(profile: Profile | None, campaign: str | None) -> None:
    slots = decide(RULESET, facts("", profile=profile), slots=("hero",)).slots
    assert (slots["hero"].campaign.id if "hero" in slots else None) == campaign


def test_the_cart_note_splits_the_carts_visitors_between_its_two_notes() -> None:
    """The demo experiment (docs/reports.md#demo-data): an A/B test without a control."""
    shown = Counter(
        decide(
            RULESET,
            facts("cart.html", context=CART),
            slots=("cart-note",),
            visitor_id=f"v{n}",
        )
        .slots["cart-note"]
        .variant.id
        for n in range(400)
    )
    assert shown.keys() == {"free-shipping", "free-returns"}
    assert 160 < shown["free-returns"] < 240
    assert "cart-note" not in decide(RULESET, facts(PRODUCT), slots=("cart-note",)).slots


def test_hero_for_a_returning_runner_over_http(tmp_path: Path) -> None:
    settings = Settings.load(
        {"data_dir": str(tmp_path / "data"), "rules_dir": str(RULES)}, environ={}
    )
    with TestClient(create_app(settings)) as client:
        client.post("/tp/v1/consent", json={"granted": ["personalisation", "marketing"]})
        tp = client.app.state.tp  # type: ignore[attr-defined]
        clock = iter(range(MONDAY_10, MONDAY_10 + 10**6, 3600))  # an hour between page views
        tp.now = lambda: next(clock)
        running = {
            "page": {"path": "/demo/category/running.html"},
            "count": True,
            "context": {"category": "Running"},
        }
        for _ in range(3):
            assert client.post("/tp/v1/decide", json=running).status_code == 200
        product = {
            "page": {"path": "/demo/products/trail-runner.html"},
            "context": {"product": "Trail Runner X"},
        }
        client.post("/tp/v1/decide", json=product)
        # Page views are counted without waiting; a write queued after them waits for them.
        client.portal.call(tp.writer.write, lambda conn: None)  # type: ignore[union-attr]
        home = client.post("/tp/v1/decide", json={"page": {"path": "/demo/"}, "slots": ["hero"]})
        body = home.json()
        assert body["counted"] is True
        hero = body["slots"]["hero"]
        assert hero["campaign"] == "hero-by-interest"
        assert "Welcome back, runner" in hero["html"]
        assert "Still thinking about the Trail Runner X?" in hero["html"]
