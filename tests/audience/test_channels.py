"""Channels after GA4's default channel group: a corpus of (source, medium, referrer) with the
channel each gives, the groups conditions and scoring rules name, and the lead-scoring
example's first-visit points for every way a visit comes from social media."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from touchpoint import store
from touchpoint.audience import channels
from touchpoint.audience.conditions import Compiler
from touchpoint.audience.facts import Facts, PageView
from touchpoint.rules import ruleset as rules_module
from touchpoint.store.records import PageViewUpdate, Touch

from ..conftest import consenting_visitor

ROOT = Path(__file__).parent.parent.parent
BERLIN = ZoneInfo("Europe/Berlin")
NOW = 1_800_000_000

# utm_source, utm_medium, the referrer (after " ?" the landing page's other query parameters),
# and the channel; "" for absent.
CORPUS = [
    # Direct: no source, no referrer; UTM tags with neither source nor medium stay direct.
    ("", "", "", "direct"),
    ("", "", " ?utm_campaign=spring", "direct"),
    # Social media, organic: a social source without a medium, a social medium, a referrer.
    ("facebook", "", "", "organic_social"),
    ("Facebook", "", "", "organic_social"),
    ("fb", "", "", "organic_social"),
    ("ig", "", "", "organic_social"),
    ("linkedin", "", "", "organic_social"),
    ("newsletter-friends", "social", "", "organic_social"),
    ("x", "social-media", "", "organic_social"),
    ("facebook", "social", "https://www.facebook.com/", "organic_social"),
    ("", "", "https://m.facebook.com/", "organic_social"),
    ("", "", "https://l.facebook.com/l.php?u=x", "organic_social"),
    ("", "", "https://lm.facebook.com/", "organic_social"),
    ("", "", "https://l.instagram.com/", "organic_social"),
    ("", "", "https://t.co/abc", "organic_social"),
    ("", "", "https://lnkd.in/xyz", "organic_social"),
    ("", "", "https://www.linkedin.com/feed/", "organic_social"),
    ("", "", "https://out.reddit.com/", "organic_social"),
    ("", "", "https://mastodon.social/@shop", "organic_social"),
    ("", "", "https://bsky.app/profile/x", "organic_social"),
    # fbclid is on every outbound Facebook link, posts included: the referrer decides.
    ("", "", "https://m.facebook.com/ ?fbclid=abc", "organic_social"),
    # Social media, paid.
    ("facebook", "cpc", "", "paid_social"),
    ("facebook", "paid", "", "paid_social"),
    ("instagram", "paid_social", "", "paid_social"),
    ("", "paid_social", "", "paid_social"),  # a medium naming its kind, source unknown
    ("newsletter-partner", "paid_social", "", "paid_social"),
    ("meta", "paidsocial", "", "paid_social"),
    ("linkedin", "retargeting", "", "paid_social"),
    ("", "", " ?ttclid=1", "paid_social"),
    ("", "", " ?li_fat_id=1", "paid_social"),
    # Search.
    ("", "", "https://www.google.com/", "organic_search"),
    ("", "", "https://www.google.co.uk/", "organic_search"),
    ("", "", "https://duckduckgo.com/", "organic_search"),
    ("", "", "https://www.ecosia.org/", "organic_search"),
    ("", "", "https://search.brave.com/", "organic_search"),
    ("google", "organic", "", "organic_search"),
    ("anything", "organic", "", "organic_search"),
    ("google", "cpc", "", "paid_search"),
    ("bing", "ppc", "", "paid_search"),
    ("", "", "https://www.google.com/ ?gclid=123", "paid_search"),
    ("", "", " ?gbraid=1", "paid_search"),
    ("", "", " ?msclkid=1", "paid_search"),
    ("", "paid_search", "", "paid_search"),
    ("partner", "paidsearch", "", "paid_search"),
    # Video, shopping, display, other paid, cross-network.
    ("youtube", "cpc", "", "paid_video"),
    ("", "", "https://www.youtube.com/", "organic_video"),
    ("", "", "https://youtu.be/x", "organic_video"),
    ("partner", "video", "", "organic_video"),
    ("amazon", "cpc", "", "paid_shopping"),
    ("x", "cpc", " ?utm_campaign=summer-shopping", "paid_shopping"),
    ("", "", "https://www.idealo.de/", "organic_shopping"),
    ("ebay", "referral", "", "organic_shopping"),
    ("x", "display", "", "display"),
    ("partner", "banner", "", "display"),
    ("partner", "cpm", "", "display"),
    ("google", "display", "", "display"),
    ("partner", "cpc", "", "paid_other"),
    ("x", "cpc", "", "paid_social"),  # X, formerly Twitter
    ("partner", "paid", "", "paid_other"),
    ("google", "cpc", " ?utm_campaign=pmax-cross-network", "cross_network"),
    # E-mail.
    ("newsletter", "email", "", "email"),
    ("newsletter", "e-mail", "", "email"),
    ("email", "", "", "email"),
    ("crm", "newsletter", "", "email"),
    ("", "", "https://mail.google.com/", "email"),
    ("", "", "https://outlook.live.com/", "email"),
    ("", "", "https://webmail.example.net/", "email"),
    # The rest of GA4's channels.
    ("partner", "affiliate", "", "affiliates"),
    ("awin", "affiliates", "", "affiliates"),
    ("", "", "https://blog.example.org/post", "referral"),
    ("partner", "referral", "", "referral"),
    ("partner", "link", "", "referral"),
    ("spotify", "audio", "", "audio"),
    ("sms", "", "", "sms"),
    ("crm", "sms", "", "sms"),
    ("app", "push", "", "mobile_push"),
    ("app", "web-push", "", "mobile_push"),
    ("app", "notification", "", "mobile_push"),
    ("firebase", "", "", "mobile_push"),
    ("partner", "", "", "unassigned"),  # GA4's "(not set)" medium on a source not listed
    ("partner", "print", "", "unassigned"),
    ("", "", "https://blog.example.org/ ?utm_campaign=x", "unassigned"),
]


def page_view(source: str, medium: str, referrer: str) -> Facts:
    """The facts of a landing page on shop.example reached this way."""
    referrer, _, extra = referrer.partition(" ?")
    query = [f"{k}={v}" for k, v in (("utm_source", source), ("utm_medium", medium)) if v]
    view = PageView(
        path="/", host="shop.example", referrer=referrer, query="&".join(query + [extra])
    )
    return Facts(view, now=NOW, tz=BERLIN)


@pytest.mark.parametrize(("source", "medium", "referrer", "channel"), CORPUS)
def test_the_channel_of_a_visit(source: str, medium: str, referrer: str, channel: str) -> None:
    assert page_view(source, medium, referrer).touch.channel == channel


def test_the_corpus_covers_every_channel_but_internal() -> None:
    assert {c for *_, c in CORPUS} == set(channels.CHANNELS) - {"internal"}


@given(
    source=st.text(max_size=20),
    medium=st.text(max_size=20),
    host=st.from_regex(r"([a-z0-9-]{1,10}\.){0,3}[a-z]{2,6}", fullmatch=True) | st.just(""),
    campaign=st.text(max_size=20),
)
def test_every_visit_gets_one_channel(source: str, medium: str, host: str, campaign: str) -> None:
    utm = {k: v for k, v in (("source", source), ("medium", medium), ("campaign", campaign)) if v}
    assert channels.classify(host, utm, {}) in channels.CHANNELS


@pytest.mark.parametrize(
    ("condition", "matches"),
    [
        ("social", {"organic_social", "paid_social", "social"}),
        ("search", {"organic_search", "paid_search", "search"}),
        ("paid", {"paid", *channels.PAID}),
        ("paid_social", {"paid_social"}),
        ("email", {"email"}),
    ],
)
def test_a_group_matches_its_channels_and_its_old_value(condition: str, matches: set[str]) -> None:
    problems: list[str] = []
    compiler = Compiler(lambda key, message: problems.append(message), interests=frozenset())
    compiled = compiler.conditions({"referrer.channel": condition}, "audience")
    assert compiled is not None and problems == []
    for channel in (*channels.CHANNELS, *channels.GROUPS):  # a group: a visit stored before
        facts = page_view("", "", "")
        facts.__dict__["touch"] = Touch(channel, "", {})  # as if the visit came that way
        assert compiled.test(facts) is (channel in matches), channel


SOCIAL_VISITS = [
    ("facebook", "", ""),
    ("facebook", "paid_social", ""),
    ("", "paid_social", ""),
    ("", "", "https://m.facebook.com/"),
    ("", "", "https://l.instagram.com/"),
    ("", "", "https://t.co/abc"),
    ("", "", "https://lnkd.in/xyz"),
    ("newsletter", "social", ""),
]


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    return consenting_visitor(tmp_path / "t.db", at=NOW)


@pytest.mark.parametrize(("source", "medium", "referrer"), SOCIAL_VISITS)
def test_the_scoring_example_gives_a_first_visit_from_social_media_its_points(
    conn: sqlite3.Connection, source: str, medium: str, referrer: str
) -> None:
    """rules/scoring.yaml: +5 for a consented first visit from social media (the seeds)."""
    example = rules_module.load(ROOT / "rules").profile
    touch = page_view(source, medium, referrer).touch
    update = PageViewUpdate(NOW, touch, path="/")
    store.record_page_view(conn, "v1", update, session_idle=1800, rules=example)
    profile = store.profile_of(conn, "v1")
    assert profile is not None and profile.score == 5, touch


@pytest.mark.parametrize(
    ("source", "medium", "referrer"),
    [("", "", ""), ("", "", "https://www.google.com/"), ("newsletter", "email", "")],
)
def test_other_first_visits_get_no_social_points(
    conn: sqlite3.Connection, source: str, medium: str, referrer: str
) -> None:
    example = rules_module.load(ROOT / "rules").profile
    touch = page_view(source, medium, referrer).touch
    store.record_page_view(
        conn, "v1", PageViewUpdate(NOW, touch, path="/"), session_idle=1800, rules=example
    )
    profile = store.profile_of(conn, "v1")
    assert profile is not None and profile.score == 0


def test_docs_list_every_channel_and_the_lists_as_the_code_has_them() -> None:
    text = (ROOT / "docs" / "rules.md").read_text()
    section = text.split("#### Channels\n", 1)[1].split("\n### ", 1)[0]
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| ")]
    documented = {c.strip("`") for row in rows for c in row[0].strip("| ").split(", ")}
    assert set(channels.CHANNELS) <= documented
    lists = {row[0].strip("| "): row for row in rows if len(row) == 3}
    for name, names, domains in [
        ("social", channels.SOCIAL_NAMES, channels.SOCIAL_DOMAINS),
        ("search", channels.SEARCH_NAMES, channels.SEARCH_DOMAINS),
        ("video", channels.VIDEO_NAMES, channels.VIDEO_DOMAINS),
        ("shopping", channels.SHOPPING_NAMES, channels.SHOPPING_DOMAINS),
    ]:
        assert set(lists[name][1].split(", ")) == names, name
        assert set(lists[name][2].strip(" |").split(", ")) == set(domains), name
