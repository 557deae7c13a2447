"""The channel a visit came through, after Google Analytics 4's default channel group.

GA4's default channel group is the grouping marketers know from their reports ("[GA4] Default
channel group", support.google.com/analytics/answer/9756891): a visit's *source* (``utm_source``,
else the referrer's host) and *medium* (``utm_medium``, else ``referral`` for a referrer and
``(none)`` for none) are tested against rules in a fixed order, the first that holds names the
channel. :func:`classify` follows those rules and their order. Where Touchpoint differs, the
rule says so (a paid medium that names its kind, web mail referrers, ``newsletter``,
ad-platform click ids); docs/rules.md#channels has the table.

Conditions and scoring rules may also name a *group* of channels: ``social`` is organic and
paid social, ``search`` organic and paid search, ``paid`` every paid channel (:data:`GROUPS`).
Those were the channel values before the grouping followed GA4, so rules written for them keep
their meaning, and a visit stored then (``first_touch`` with ``social``) still matches.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# The channels, GA4's names in snake case; ``internal`` is ours (docs/rules.md#channels).
CHANNELS = (
    "direct",
    "cross_network",
    "paid_shopping",
    "paid_search",
    "paid_social",
    "paid_video",
    "display",
    "paid_other",
    "organic_shopping",
    "organic_social",
    "organic_video",
    "organic_search",
    "email",
    "affiliates",
    "referral",
    "audio",
    "sms",
    "mobile_push",
    "unassigned",
    "internal",
)
PAID = frozenset(
    {
        "cross_network",
        "paid_shopping",
        "paid_search",
        "paid_social",
        "paid_video",
        "display",
        "paid_other",
        "audio",
    }
)
# Group names a condition may use; each also matches itself, the value stored before.
GROUPS: dict[str, frozenset[str]] = {
    "search": frozenset({"search", "organic_search", "paid_search"}),
    "social": frozenset({"social", "organic_social", "paid_social"}),
    "paid": frozenset({"paid", *PAID}),
}
VALUES = (*CHANNELS, *GROUPS)  # what a rules file may write

# GA4: Medium matches regex ^(.*cp.*|ppc|retargeting|paid.*)$
PAID_MEDIUM = re.compile(r"^(.*cp.*|ppc|retargeting|paid.*)$")
DISPLAY_MEDIUMS = frozenset({"display", "banner", "expandable", "interstitial", "cpm"})
SOCIAL_MEDIUMS = frozenset(
    {"social", "social-network", "social-media", "sm", "social network", "social media"}
)
EMAIL_NAMES = frozenset({"email", "e-mail", "e_mail", "e mail"})
SHOP_CAMPAIGN = re.compile(r"^(.*(([^a-df-z]|^)shop|shopping).*)$")
# Touchpoint: a paid medium that names its kind decides it, whatever the source (GA4 calls
# utm_medium=paid_social from a source not on its list of social sites "Paid Other").
PAID_KINDS = {
    "paid_social": "paid_social",
    "paid-social": "paid_social",
    "paidsocial": "paid_social",
    "social_paid": "paid_social",
    "paid_search": "paid_search",
    "paid-search": "paid_search",
    "paidsearch": "paid_search",
    "paid_video": "paid_video",
    "paid_shopping": "paid_shopping",
}
# Click ids an ad platform adds to its ads' links (not Facebook's fbclid: Facebook adds it to
# every outbound link, posts included). The source and medium they stand for, as GA4 reads
# Google Ads' auto-tagging.
AD_CLICK_IDS = {
    "gclid": ("google", "cpc"),
    "gbraid": ("google", "cpc"),
    "wbraid": ("google", "cpc"),
    "msclkid": ("bing", "cpc"),
    "ttclid": ("tiktok", "cpc"),
    "li_fat_id": ("linkedin", "cpc"),
    "twclid": ("twitter", "cpc"),
}

# The lists of sites. A source matches when it is one of the names (``utm_source=fb``) or a
# host with one of the domains as a label sequence in it (``m.facebook.com``, ``www.google.de``).
SEARCH_NAMES = frozenset(
    {"google", "bing", "duckduckgo", "yahoo", "ecosia", "qwant", "baidu", "yandex"}
    | {"startpage", "brave", "ask", "naver", "seznam"}
)
SEARCH_DOMAINS = (
    "google",
    "bing",
    "duckduckgo",
    "yahoo",
    "ecosia",
    "qwant",
    "baidu",
    "yandex",
    "startpage",
    "search.brave",
    "ask.com",
    "naver",
    "seznam",
)
SOCIAL_NAMES = frozenset(
    {"facebook", "fb", "meta", "instagram", "ig", "linkedin", "twitter", "x", "tiktok"}
    | {"pinterest", "reddit", "xing", "mastodon", "threads", "bluesky", "bsky", "snapchat"}
    | {"whatsapp", "telegram", "tumblr", "quora", "vk", "weibo", "discord", "messenger"}
)
SOCIAL_DOMAINS = (
    "facebook",
    "fb.com",
    "fb.me",
    "messenger.com",
    "instagram",
    "t.co",
    "twitter",
    "x.com",
    "linkedin",
    "lnkd.in",
    "pinterest",
    "pin.it",
    "tiktok",
    "reddit",
    "xing",
    "mastodon",
    "threads.net",
    "threads.com",
    "bsky",
    "snapchat",
    "tumblr",
    "quora",
    "vk.com",
    "weibo",
    "discord",
    "whatsapp",
    "telegram",
    "t.me",
)
VIDEO_NAMES = frozenset({"youtube", "yt", "vimeo", "twitch", "dailymotion", "wistia"})
VIDEO_DOMAINS = ("youtube", "youtu.be", "vimeo", "twitch", "dailymotion", "wistia")
SHOPPING_NAMES = frozenset({"amazon", "ebay", "etsy", "idealo", "otto", "zalando", "walmart"})
SHOPPING_DOMAINS = ("amazon", "ebay", "etsy", "idealo", "shopping.google", "walmart", "otto.de")
# Touchpoint: a referrer from web mail is e-mail (GA4 has no list of mail sites).
EMAIL_DOMAINS = (
    "mail.google",
    "outlook.live",
    "outlook.office",
    "outlook.office365",
    "mail.yahoo",
    "webmail",
    "gmx",
    "web.de",
    "t-online",
    "mail.proton",
)


def _on(source: str, names: frozenset[str], domains: tuple[str, ...]) -> bool:
    if source in names:
        return True
    labels = "." + source + "."
    return "." in source and any("." + d + "." in labels for d in domains)


def source_and_medium(
    referrer_host: str, utm: dict[str, str], query: dict[str, str]
) -> tuple[str, str]:
    """GA4's source and medium of a visit, lowercased: from the UTM tags; else from an ad
    platform's click id; else the referrer's host and ``referral`` (web mail: ``email``);
    else ``(direct)`` and ``(none)``. UTM tags without a medium give ``(not set)``."""
    source = utm.get("source", "").strip().casefold()
    medium = utm.get("medium", "").strip().casefold()
    if medium:
        return source or referrer_host or "(direct)", medium
    for click_id, (platform, paid) in AD_CLICK_IDS.items():
        if click_id in query:
            return source or platform, paid
    if utm:
        return source or referrer_host or "(direct)", "(not set)"
    if referrer_host:
        if _on(referrer_host, frozenset(), EMAIL_DOMAINS):
            return "email", "email"  # before the lists: mail.google.com is no search
        return referrer_host, "referral"
    return "(direct)", "(none)"


def classify(referrer_host: str, utm: dict[str, str], query: dict[str, str]) -> str:
    """The channel (one of CHANNELS but ``internal``) of a visit from outside the site."""
    source, medium = source_and_medium(referrer_host.casefold(), utm, query)
    campaign = utm.get("campaign", "").casefold()
    paid = bool(PAID_MEDIUM.match(medium))
    shopping = _on(source, SHOPPING_NAMES, SHOPPING_DOMAINS) or bool(SHOP_CAMPAIGN.match(campaign))
    social = _on(source, SOCIAL_NAMES, SOCIAL_DOMAINS)
    search = _on(source, SEARCH_NAMES, SEARCH_DOMAINS)
    video = _on(source, VIDEO_NAMES, VIDEO_DOMAINS)
    if source == "(direct)" and medium in ("(none)", "(not set)"):
        return "direct"
    if "cross-network" in campaign:
        return "cross_network"
    if medium in PAID_KINDS:
        return PAID_KINDS[medium]
    if paid and shopping:
        return "paid_shopping"
    if paid and search:
        return "paid_search"
    if paid and social:
        return "paid_social"
    if paid and video:
        return "paid_video"
    if medium in DISPLAY_MEDIUMS:
        return "display"
    if paid:
        return "paid_other"
    if shopping:
        return "organic_shopping"
    if social or medium in SOCIAL_MEDIUMS:
        return "organic_social"
    if video or "video" in medium:
        return "organic_video"
    if search or medium == "organic":
        return "organic_search"
    if source in EMAIL_NAMES or medium in EMAIL_NAMES or medium == "newsletter":
        return "email"
    if medium in ("affiliate", "affiliates"):
        return "affiliates"
    if medium in ("referral", "app", "link"):
        return "referral"
    if medium == "audio":
        return "audio"
    if source == "sms" or medium == "sms":
        return "sms"
    if medium.endswith("push") or "mobile" in medium or "notification" in medium:
        return "mobile_push"
    if source == "firebase":
        return "mobile_push"
    return "unassigned"


def expand(wanted: Iterable[str]) -> frozenset[str]:
    """The channels a condition's values match: a group stands for its members."""
    return frozenset(c for value in wanted for c in GROUPS.get(value, (value,)))
