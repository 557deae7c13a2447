"""Consent categories and what each one allows.

``necessary`` needs no consent and stores nothing about the visitor. The others are off until
granted (ePrivacy Directive Art. 5(3), GDPR Art. 6(1)(a)):

- ``measurement``: page views and behaviour statistics;
- ``personalisation``: a profile used to tailor content and score leads;
- ``marketing``: popups that remember the visitor (seen / closed / converted), so that a closed
  popup stays closed.

The recognition cookie exists only while at least one of them is granted.
"""

from __future__ import annotations

from typing import Any

from ..store import CampaignHistory, VisitorRecord
from ..store.records import CATEGORIES, Profile
from ..syntax.shapes import Field, Shape

GPC_OFF = frozenset({"personalisation", "marketing"})  # kept off by Global Privacy Control
METHODS = ("api", "banner-accept-all", "banner-reject-all", "banner-custom", "tcf")


def honour_gpc(granted: frozenset[str], method: str, *, gpc: bool) -> frozenset[str]:
    """What an answer grants under Global Privacy Control (``Sec-GPC: 1``): "accept all" in the
    banner is not an explicit opt-in to profiling and marketing, so it grants measurement only.
    A choice made category by category (``banner-custom``) or by the site's consent tool is one
    and stands. https://privacycg.github.io/gpc-spec/"""
    if gpc and method == "banner-accept-all":
        return granted - GPC_OFF
    return granted


# A consent answer (POST /tp/v1/consent).
ANSWER = Shape(
    (
        Field(
            "granted",
            "names",
            "The categories granted; the others are denied.",
            required=True,
            choices=CATEGORIES,
            noun="consent categories",
            max_items=len(CATEGORIES),
            hint="must be a list of category names",
        ),
        Field("method", "choice", "How the answer was given (default api).", choices=METHODS),
    )
)


def granted(record: VisitorRecord | None, revision: int) -> frozenset[str]:
    """Categories the visitor granted for the current consent text; none after a revision bump."""
    if record is None or record.consent_revision != revision:
        return frozenset()
    return record.consent_granted


def usable(
    record: VisitorRecord | None, revision: int
) -> tuple[Profile | None, dict[str, CampaignHistory] | None]:
    """What targeting may use of a visitor: the profile with ``personalisation``, the campaign
    history with ``marketing``; None for what was not granted."""
    current = granted(record, revision)
    if record is None:
        return None, None
    return (
        record.profile if "personalisation" in current else None,
        record.campaigns if "marketing" in current else None,
    )


def state(record: VisitorRecord | None, revision: int, *, refused: bool = False) -> dict[str, Any]:
    """The consent part of a decide response: what the snippet should do about consent.
    ``refused``: the browser holds the refusal cookie for this revision, so nobody asks again."""
    current = granted(record, revision)
    return {
        "revision": revision,
        "granted": sorted(current),
        "prompt": (record is None or record.consent_revision != revision) and not refused,
        # Whether the browser holds a recognition cookie the server knows, so that a refusal
        # after a revision bump is sent (and expires it) while other refusals are not.
        "known": record is not None,
    }
