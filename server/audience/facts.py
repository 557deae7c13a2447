"""What a decision may know about one page view: the request's facts, derived once and lazily.

A :class:`Facts` object is built per decide request from the page context the snippet sends,
two request headers (User-Agent, Accept-Language), the client's address (for the country) and,
with consent, the visitor's profile and campaign history. Derived values (the parsed query, the
visit's channel, the device, the country) are computed the first time a condition asks for
them, so campaigns that do not look at the device never pay for parsing the user agent.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import user_agents

from ..store import CampaignHistory
from ..store.records import ANONYMOUS, Profile, Touch
from .channels import classify
from .geolocation import Geolocation, unknown_country

if TYPE_CHECKING:
    from ..profiles.rules import ProfileRules

DEVICE_TYPES = ("desktop", "mobile", "tablet", "bot")
UTM_KEYS = ("source", "medium", "campaign", "term", "content")


@dataclass(frozen=True)
class Device:
    type: str  # one of DEVICE_TYPES
    os: str
    browser: str


class DeviceCache:
    """User-agent parsing costs about a millisecond; the derived fields are cached per string."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.cache: OrderedDict[str, Device] = OrderedDict()

    def __call__(self, user_agent: str) -> Device:
        device = self.cache.get(user_agent)
        if device is not None:
            self.cache.move_to_end(user_agent)
            return device
        ua = user_agents.parse(user_agent)
        kind = (
            "bot"
            if ua.is_bot
            else "tablet"
            if ua.is_tablet
            else "mobile"
            if ua.is_mobile
            else "desktop"
        )
        device = Device(kind, ua.os.family, ua.browser.family)
        self.cache[user_agent] = device
        if len(self.cache) > self.size:
            self.cache.popitem(last=False)
        return device


devices = DeviceCache()


@dataclass(frozen=True)
class PageView:
    """The page context a decide request carries, validated by the view."""

    path: str
    title: str = ""
    query: str = ""  # location.search, with or without the leading "?"
    referrer: str = ""  # document.referrer
    host: str = ""  # the site's own host, to tell in-site navigation from a referral
    context: dict[str, Any] = field(default_factory=dict)
    user_agent: str = ""
    accept_language: str = ""
    # The client's address (behind trusted proxies, from X-Forwarded-For): only its network is
    # looked up for the country, and only when a condition asks; nothing stores it.
    address: str = ""


class Facts:
    """The inputs of one decision.

    Without the personalisation consent ``profile`` is :data:`ANONYMOUS` and ``known`` False;
    without the marketing consent ``history`` is None (no campaign history is known).
    """

    def __init__(
        self,
        view: PageView,
        *,
        now: int,
        tz: ZoneInfo,
        profile: Profile | None = None,
        history: dict[str, CampaignHistory] | None = None,
        session_idle: int = 1800,
        profile_rules: ProfileRules | None = None,
        geolocation: Geolocation | None = None,
    ) -> None:
        self.view = view
        self.path = view.path
        self.context = view.context
        self.now = now
        self.tz = tz
        self.profile = profile or ANONYMOUS
        self.known = profile is not None
        self.history = history
        self.session_idle = session_idle
        self.profile_rules = profile_rules
        self.geolocation = geolocation
        self.empty_pools: frozenset[str] = frozenset()  # coupon pools without a free code

    @cached_property
    def score_and_stage(self) -> tuple[float, str]:
        """The lead score (decayed) and the lifecycle stage as they stand now; as stored when
        no profile rules are given."""
        if self.profile_rules is None or not self.known:
            return self.profile.score, self.profile.stage
        return self.profile_rules.read(self.profile, self.now)

    @property
    def score(self) -> float:
        return self.score_and_stage[0]

    @property
    def stage(self) -> str:
        return self.score_and_stage[1]

    @cached_property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(self.view.query.lstrip("?"), keep_blank_values=True))

    @cached_property
    def referrer_host(self) -> str:
        try:
            host = urlsplit(self.view.referrer).hostname or ""
        except ValueError:
            return ""
        return host.removeprefix("www.")

    @cached_property
    def internal(self) -> bool:
        """Whether the visitor came from another page of this site."""
        own = self.view.host.split(":")[0].removeprefix("www.")
        return bool(own) and self.referrer_host == own

    @cached_property
    def touch(self) -> Touch:
        """How this visit arrived: from the page's referrer and UTM tags, or, when the visitor
        navigated within the site, the touch that started the visit (known with a profile).
        The decide view stores the first kind only, so what is decided is what is stored."""
        if self.internal:  # UTM tags on in-site links would split one visit's source: ignored
            return self.profile.last_touch or Touch("internal", "", {})
        utm = {k: v for k in UTM_KEYS if (v := self.query.get("utm_" + k))}
        return Touch(classify(self.referrer_host, utm, self.query), self.referrer_host, utm)

    @cached_property
    def device(self) -> Device:
        return devices(self.view.user_agent)

    @cached_property
    def languages(self) -> tuple[str, ...]:
        """The visitor's languages from Accept-Language, most preferred first, lowercased."""
        out = []
        for part in self.view.accept_language.split(",")[:8]:
            tag = part.split(";")[0].strip().lower()
            if tag and tag != "*":
                out.append(tag)
        return tuple(out)

    @cached_property
    def country(self) -> str | None:
        """The visitor's country (ISO 3166-1 alpha-2) from the address's network, if known."""
        if self.geolocation is None:
            return None
        return self.geolocation.country(self.view.address)

    def country_unknown(self) -> str:
        """Why :attr:`country` is None, for explanations."""
        return unknown_country(self.geolocation, self.view.address)

    @cached_property
    def local(self) -> dt.datetime:
        """The time of the decision in the site's time zone (for schedules)."""
        return dt.datetime.fromtimestamp(self.now, self.tz)
