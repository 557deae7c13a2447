"""Lead scoring: points for what a visitor does, decay while they do nothing, thresholds.

Pure: no I/O and no clock; ``now`` is passed in. ``rules/scoring.yaml`` (docs/profiles.md)
gives points per activity type, narrowed by conditions (path, name, minimum value, returning
visit, channel) and limited (first time only, at most N per day or per visit).

Decay is applied exactly whenever the score is read, never by a periodic job: the profile
stores the score and ``score_at``, the moment it was last brought up to date (any recorded
activity does that). :func:`score_at` computes the value at ``now`` from those two alone, so
reading twice gives what reading once gives, and nothing drifts. With
``decay: {half_life: 30d, after: 7d}`` the score holds for 7 days after the last activity and
then halves every 30 days::

    score(now) = score                                        if now - score_at <= after
    score(now) = score * 0.5 ** ((now - score_at - after) / half_life)   otherwise
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from ..store.activity import Activity
from ..store.records import Profile


@dataclass(frozen=True)
class PointRule:
    """Points for one kind of activity; every condition given must hold."""

    id: str
    activity: str  # an activity type (activity.TYPES)
    points: float
    path: Callable[[Any], bool] | None = None
    name: Callable[[Any], bool] | None = None
    min_value: float | None = None
    returning: bool | None = None
    channels: frozenset[str] = frozenset()
    first_time: bool = False
    max_per_day: int | None = None
    max_per_visit: int | None = None
    source: str = ""  # file:line, for explanations

    def matches(self, activity: Activity, profile: Profile) -> bool:
        """Whether ``activity`` earns these points, limits aside."""
        if activity.type != self.activity:
            return False
        if self.path is not None and not self.path(activity.path):
            return False
        if self.name is not None and not self.name(activity.name):
            return False
        if self.min_value is not None and (
            activity.value is None or activity.value < self.min_value
        ):
            return False
        if self.returning is not None and profile.returning != self.returning:
            return False
        if self.channels:
            touch = profile.last_touch
            if touch is None or touch.channel not in self.channels:
                return False
        return True


@dataclass(frozen=True)
class Decay:
    half_life: int | None = None  # seconds; None: the score never decays
    after: int = 0  # seconds without activity before decay starts


@dataclass(frozen=True)
class Threshold:
    """Actions run once each time the score crosses ``at`` upwards; re-armed when the score
    falls back below it."""

    name: str
    at: float
    webhook: str | None = None  # an endpoint name (site.yaml webhooks)
    stage: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    source: str = ""


@dataclass(frozen=True)
class ScoringRules:
    points: tuple[PointRule, ...] = ()
    decay: Decay = field(default_factory=Decay)
    thresholds: tuple[Threshold, ...] = ()
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))  # what "a day" means
    # The points rules by activity type, in file order: an activity is matched against its own.
    by_activity: dict[str, tuple[PointRule, ...]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        for rule in self.points:
            self.by_activity[rule.activity] = (*self.by_activity.get(rule.activity, ()), rule)


def decayed(score: float, since: int | None, now: int, decay: Decay) -> float:
    """``score``, last brought up to date at ``since``, as it stands at ``now``."""
    if not score or since is None or decay.half_life is None:
        return score
    idle = now - since - decay.after
    if idle <= 0:
        return score
    return score * float(0.5 ** (idle / decay.half_life))


class WithScoring(Protocol):
    """Rules that carry scoring rules (profiles.rules.ProfileRules)."""

    @property
    def scoring(self) -> ScoringRules: ...


def score_at(profile: Profile, now: int, rules: WithScoring | ScoringRules) -> float:
    """The visitor's lead score at ``now``, decay applied."""
    scoring = rules if isinstance(rules, ScoringRules) else rules.scoring
    return decayed(profile.score, profile.score_at, now, scoring.decay)


@dataclass(frozen=True)
class Award:
    """What one activity earned, rule by rule."""

    points: float
    rules: tuple[str, ...]


def award(
    profile: Profile, activity: Activity, rules: ScoringRules, *, now: int
) -> tuple[Profile, Award]:
    """The profile after ``activity``: the score brought up to date at ``now`` (any activity
    restarts the decay's ``after`` period), plus the points of every rule it earns within that
    rule's limits. The score never falls below 0."""
    own = rules.by_activity.get(activity.type, ())
    matching = [rule for rule in own if rule.matches(activity, profile)]
    if not matching:
        # Most activities earn nothing (a dwell, a scroll): only the decay restarts.
        score = max(0.0, score_at(profile, now, rules))
        return profile.evolve(score=score, score_at=now if score else None), NOTHING
    state = profile.scoring
    once: list[str] = list(state.get("once", ()))
    day_counts: dict[str, list[int]] = dict(state.get("day", {}))
    visit_counts: dict[str, list[int]] = dict(state.get("visit", {}))
    day = dt.datetime.fromtimestamp(activity.at, rules.timezone).date().toordinal()
    visit = profile.session_started_at or 0
    points, earned = 0.0, []
    for rule in matching:
        if rule.first_time and rule.id in once:
            continue
        if rule.max_per_day is not None and _count(day_counts, rule.id, day) >= rule.max_per_day:
            continue
        if rule.max_per_visit is not None and (
            _count(visit_counts, rule.id, visit) >= rule.max_per_visit
        ):
            continue
        if rule.first_time:
            once.append(rule.id)
        if rule.max_per_day is not None:
            day_counts[rule.id] = [day, _count(day_counts, rule.id, day) + 1]
        if rule.max_per_visit is not None:
            visit_counts[rule.id] = [visit, _count(visit_counts, rule.id, visit) + 1]
        points += rule.points
        earned.append(rule.id)
    score = max(0.0, score_at(profile, now, rules) + points)
    new_state = dict(state)
    for key, value in (("once", once), ("day", day_counts), ("visit", visit_counts)):
        if value:
            new_state[key] = value
    profile = profile.evolve(score=score, score_at=now if score else None, scoring=new_state)
    return profile, Award(points, tuple(earned))


NOTHING = Award(0.0, ())


def _count(counts: dict[str, list[int]], rule: str, period: int) -> int:
    """How often ``rule`` earned points in ``period`` (a day or a visit); only the latest period
    is kept per rule."""
    entry = counts.get(rule)
    return entry[1] if entry and entry[0] == period else 0


def crossings(
    profile: Profile, rules: ScoringRules, *, now: int
) -> tuple[Profile, list[Threshold]]:
    """The thresholds the score (at ``now``) has reached and that were armed; they are marked
    fired. Fired thresholds the score is below again are re-armed."""
    score = score_at(profile, now, rules)
    fired = list(profile.scoring.get("fired", ()))
    crossed = []
    for threshold in rules.thresholds:
        if score < threshold.at:
            if threshold.name in fired:
                fired.remove(threshold.name)
        elif threshold.name not in fired:
            fired.append(threshold.name)
            crossed.append(threshold)
    if fired == list(profile.scoring.get("fired", ())):
        return profile, crossed
    state = dict(profile.scoring)
    if fired:
        state["fired"] = fired
    else:
        state.pop("fired", None)
    return profile.evolve(scoring=state), crossed
