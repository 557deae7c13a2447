"""Preview links for marketers: ``?tp_preview=<token>`` shows one campaign's variant on the live
site whatever its audience, schedule or frequency say, records nothing, and prints the decision
trace in the browser console (docs/rules.md#preview).

The token is signed with the server's secret key (itsdangerous, its own salt, so a visitor
cookie can never pass as a token or the other way round) and carries its expiry time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

from ..audience.facts import Facts
from ..errors import RequestError
from ..rules.campaigns import Campaign, Variant
from ..rules.ruleset import Ruleset
from .targeting import Decision, Outcome, trace

MAX_TOKEN = 512


@dataclass(frozen=True)
class Preview:
    campaign: str
    variant: str | None  # None: the first variant that shows something
    expires: int


class Previews:
    def __init__(self, secret_key: str) -> None:
        self.serializer = URLSafeSerializer(secret_key, salt="touchpoint.preview")

    def token(self, campaign: str, variant: str | None, *, expires: int) -> str:
        return str(self.serializer.dumps({"c": campaign, "v": variant, "e": expires}))

    def read(self, value: Any, *, now: int) -> Preview:
        """The preview a token asks for; a 400 for a forged, malformed or expired token."""
        if not isinstance(value, str) or len(value) > MAX_TOKEN:
            raise RequestError("preview must be a preview token")
        try:
            data = self.serializer.loads(value)
            preview = Preview(str(data["c"]), data["v"], int(data["e"]))
        except (BadSignature, KeyError, TypeError, ValueError):
            raise RequestError(
                "preview link is invalid; create one with touchpoint preview"
            ) from None
        if preview.expires < now:
            raise RequestError("preview link has expired; create a new one with touchpoint preview")
        return preview


def link(url: str, token: str) -> str:
    """``url`` (a page of the site) with the preview token in its query, before any fragment."""
    fragment = ""
    if "#" in url:
        url, fragment = url.split("#", 1)
        fragment = "#" + fragment
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}tp_preview={token}{fragment}"


def resolve(preview: Preview, rules: Ruleset) -> tuple[Campaign, Variant]:
    """The campaign and variant a preview shows, from the rules as they are now."""
    campaign = rules.by_id.get(preview.campaign)
    if campaign is None:
        raise RequestError(f"preview: no campaign {preview.campaign!r} in the rules", status=422)
    shown = [v for v in campaign.variants if not v.control]
    variant = next((v for v in campaign.variants if v.id == preview.variant), None)
    if variant is None:
        if preview.variant is not None or not shown:
            raise RequestError(
                f"preview: {campaign.id} has no variant {preview.variant!r}", status=422
            )
        variant = shown[0]
    return campaign, variant


def outcome(
    campaign: Campaign, variant: Variant, rules: Ruleset, facts: Facts, slots: tuple[str, ...]
) -> tuple[Outcome, list[str]]:
    """The forced outcome, and the lines of the decision the visitor would really get."""
    forced = Outcome()
    decision = Decision(campaign, variant)
    if campaign.kind == "popup":
        forced.popups.append(decision)
    elif campaign.slot in slots:
        forced.slots[campaign.slot] = decision
    real = trace(rules, facts, slots=slots)
    lines = []
    if campaign.kind == "content" and campaign.slot not in slots:
        lines.append(f"this page has no slot {campaign.slot!r}: nothing to fill")
    for row in real["campaigns"]:
        verdict = "would be chosen" if row["chosen"] else f"not chosen: {row['reason']}"
        # The file's name only: the server's folders are none of the browser's business.
        lines.append(f"{row['campaign']} ({os.path.basename(row['source'])}): {verdict}")
    return forced, lines
