"""The record types the store reads and writes: a visitor's profile, how a visit arrived, a
counted page view, the identifiers of a person, and new visitor ids.

They are plain data. How a page view, an activity or a merge moves a profile on is the
profiles package's business (profiles.model, profiles.rules); the store receives that as
functions (:class:`ProfileMoves`), so it knows no scoring and no lifecycle.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any, Protocol

from .activity import Activity, Effects

VISITOR_ID_BYTES = 16
# The consent categories a consent log entry grants or denies (consent.categories).
CATEGORIES = ("measurement", "personalisation", "marketing")

STAGES = ("visitor", "lead", "new-customer", "customer", "inactive", "win-back")


@dataclass(frozen=True)
class Touch:
    """How a visit arrived: its channel, the referring host and the UTM tags."""

    channel: str
    host: str
    utm: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"channel": self.channel, "host": self.host, "utm": self.utm}

    @classmethod
    def from_json(cls, data: Any) -> Touch | None:
        if not isinstance(data, dict):
            return None
        return cls(str(data.get("channel", "")), str(data.get("host", "")), data.get("utm") or {})


@dataclass(frozen=True)
class Profile:
    first_seen_at: int | None = None
    last_seen_at: int | None = None
    visits: int = 0
    page_views: int = 0
    session_started_at: int | None = None
    session_page_views: int = 0
    stage: str = "visitor"
    score: float = 0.0
    identified: bool = False
    first_touch: Touch | None = None
    last_touch: Touch | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    interests: dict[str, int] = field(default_factory=dict)
    last_category: str | None = None
    last_product: str | None = None
    first_name: str | None = None
    # Lead scoring and the lifecycle (profiles/scoring.py, profiles/lifecycle.py).
    score_at: int | None = None  # when ``score`` was last brought up to date; decay runs from it
    purchases: int = 0
    last_purchase_at: int | None = None
    stage_since: int | None = None  # when the stage last changed; None: since the first visit
    scoring: dict[str, Any] = field(default_factory=dict)  # per-rule counters, fired thresholds

    def evolve(self, **changes: Any) -> Profile:
        """A copy with ``changes``: ``dataclasses.replace`` without its per-field walk and
        ``__init__`` call, which cost more than the rest of moving a profile on through a page
        view (issue 19). Only field names are accepted, as with ``replace``."""
        unknown = changes.keys() - _PROFILE_FIELDS
        if unknown:
            raise TypeError(f"Profile has no field {sorted(unknown)[0]!r}")
        copy = object.__new__(Profile)
        copy.__dict__.update(self.__dict__, **changes)
        return copy

    @property
    def returning(self) -> bool:
        return self.visits > 1

    @property
    def top_interest(self) -> str | None:
        if not self.interests:
            return None
        return max(sorted(self.interests), key=lambda name: self.interests[name])

    def data_json(self) -> dict[str, Any]:
        """The part of the profile stored as one JSON column (read together, rarely queried)."""
        data: dict[str, Any] = {}
        if self.first_touch:
            data["first_touch"] = self.first_touch.as_json()
        if self.last_touch:
            data["last_touch"] = self.last_touch.as_json()
        for name in ("attributes", "interests", "scoring", "purchases"):
            if getattr(self, name):
                data[name] = getattr(self, name)
        for name in _OPTIONAL_DATA:
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        return data

    def as_json(self) -> dict[str, Any]:
        """The whole profile as plain JSON (webhook payloads, exports); the score as stored,
        see :func:`touchpoint.scoring.score_at` for its value at a given time."""
        data = {
            name: getattr(self, name)
            for name in (
                "first_seen_at",
                "last_seen_at",
                "visits",
                "page_views",
                "stage",
                "stage_since",
                "score",
                "score_at",
                "identified",
                "purchases",
                "last_purchase_at",
                "attributes",
                "interests",
                "last_category",
                "last_product",
                "first_name",
            )
        }
        data["first_touch"] = self.first_touch.as_json() if self.first_touch else None
        data["last_touch"] = self.last_touch.as_json() if self.last_touch else None
        return data

    @staticmethod
    def data_fields(data: dict[str, Any]) -> dict[str, Any]:
        """Keyword arguments for :class:`Profile` from the JSON column."""
        return {
            "first_touch": Touch.from_json(data.get("first_touch")),
            "last_touch": Touch.from_json(data.get("last_touch")),
            "attributes": data.get("attributes") or {},
            "interests": data.get("interests") or {},
            "last_category": data.get("last_category"),
            "last_product": data.get("last_product"),
            "first_name": data.get("first_name"),
            "score_at": data.get("score_at"),
            "purchases": data.get("purchases") or 0,
            "last_purchase_at": data.get("last_purchase_at"),
            "stage_since": data.get("stage_since"),
            "scoring": data.get("scoring") or {},
        }


_PROFILE_FIELDS = frozenset(Profile.__dataclass_fields__)
_OPTIONAL_DATA = (
    "last_category",
    "last_product",
    "first_name",
    "score_at",
    "last_purchase_at",
    "stage_since",
)


# What conditions see of a visitor without the personalisation consent: nothing is known, so
# they count as a first-time visitor on their first page (docs/rules.md, "Consent").
ANONYMOUS = Profile(visits=1, page_views=1, session_page_views=1)


@dataclass(frozen=True)
class PageViewUpdate:
    """What one counted page view adds to a profile."""

    at: int
    touch: Touch | None  # None when the visitor came from another page of the site
    interests: tuple[str, ...] = ()
    category: str | None = None
    product: str | None = None
    path: str | None = None  # for the event log


@dataclass(frozen=True)
class Identifier:
    kind: str  # one of KINDS
    hash: str
    clear: str | None = None  # the normalised value, kept only where data_depth allows


@dataclass(frozen=True)
class Identity:
    """What one identify call says about the person: their identifiers and first name."""

    identifiers: tuple[Identifier, ...]
    first_name: str | None = None
    # True when the shop vouched for it (a signed token, docs/security.md#verified-identity):
    # only then may the browser join the profile that already holds the identifiers.
    verified: bool = False


def new_visitor_id() -> str:
    return secrets.token_urlsafe(VISITOR_ID_BYTES)


class ProfileMoves(Protocol):
    """How the domain moves a profile on, called by the store inside its transactions so that
    what is read and what is written are one unit (profiles.rules.ProfileRules implements it)."""

    def page_view(
        self, profile: Profile, view: PageViewUpdate, *, session_idle: int, visitor_id: str
    ) -> tuple[Profile, Effects]: ...

    def record(
        self, profile: Profile, activities: Sequence[Activity], *, now: int, visitor_id: str
    ) -> tuple[Profile, Effects]: ...

    def merge(self, known: Profile, anonymous: Profile, *, now: int) -> Profile: ...

    @property
    def timezone(self) -> tzinfo:
        """The site's time zone: the rollups count per day in it."""
        ...
