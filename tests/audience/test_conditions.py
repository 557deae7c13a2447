"""Audience conditions: every field and matcher, combinators, explanations, glob properties."""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from touchpoint.audience.conditions import Compiler, explain
from touchpoint.audience.facts import Facts, PageView
from touchpoint.audience.fields import FIELDS
from touchpoint.audience.geolocation import FixedCountry
from touchpoint.store import CampaignHistory
from touchpoint.store.records import Profile, Touch
from touchpoint.syntax.matchers import glob_regex

BERLIN = ZoneInfo("Europe/Berlin")
# Monday 2026-11-23 10:30 in Berlin.
NOW = int(dt.datetime(2026, 11, 23, 10, 30, tzinfo=BERLIN).timestamp())
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
PROFILE = Profile(
    visits=3,
    page_views=12,
    session_page_views=2,
    stage="lead",
    score=42.5,
    identified=True,
    first_touch=Touch("social", "instagram.com", {"source": "insta", "campaign": "spring"}),
    last_touch=Touch("email", "", {"source": "newsletter", "medium": "email"}),
    attributes={"late_payer": True, "tier": "gold", "orders": 4},
    interests={"running": 5, "hiking": 2},
    first_seen_at=NOW - 40 * 86400,
    last_seen_at=NOW - 3 * 86400 - 60,
    purchases=2,
    last_purchase_at=NOW - 10 * 86400,
    stage_since=NOW - 20 * 86400 + 1,
)
HISTORY = {
    "newsletter": CampaignHistory(
        impressions=2, last_seen_at=NOW - 3600, last_converted_at=NOW - 2 * 86400
    )
}


def facts(**overrides: Any) -> Facts:
    view = {
        "path": "/products/trail-runner",
        "query": "?utm_source=newsletter&utm_medium=email&ref=abc",
        "referrer": "https://www.google.de/search?q=x",
        "host": "shop.example",
        "context": {"cart_value": 59.9, "page_type": "product", "logged_in": False},
        "user_agent": IPHONE,
        "accept_language": "de-AT,de;q=0.9,en;q=0.5",
    }
    profile = overrides.pop("profile", PROFILE)
    geolocation = overrides.pop("geolocation", FixedCountry("AT"))
    view.update(overrides)
    return Facts(
        PageView(**view),
        now=NOW,
        tz=BERLIN,
        profile=profile,
        history=HISTORY,
        geolocation=geolocation,
    )


def compile_one(condition: Any, *, interests: frozenset[str] = frozenset({"running", "hiking"})):  # type: ignore[no-untyped-def]
    problems: list[str] = []
    compiler = Compiler(lambda key, msg: problems.append(f"{key}: {msg}"), interests=interests)
    compiled = compiler.conditions(condition, "audience")
    assert not problems, problems
    assert compiled is not None
    return compiled


def holds(condition: Any, f: Facts | None = None) -> bool:
    return compile_one(condition).test(f or facts())


CASES: list[tuple[dict[str, Any], bool]] = [
    ({"page.path": "/products/*"}, True),
    ({"page.path": ["/cart", "/products/**"]}, True),
    ({"page.path": "/products"}, False),
    ({"page.path": ["/products/*/x", "/cart"]}, False),  # every pattern matches the whole path
    ({"page.path": {"matches": "trail"}}, True),
    ({"page.query.ref": "abc"}, True),
    ({"page.query.ref": "ab*"}, True),
    ({"page.query.ref": {"exists": False}}, False),
    ({"page.query.missing": {"exists": False}}, True),
    ({"referrer.host": "google.*"}, True),
    ({"referrer.host": "bing.com"}, False),
    ({"referrer.channel": "paid"}, False),
    ({"referrer.channel": ["email", "search"]}, True),  # utm_medium=email wins over the host
    ({"utm.source": "Newsletter"}, True),  # case-insensitive
    ({"utm.medium": "email"}, True),
    ({"utm.campaign": {"exists": True}}, False),
    ({"utm.term": {"exists": False}}, True),
    ({"utm.content": "x"}, False),
    ({"first_touch.channel": "social"}, True),
    ({"first_touch.host": "*.com"}, True),
    ({"first_touch.source": "insta"}, True),
    ({"first_touch.medium": {"exists": False}}, True),
    ({"first_touch.campaign": {"matches": "^spr"}}, True),
    ({"first_touch.term": "x"}, False),
    ({"first_touch.content": "x"}, False),
    ({"device.type": "mobile"}, True),
    ({"device.type": ["desktop", "tablet"]}, False),
    ({"device.os": "iOS"}, True),
    ({"device.browser": "mobile safari"}, True),
    ({"language": "de"}, True),
    ({"language": "de-at"}, True),
    ({"language": "en"}, False),
    ({"country": "AT"}, True),
    ({"country": ["ch", "at"]}, True),  # case-insensitive
    ({"country": ["CH", "DE"]}, False),
    ({"visitor.returning": True}, True),
    ({"visitor.visits": {"gte": 3, "lt": 5}}, True),
    ({"visitor.visits": 2}, False),
    ({"visitor.page_views": {"gt": 12}}, False),
    ({"visitor.session_page_views": {"eq": 2}}, True),
    ({"visitor.stage": ["lead", "customer"]}, True),
    ({"visitor.score": {"gte": 40, "lte": 50}}, True),
    ({"visitor.identified": False}, False),
    ({"visitor.purchases": {"gte": 2}}, True),
    ({"visitor.days_since_last_purchase": 10}, True),
    ({"visitor.days_since_last_visit": {"gte": 4}}, False),
    ({"visitor.days_in_stage": 19}, True),
    ({"visitor.attributes.late_payer": True}, True),
    ({"visitor.attributes.tier": ["gold", "platinum"]}, True),
    ({"visitor.attributes.orders": {"gte": 5}}, False),
    ({"visitor.attributes.missing": True}, False),
    ({"visitor.interests.running": {"gte": 5}}, True),
    ({"visitor.interests.hiking": {"gt": 2}}, False),
    ({"visitor.top_interest": "running"}, True),
    ({"context.cart_value": {"gt": 50}}, True),
    ({"context.page_type": "product"}, True),
    ({"context.logged_in": False}, True),
    ({"context.cart_value": "59.9"}, False),  # a number is not the string "59.9"
    ({"campaign.newsletter.converted": True}, True),
    ({"campaign.newsletter.converted": {"within": "1d"}}, False),
    ({"campaign.newsletter.converted": {"before": "1d"}}, True),
    ({"campaign.newsletter.closed": False}, True),
    ({"campaign.newsletter.seen": {"within": "2h"}}, True),
    ({"campaign.newsletter.impressions": {"gte": 2}}, True),
    ({"campaign.other.seen": False}, True),
    ({"schedule": {"from": dt.date(2026, 11, 23), "until": "2026-11-23 10:29"}}, False),
    ({"schedule": {"from": "2026-11-23 10:30", "until": dt.date(2026, 11, 23)}}, True),
    ({"schedule": {"weekdays": ["sat", "sun"]}}, False),
    ({"schedule": {"weekdays": "mon", "hours": "09:00-18:00"}}, True),
    ({"schedule": {"hours": "22:00-06:00"}}, False),
    ({"schedule": {"hours": ["06:00-10:31", "22:00-23:00"]}}, True),
    ({"all": [{"device.type": "mobile"}, {"language": "de"}]}, True),
    ({"any": [{"device.type": "desktop"}, {"language": "en"}]}, False),
    ({"not": {"visitor.attributes.late_payer": True}}, False),
    ({"not": [{"language": "de"}, {"device.type": "desktop"}]}, True),  # not (all of them)
    ({"page": {"path": "/products/*", "query": {"ref": "abc"}}}, True),
    ({"visitor": {"stage": "lead", "attributes": {"tier": "gold"}}}, True),
    ({"campaign": {"newsletter": {"converted": True, "seen": True}}}, True),
    ({"context": {"cart_value": {"gt": 50}, "page_type": "cart"}}, False),
]


@pytest.mark.parametrize(("condition", "expected"), CASES)
def test_every_field_and_matcher(condition: dict[str, Any], expected: bool) -> None:
    assert holds(condition) is expected


def test_every_field_has_a_case() -> None:
    used = set()
    for condition, _ in CASES:
        for name in _names(condition):
            used.add(next(f for f in FIELDS if name == f or name.startswith(f + ".")))
    assert used == set(FIELDS)


def _names(condition: Any) -> list[str]:
    from touchpoint.audience.conditions import flatten

    if isinstance(condition, list):
        return [n for c in condition for n in _names(c)]
    out = []
    for name, value in flatten(condition):
        out.extend(_names(value) if name in ("all", "any", "not") else [name])
    return out


def test_explanations_name_the_failing_condition() -> None:
    condition = compile_one(
        {"page.path": "/products/*", "visitor.visits": {"gte": 5}, "language": "de"}
    )
    assert explain(condition, facts()) == "visitor.visits gte 5 (it is 3)"
    assert explain(condition, facts(path="/cart")) == "page.path is /products/* (it is '/cart')"
    assert explain(compile_one({"language": "de"}), facts()) is None
    anyone = compile_one({"any": [{"language": "en"}, {"device.type": "desktop"}]})
    assert explain(anyone, facts()) == "none of: language is en; device.type is desktop"
    excluded = compile_one({"not": {"visitor.attributes.late_payer": True}})
    assert explain(excluded, facts()) == "excluded: visitor.attributes.late_payer is true"
    schedule = compile_one({"schedule": {"weekdays": ["sat", "sun"]}})
    assert explain(schedule, facts()) == "schedule on sat, sun (it is 'Mon 2026-11-23 10:30')"


def test_an_unknown_country_says_why() -> None:
    country = compile_one({"country": ["AT", "CH"]})
    assert explain(country, facts(geolocation=FixedCountry("DE"))) == (
        "country is AT or CH (it is 'DE')"
    )
    assert explain(country, facts(geolocation=None)) == (
        "country is AT or CH (country unknown: no geolocation source, setting geoip_database"
        " is empty)"
    )
    either = compile_one({"any": [{"country": "CH"}, {"language": "en"}]})
    assert explain(either, facts(geolocation=None)) == (
        "none of: country is CH (country unknown: no geolocation source, setting"
        " geoip_database is empty); language is en"
    )


def test_a_condition_lists_the_consent_it_needs() -> None:
    assert compile_one({"page.path": "/x"}).needs == frozenset()
    assert compile_one({"any": [{"visitor.visits": 1}, {"page.path": "/"}]}).needs == {
        "personalisation"
    }
    assert compile_one({"campaign.newsletter.seen": True}).needs == {"marketing"}


def test_a_page_reached_from_the_site_without_a_profile_is_internal() -> None:
    f = facts(referrer="https://shop.example/cart", query="?utm_source=x", profile=None)
    assert f.touch.channel == "internal"


def test_in_site_navigation_keeps_the_visits_touch() -> None:
    f = facts(referrer="https://shop.example/", query="")
    assert f.touch == PROFILE.last_touch


def test_device_is_parsed_once_per_user_agent() -> None:
    from touchpoint.audience.facts import devices

    devices.cache.clear()
    assert facts().device.type == "mobile"
    assert facts().device.os == "iOS"
    assert list(devices.cache) == [IPHONE]


path_segment = st.text(alphabet="abcxyz-.", min_size=1, max_size=6)
paths = st.lists(path_segment, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts))


@given(paths)
def test_a_literal_pattern_matches_exactly_itself(path: str) -> None:
    assert re.fullmatch(glob_regex(path, segments=True), path)
    assert not re.fullmatch(glob_regex(path, segments=True), path + "x")


@given(paths, path_segment)
def test_star_stays_within_a_segment(prefix: str, tail: str) -> None:
    star = glob_regex(prefix + "/*", segments=True)
    assert re.fullmatch(star, f"{prefix}/{tail}")
    assert not re.fullmatch(star, f"{prefix}/{tail}/{tail}")
    assert re.fullmatch(glob_regex(prefix + "/**", segments=True), f"{prefix}/{tail}/{tail}")


@given(st.text(max_size=12), st.text(max_size=12))
def test_glob_special_characters_are_literal(a: str, b: str) -> None:
    literal = (a + "." + b).replace("*", "").replace("?", "")
    assert re.fullmatch(glob_regex(literal, segments=False), literal, re.DOTALL)
    assert not re.fullmatch(glob_regex("a.b", segments=False), "axb")


def reference_glob(pattern: str, value: str, *, segments: bool) -> bool:
    """A slow, obviously correct glob matcher to check the regex translation against."""

    @functools.cache
    def match(p: int, v: int) -> bool:
        if p == len(pattern):
            return v == len(value)
        if pattern.startswith("**", p):
            return any(match(p + 2, k) for k in range(v, len(value) + 1))
        if pattern[p] == "*":
            ks = range(v, len(value) + 1)
            return any(match(p + 1, k) for k in ks if not (segments and "/" in value[v:k]))
        if v == len(value):
            return False
        if pattern[p] == "?":
            return not (segments and value[v] == "/") and match(p + 1, v + 1)
        return pattern[p] == value[v] and match(p + 1, v + 1)

    return match(0, 0)


@settings(max_examples=400)
@given(
    st.text(alphabet="ab/*?", max_size=9),
    st.text(alphabet="ab/", max_size=12),
    st.booleans(),
)
def test_globs_match_like_the_reference(pattern: str, value: str, segments: bool) -> None:
    regex = re.compile(glob_regex(pattern, segments=segments) + r"\Z")
    assert bool(regex.match(value)) is reference_glob(pattern, value, segments=segments)


def test_many_stars_do_not_backtrack() -> None:
    # Before atomic groups this took about half a minute on the event loop.
    for pattern, value in [("*a*a*a*a*b", "a" * 2000), ("/**a**a**a**b", "/" + "a" * 2000)]:
        assert not re.match(glob_regex(pattern, segments=True) + r"\Z", value)


def test_a_quoted_date_means_the_whole_day() -> None:
    last_minute = facts()  # 10:30 on 2026-11-23
    assert holds({"schedule": {"until": "2026-11-23"}}, last_minute)
    assert not holds({"schedule": {"from": "2026-11-24"}}, last_minute)


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ({"hours": "09:00-24:30"}, "is not a time span of a day"),
        ({"until": dt.datetime(2026, 1, 1, tzinfo=BERLIN)}, "has a UTC offset"),
    ],
)
def test_schedule_mistakes(schedule: dict[str, Any], message: str) -> None:
    problems: list[str] = []
    Compiler(lambda key, msg: problems.append(msg), interests=frozenset()).conditions(
        {"schedule": schedule}, "audience"
    )
    assert message in problems[0]
