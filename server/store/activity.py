"""What a visitor did, as the profile, the lead score and the lifecycle see it.

An :class:`Activity` comes from the snippet (page views, dwell time, scroll depth, clicks, custom
events, form submissions), from identification, or from the server API (purchases, newsletter
opens, e-mail clicks, webinars, custom events). The store records each one in the event log and
moves the profile on; what that changed beyond the profile comes back as :class:`Effects`, so the
caller can queue the webhooks in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Activity types the snippet may send (with measurement or personalisation consent).
SITE_TYPES = ("page_view", "dwell", "scroll", "click", "custom", "form_submit")
# Activity types the server API may push.
API_TYPES = ("purchase", "newsletter_open", "email_click", "webinar", "custom")
# Recorded by the server itself.
SERVER_TYPES = ("identify",)
TYPES = tuple(dict.fromkeys(SITE_TYPES + API_TYPES + SERVER_TYPES))


@dataclass(frozen=True)
class Activity:
    """One thing a visitor did at ``at`` (Unix seconds)."""

    type: str
    at: int
    path: str | None = None
    name: str | None = None  # the click's data-tp-track name, a custom event's or form's name
    value: float | None = None  # dwell seconds, scroll percent, purchase value
    props: Mapping[str, Any] = field(default_factory=dict)  # flat: str, number or bool values
    source: str = "site"  # "site" (the snippet) or "api"


@dataclass(frozen=True)
class StageChange:
    before: str
    after: str
    reason: str
    at: int


@dataclass
class Effects:
    """What recording activities changed beyond the profile itself."""

    crossed: list[str] = field(default_factory=list)  # score thresholds crossed upwards
    thresholds: list[dict[str, Any]] = field(default_factory=list)  # each crossing's payload
    stage_changes: list[StageChange] = field(default_factory=list)
    webhooks: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    # (endpoint name, event name, payload) asked for by threshold actions
