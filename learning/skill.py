"""The learner's running skill per system: has its recent out-of-sample probability beaten the base rate?

Every outcome stored carries the hybrid model's probability at entry (`ml_score`), made before
the outcome was known, so the last N outcomes of a system score the model out of sample. The
reference is the running base rate: at each outcome's entry, the success rate of that system's
outcomes that had exited by then. A learner whose recent Brier score is not below the
reference's has not earned a say in gating or sizing (issue 16's honesty guard).
"""
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

# How many recent scored outcomes the guard reads, and how many it needs before trusting at all.
SKILL_WINDOW = 500
SKILL_MIN_OUTCOMES = 100


@dataclass(frozen=True, kw_only=True, slots=True)
class ScoredOutcome:
    entry_time: datetime
    exit_time: datetime
    ml_score: float | None
    success: bool


@dataclass(frozen=True, kw_only=True)
class RunningSkill:
    """The model's figures over a system's last `outcomes` scored outcomes, and whether it has earned trust."""

    outcomes: int
    brier: float | None
    reference_brier: float | None
    brier_skill: float | None
    auc: float | None
    base_rate: float | None
    trusted: bool

    @property
    def reason(self) -> str:
        if self.brier_skill is None:
            return f"the model has {self.outcomes} scored outcomes (needs {SKILL_MIN_OUTCOMES}) and no say yet"
        verdict = "beats" if self.trusted else "does not beat"
        return f"the model's Brier skill {self.brier_skill:+.4f} over its last {self.outcomes} outcomes {verdict} the running base rate"


def _auc(scores: Sequence[float], wins: Sequence[bool]) -> float | None:
    """Mann-Whitney AUC with ties counted half, in O(n log n) and plain Python."""
    positives = sum(wins)
    negatives = len(wins) - positives
    if not positives or not negatives:
        return None
    ranked = sorted(zip(scores, wins))
    rank_sum, position = 0.0, 0
    while position < len(ranked):
        end = position
        while end < len(ranked) and ranked[end][0] == ranked[position][0]:
            end += 1
        average_rank = (position + 1 + end) / 2
        rank_sum += average_rank * sum(1 for _, won in ranked[position:end] if won)
        position = end
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def running_skill(history: Sequence[ScoredOutcome], *, window: int = SKILL_WINDOW, minimum: int = SKILL_MIN_OUTCOMES) -> RunningSkill:
    """Score the last `window` outcomes with a model probability, in exit order, against the running base rate.

    `history` holds one system's outcomes in exit order (those without a probability count for
    the base rate only). Trusted only with at least `minimum` scored outcomes and skill > 0.
    """
    exits = [outcome.exit_time for outcome in history]
    wins_before = [0]
    for outcome in history:
        wins_before.append(wins_before[-1] + outcome.success)
    scored = [(index, outcome) for index, outcome in enumerate(history) if outcome.ml_score is not None][-window:]
    probabilities, references, wins = [], [], []
    for index, outcome in scored:
        # Outcomes that had exited by this one's entry (exit order, so a prefix of the history).
        known = _count_exited_by(exits, index, outcome.entry_time)
        if not known:
            continue
        probabilities.append(outcome.ml_score)
        references.append(wins_before[known] / known)
        wins.append(outcome.success)
    n = len(wins)
    if n < minimum:
        return RunningSkill(outcomes=n, brier=None, reference_brier=None, brier_skill=None, auc=None, base_rate=None, trusted=False)
    brier = sum((p - w) ** 2 for p, w in zip(probabilities, wins)) / n
    reference = sum((r - w) ** 2 for r, w in zip(references, wins)) / n
    skill = 1.0 - brier / reference if reference > 0 else None
    return RunningSkill(
        outcomes=n,
        brier=brier,
        reference_brier=reference,
        brier_skill=skill,
        auc=_auc(probabilities, wins),
        base_rate=sum(wins) / n,
        trusted=skill is not None and math.isfinite(skill) and skill > 0,
    )


def _count_exited_by(exits: list[datetime], upto: int, moment: datetime) -> int:
    """How many of exits[:upto] (sorted) are at or before `moment`."""
    low, high = 0, upto
    while low < high:
        middle = (low + high) // 2
        if exits[middle] <= moment:
            low = middle + 1
        else:
            high = middle
    return low
