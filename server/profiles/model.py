"""The visitor profile targeting reads, and how one page view moves it on.

The profile exists only with the ``personalisation`` consent. ``advance`` is pure: the decide
view uses it to judge a page view by the profile as it stands after that view, and the writer
uses the same function to store it, so what was decided and what is stored cannot drift apart.
"""

from __future__ import annotations

from ..store.records import PageViewUpdate, Profile, Touch


def visit_start(profile: Profile | None, *, now: int, session_idle: int) -> int:
    """When the current visit began: the profile's record of it, or else (no profile) the
    earliest moment from which no idle gap can separate now: an impression at or after it is
    in this visit. Frequency decisions and the stored per-visit counts both use this."""
    if profile is not None and profile.session_started_at is not None:
        return profile.session_started_at
    return now - session_idle + 1


def advance(profile: Profile, view: PageViewUpdate, *, session_idle: int) -> Profile:
    """The profile after ``view``. A visit (session) ends after ``session_idle`` seconds
    without a page view; the touch that starts a visit becomes its last touch, and the first
    touch ever is kept as the first touch."""
    new_visit = profile.last_seen_at is None or view.at - profile.last_seen_at >= session_idle
    touch = view.touch
    if touch is None and new_visit:
        touch = Touch("direct", "")
    interests = profile.interests
    if view.interests:
        interests = dict(interests)
        for name in view.interests:
            interests[name] = interests.get(name, 0) + 1
    return profile.evolve(
        first_seen_at=profile.first_seen_at if profile.first_seen_at is not None else view.at,
        last_seen_at=view.at,
        visits=profile.visits + 1 if new_visit else profile.visits,
        page_views=profile.page_views + 1,
        session_started_at=view.at if new_visit else profile.session_started_at,
        session_page_views=1 if new_visit else profile.session_page_views + 1,
        first_touch=profile.first_touch or touch,
        last_touch=touch if touch is not None else profile.last_touch,
        interests=interests,
        last_category=view.category or profile.last_category,
        last_product=view.product or profile.last_product,
    )


# The stages an anonymous visitor can reach before it is known; any later stage is the known
# person's lifecycle and ranks above them.
_EARLY_STAGES = {"visitor": 0, "lead": 1}


def merge(known: Profile, anonymous: Profile) -> Profile:
    """One profile from a known person's and the anonymous history of their browser, when the
    browser identifies as that person (docs/privacy.md#identification).

    Counts and interests are summed, first and last seen are the min and max, the first touch
    is the earlier profile's and the current visit (session, last touch, last category and
    product) the later one's. Attributes are combined, the known profile's winning. The score is
    the sum of both scores (the caller brings both to the same moment, decay applied); the
    stage is the further one (visitor < lead < any later stage), the known profile's on a tie.
    Purchases are summed; scoring rules paid out once and thresholds fired in either profile
    count as paid out and fired; per-day and per-visit counters are the known profile's.
    """
    never, always = float("inf"), float("-inf")
    first, other_first = (known, anonymous)
    if (anonymous.first_seen_at or never) < (known.first_seen_at or never):
        first, other_first = anonymous, known
    last, other_last = (anonymous, known)
    if (known.last_seen_at or always) > (anonymous.last_seen_at or always):
        last, other_last = known, anonymous
    interests = dict(known.interests)
    for name, count in anonymous.interests.items():
        interests[name] = interests.get(name, 0) + count
    seen = [t for t in (known.first_seen_at, anonymous.first_seen_at) if t is not None]
    last_seen = [t for t in (known.last_seen_at, anonymous.last_seen_at) if t is not None]
    staged = known
    if _EARLY_STAGES.get(anonymous.stage, 2) > _EARLY_STAGES.get(known.stage, 2):
        staged = anonymous
    scoring = dict(known.scoring)
    for key in ("once", "fired"):
        union = list(dict.fromkeys([*known.scoring.get(key, ()), *anonymous.scoring.get(key, ())]))
        if union:
            scoring[key] = union
    purchased = [t for t in (known.last_purchase_at, anonymous.last_purchase_at) if t is not None]
    score = known.score + anonymous.score
    return Profile(
        first_seen_at=min(seen) if seen else None,
        last_seen_at=max(last_seen) if last_seen else None,
        visits=known.visits + anonymous.visits,
        page_views=known.page_views + anonymous.page_views,
        session_started_at=last.session_started_at,
        session_page_views=last.session_page_views,
        stage=staged.stage,
        stage_since=staged.stage_since,
        score=score,
        score_at=max((t for t in (known.score_at, anonymous.score_at) if t), default=None)
        if score
        else None,
        purchases=known.purchases + anonymous.purchases,
        last_purchase_at=max(purchased) if purchased else None,
        scoring=scoring,
        identified=True,
        first_touch=first.first_touch or other_first.first_touch,
        last_touch=last.last_touch or other_last.last_touch,
        attributes={**anonymous.attributes, **known.attributes},
        interests=interests,
        last_category=last.last_category or other_last.last_category,
        last_product=last.last_product or other_last.last_product,
        first_name=known.first_name or anonymous.first_name,
    )
