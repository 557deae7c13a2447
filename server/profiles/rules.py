"""The profile rules (scoring and lifecycle stages, loaded from ``rules/scoring.yaml`` and
``rules/lifecycle.yaml`` by rules.profilefiles) and how recorded activities move a profile on
under them.

:func:`apply` is pure: the store calls it inside the write transaction, and the decide view
calls it to judge a page by the profile as it stands after that page view.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import tzinfo

from ..store.activity import Activity, Effects, StageChange
from ..store.records import PageViewUpdate, Profile
from ..store.visitors import page_view_activity
from . import lifecycle
from .lifecycle import StageRule
from .model import advance, merge
from .scoring import ScoringRules, Threshold, award, crossings, score_at


@dataclass(frozen=True)
class ProfileRules:
    scoring: ScoringRules = field(default_factory=ScoringRules)
    stages: tuple[StageRule, ...] = lifecycle.DEFAULT_STAGES

    def read(self, profile: Profile, now: int) -> tuple[float, str]:
        """The score and the stage of ``profile`` as they stand at ``now``."""
        score = score_at(profile, now, self)
        steps = lifecycle.settle(profile, now, self.stages, score=score)
        return score, steps[-1][0] if steps else profile.stage

    # The store's ProfileMoves: how these rules move a profile on inside a write transaction.

    @property
    def timezone(self) -> tzinfo:
        return self.scoring.timezone

    def page_view(
        self, profile: Profile, view: PageViewUpdate, *, session_idle: int, visitor_id: str
    ) -> tuple[Profile, Effects]:
        """The profile after the page view ``view``, scored, and what changed beyond it."""
        advanced = advance(profile, view, session_idle=session_idle)
        return apply(advanced, [page_view_activity(view)], self, now=view.at, visitor_id=visitor_id)

    def record(
        self, profile: Profile, activities: Sequence[Activity], *, now: int, visitor_id: str
    ) -> tuple[Profile, Effects]:
        """The profile after ``activities`` (:func:`apply`)."""
        return apply(profile, activities, self, now=now, visitor_id=visitor_id)

    def merge(self, known: Profile, anonymous: Profile, *, now: int) -> Profile:
        """One profile from a known person's and their browser's anonymous one, both scores
        taken as they stand at ``now`` (decay applied) so that the sum is taken at one moment."""
        known, anonymous = (
            replace(p, score=score_at(p, now, self), score_at=now) for p in (known, anonymous)
        )
        return merge(known, anonymous)


# --- moving a profile on ------------------------------------------------------------------------


def apply(
    profile: Profile,
    activities: Sequence[Activity],
    rules: ProfileRules,
    *,
    now: int,
    visitor_id: str,
) -> tuple[Profile, Effects]:
    """The profile after ``activities`` (recorded at ``now``), and what changed beyond it.

    First the stage catches up with the time that passed (a customer may have become inactive
    meanwhile) and thresholds the decay took the score below are re-armed. Then for each
    activity: purchases and identification are counted, points awarded, and if that changed
    anything the stage depends on, the stage is re-evaluated and thresholds the score crossed
    upwards run their actions. (An activity that earns nothing and is no purchase or
    identification cannot move the stage: every reading it depends on is as it was.)
    """
    effects = Effects()
    profile = _settle(profile, rules, now, effects)
    # Decay since the last activity may have taken the score below a threshold (re-armed), and
    # a threshold added to the rules since may already be reached (it fires now).
    profile = _cross(profile, rules, now, effects, visitor_id)
    for activity in activities:
        counted = activity.type in ("purchase", "identify")
        if activity.type == "purchase":
            last = max(profile.last_purchase_at or activity.at, activity.at)
            profile = profile.evolve(purchases=profile.purchases + 1, last_purchase_at=last)
        elif activity.type == "identify":
            profile = profile.evolve(identified=True)
        profile, earned = award(profile, activity, rules.scoring, now=now)
        if not (earned.points or counted):
            continue
        profile = _settle(profile, rules, now, effects)
        profile = _cross(profile, rules, now, effects, visitor_id)
    return profile, effects


def _settle(profile: Profile, rules: ProfileRules, now: int, effects: Effects) -> Profile:
    """The stage as it stands at ``now``, every step on the way recorded."""
    score = score_at(profile, now, rules)
    for stage, reason in lifecycle.settle(profile, now, rules.stages, score=score):
        profile = _move(profile, stage, reason, now, effects)
    return profile


def _cross(
    profile: Profile, rules: ProfileRules, now: int, effects: Effects, visitor_id: str
) -> Profile:
    profile, crossed = crossings(profile, rules.scoring, now=now)
    for threshold in crossed:
        profile = _act(profile, threshold, rules, now, effects, visitor_id)
    return profile


def _move(profile: Profile, stage: str, reason: str, now: int, effects: Effects) -> Profile:
    if stage == profile.stage:
        return profile
    effects.stage_changes.append(StageChange(profile.stage, stage, reason, now))
    return profile.evolve(stage=stage, stage_since=now)


def _act(
    profile: Profile,
    threshold: Threshold,
    rules: ProfileRules,
    now: int,
    effects: Effects,
    visitor_id: str,
) -> Profile:
    effects.crossed.append(threshold.name)
    if threshold.attributes:
        profile = profile.evolve(attributes={**profile.attributes, **threshold.attributes})
    if threshold.stage is not None:
        reason = f"score reached {threshold.at:g} ({threshold.name})"
        profile = _move(profile, threshold.stage, reason, now, effects)
    payload = {
        "visitor_id": visitor_id,
        "threshold": threshold.name,
        "at": threshold.at,
        "score": score_at(profile, now, rules),
        "time": now,
        "profile": profile.as_json(),
    }
    effects.thresholds.append(payload)
    if threshold.webhook is not None:
        effects.webhooks.append((threshold.webhook, "score.threshold", payload))
    return profile
