"""Lifecycle stages: where a visitor stands, from the profile alone.

Pure: no I/O and no clock. ``rules/lifecycle.yaml`` (docs/profiles.md) lists stages, each
with conditions on the profile; the first stage from the top whose conditions hold is the
visitor's stage, and when none holds the stage stays what it was. Conditions may name the
current stage, which is how a stage is kept (a lead stays a lead) or left only along a path
(inactive -> win-back). Stages are evaluated whenever an activity is recorded and whenever a
profile is read, so they move backwards as well as forwards (customer -> inactive after months
without a purchase -> win-back on the next visit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..store.records import STAGES, Profile
from ..syntax import matchers

DAY = 86400
# Condition name -> what it reads of a profile at ``now`` and how its value is matched.
CONDITIONS: dict[str, str] = {
    "stage": "choice",
    "identified": "flag",
    "purchases": "number",
    "days_since_last_purchase": "number",
    "days_since_last_visit": "number",
    "score": "number",
    "visits": "number",
}


def days_since(moment: int | None, now: int) -> int | None:
    """Whole days from ``moment`` to ``now``; None when it never happened."""
    if moment is None:
        return None
    return max(0, now - moment) // DAY


Reading = Callable[[Profile, int, float], Any]  # (profile, now, decayed score) -> value
READINGS: dict[str, Reading] = {
    "stage": lambda p, now, score: p.stage,
    "identified": lambda p, now, score: p.identified,
    "purchases": lambda p, now, score: p.purchases,
    "days_since_last_purchase": lambda p, now, score: days_since(p.last_purchase_at, now),
    "days_since_last_visit": lambda p, now, score: days_since(p.last_seen_at, now),
    "score": lambda p, now, score: score,
    "visits": lambda p, now, score: p.visits,
}


def compile_condition(name: str, value: Any) -> tuple[Callable[[Any], bool], str]:
    """A test of one condition's reading; raises ValueError with a hint for the rules author."""
    kind = CONDITIONS[name]
    if kind == "flag":
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return (lambda v: v is value), f"{name} is {str(value).lower()}"
    if kind == "choice":
        match, text = matchers.choice(value, STAGES)
    else:
        match, text = matchers.number(value)
    return match, f"{name} {text}"


@dataclass(frozen=True)
class StageRule:
    """One stage and when a visitor is in it: any of ``alternatives`` holds, each a list of
    (reading name, test) that must all hold. No alternatives: always."""

    stage: str
    alternatives: tuple[tuple[tuple[str, Callable[[Any], bool]], ...], ...]
    text: str  # the conditions in words, the reason a change records
    source: str = ""
    # The alternatives with each reading looked up once: (reading, test) pairs.
    _compiled: tuple[tuple[tuple[Reading, Callable[[Any], bool]], ...], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        compiled = tuple(
            tuple((READINGS[name], test) for name, test in alternative)
            for alternative in self.alternatives
        )
        object.__setattr__(self, "_compiled", compiled)

    def holds(self, profile: Profile, now: int, score: float) -> bool:
        if not self._compiled:
            return True
        # Plain loops: this runs for every stage on every recorded activity and profile read.
        for alternative in self._compiled:
            for reading, test in alternative:
                if not test(reading(profile, now, score)):
                    break
            else:
                return True
        return False


def rule(stage: str, *alternatives: dict[str, Any], source: str = "") -> StageRule:
    """A StageRule from condition mappings (as written in lifecycle.yaml)."""
    compiled, texts = [], []
    for conditions in alternatives:
        parts = [(name, compile_condition(name, value)) for name, value in conditions.items()]
        compiled.append(tuple((name, test) for name, (test, _) in parts))
        texts.append(", ".join(text for _, (_, text) in parts))
    text = " or ".join(f"({t})" if len(texts) > 1 else t for t in texts) or "always"
    return StageRule(stage, tuple(compiled), text, source)


# The stages without a rules/lifecycle.yaml: the seeds' phases, with a customer inactive after
# 180 days without a purchase and back (win-back) on the next visit.
DEFAULT_STAGES = (
    rule(
        "win-back",
        {
            "stage": ["inactive", "win-back"],
            "days_since_last_visit": {"lt": 30},
            "days_since_last_purchase": {"gte": 180},
        },
    ),
    rule("inactive", {"purchases": {"gte": 1}, "days_since_last_purchase": {"gte": 180}}),
    rule("new-customer", {"purchases": 1, "days_since_last_purchase": {"lt": 90}}),
    rule("customer", {"purchases": {"gte": 1}}),
    rule("lead", {"identified": True}, {"stage": "lead"}),
    rule("visitor"),
)


def evaluate(
    profile: Profile, now: int, stages: tuple[StageRule, ...], *, score: float
) -> tuple[str, str]:
    """The stage ``profile`` is in at ``now`` (``score`` decayed to ``now``), and why: the first
    stage from the top whose conditions hold, or the stage it has when none does."""
    for stage_rule in stages:
        if stage_rule.holds(profile, now, score):
            return stage_rule.stage, f"{stage_rule.stage}: {stage_rule.text}"
    return profile.stage, "no stage matched: unchanged"


def settle(
    profile: Profile, now: int, stages: tuple[StageRule, ...], *, score: float
) -> list[tuple[str, str]]:
    """Every step ``profile`` takes at ``now``, with its reason: stages whose conditions name
    the current stage can follow each other at one moment (inactive, then win-back). Empty
    when the stage stays."""
    steps: list[tuple[str, str]] = []
    for _ in stages:
        stage, reason = evaluate(profile, now, stages, score=score)
        if stage == profile.stage:
            break
        steps.append((stage, reason))
        profile = profile.evolve(stage=stage)
    return steps


def days_in_stage(profile: Profile, now: int, stage: str) -> int:
    """Whole days ``profile`` has been in ``stage`` at ``now`` (0 if it only now entered it)."""
    if stage != profile.stage:
        return 0
    since = profile.stage_since if profile.stage_since is not None else profile.first_seen_at
    return days_since(since, now) or 0
