"""``touchpoint serve`` with its own logic taken out: what decide and events cost with only what
they must read, write and answer (issue 19). The upper bound of their ratios to the floor
routes, since no faster decision, scoring or rendering could make them cheaper than this.

Kept as they are: the request's parsing and checks (rate limit, signed cookie, consent), the
visitor read with its campaign history, the page view's guarded profile update, its event row
and rollups, an events batch's consent read, event rows and profile update, the commits, the
answer (the same bytes). Taken out, each replaced by its first result reused for every later
request: the decision (audiences, caps, variants), the renders and the consent state's answer.
Moving a profile on is reduced to counting the page view and its time (no visit or session
logic, no scoring, no lifecycle), and an events batch leaves the profile as it was.

Runs one worker: ``python -m logicfree serve --port N`` with tests/bench on the PYTHONPATH.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from touchpoint.cli import main
from touchpoint.decide import page
from touchpoint.profiles.rules import ProfileRules
from touchpoint.store.activity import Activity, Effects
from touchpoint.store.records import PageViewUpdate, Profile
from touchpoint.web import decide


def first_result(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` computed once; its first result is every later call's."""
    kept: list[Any] = []

    def reused(*args: Any, **kwargs: Any) -> Any:
        if not kept:
            kept.append(function(*args, **kwargs))
        return kept[0]

    return reused


def counted(
    self: ProfileRules,
    profile: Profile,
    view: PageViewUpdate,
    *,
    session_idle: int,
    visitor_id: str,
) -> tuple[Profile, Effects]:
    return replace(profile, page_views=profile.page_views + 1, last_seen_at=view.at), Effects()


def unchanged(
    self: ProfileRules,
    profile: Profile,
    activities: Sequence[Activity],
    *,
    now: int,
    visitor_id: str,
) -> tuple[Profile, Effects]:
    return profile, Effects()


def without_logic() -> None:
    page.decide_page = first_result(page.decide_page)  # type: ignore[assignment]
    page.render = first_result(page.render)  # type: ignore[assignment]
    decide.consent_state = first_result(decide.consent_state)  # type: ignore[assignment]
    ProfileRules.page_view = counted  # type: ignore[assignment,method-assign]
    ProfileRules.record = unchanged  # type: ignore[assignment,method-assign]


if __name__ == "__main__":
    without_logic()
    sys.exit(main(sys.argv[1:]))
