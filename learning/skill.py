"""The learner's running skill per system: has its recent out-of-sample probability beaten the base rate?

Every outcome stored carries the hybrid model's probability at entry (`ml_score`), made before
the outcome was known, so the last N outcomes of a system score the model out of sample. The
reference is the running base rate: at each outcome's entry, the success rate of that system's
outcomes that had exited by then. A learner whose recent Brier score is not below the
reference's has not earned a say in gating or sizing (issue 16's honesty guard).
"""
import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

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


def running_skill(history: Sequence[ScoredOutcome], *, window: int = SKILL_WINDOW, minimum: int = SKILL_MIN_OUTCOMES) -> RunningSkill:
    """Score the last `window` outcomes with a model probability, in exit order, against the running base rate.

    `history` holds one system's outcomes in exit order (those without a probability count for
    the base rate only). Trusted only with at least `minimum` scored outcomes and skill > 0.
    """
    return SkillHistory(history, keep=max(1, len(history))).skill(window=window, minimum=minimum)


class SkillHistory:
    """A system's last `keep` outcomes in exit order, from which `skill()` is running_skill over them.

    A replay asks for the skill at every decision and adds an outcome between most of them, so
    what each outcome contributes is worked out once, when it is added: how many outcomes had
    exited by its entry, and the running count of wins. `skill()` is then O(window) in numpy
    instead of O(keep) in Python.
    """

    def __init__(self, outcomes: Iterable[ScoredOutcome] = (), *, keep: int):
        self.keep = keep
        self._exits: list[datetime] = []  # every outcome kept, in exit order
        self._wins_before = [0]  # _wins_before[i]: wins among the first i outcomes kept
        # The outcomes with a probability: position in _exits, outcomes exited by its entry, probability, won.
        self._scored: list[tuple[int, int, float, bool]] = []
        self._skill: dict[tuple[int, int], RunningSkill] = {}
        for outcome in outcomes:
            self.append(outcome)

    def __len__(self) -> int:
        return min(len(self._exits), self.keep)

    def append(self, outcome: ScoredOutcome) -> None:
        if outcome.ml_score is not None:
            known = bisect.bisect_right(self._exits, outcome.entry_time)
            self._scored.append((len(self._exits), known, outcome.ml_score, outcome.success))
        self._exits.append(outcome.exit_time)
        self._wins_before.append(self._wins_before[-1] + outcome.success)
        self._skill.clear()
        if len(self._exits) >= 2 * self.keep:  # forget what has left the window for good
            self._drop(len(self._exits) - self.keep)

    def _drop(self, count: int) -> None:
        wins = self._wins_before[count]
        self._exits = self._exits[count:]
        self._wins_before = [total - wins for total in self._wins_before[count:]]
        self._scored = [(at - count, known - count, score, won) for at, known, score, won in self._scored if at >= count]

    def skill(self, *, window: int = SKILL_WINDOW, minimum: int = SKILL_MIN_OUTCOMES) -> RunningSkill:
        """running_skill of the outcomes kept (cached until the next append)."""
        cached = self._skill.get((window, minimum))
        if cached is None:
            cached = self._skill[(window, minimum)] = self._score(window, minimum)
        return cached

    def _score(self, window: int, minimum: int) -> RunningSkill:
        start = max(0, len(self._exits) - self.keep)  # the first outcome kept
        first = bisect.bisect_left(self._scored, (start,))  # the first scored outcome kept
        scored = self._scored[first:][-window:]
        if not scored:
            return _no_say(0)
        _, known, scores, won = zip(*scored)
        known, scores, won = np.array(known), np.array(scores, dtype=np.float64), np.array(won, dtype=bool)
        # Outcomes kept that had exited by each entry (a prefix, in exit order); none known: not scored.
        known = known - start
        has = known > 0
        known, scores, won = known[has], scores[has], won[has]
        n = len(won)
        if n < minimum:
            return _no_say(n)
        wins_before = np.array(self._wins_before)
        references = (wins_before[start + known] - wins_before[start]) / known
        outcomes = won.astype(np.float64)
        # Summed in order by Python's sum, as a plain loop would: the guard's verdict does not hang on summation order.
        brier = sum(((scores - outcomes) ** 2).tolist()) / n
        reference = sum(((references - outcomes) ** 2).tolist()) / n
        skill = 1.0 - brier / reference if reference > 0 else None
        return RunningSkill(
            outcomes=n,
            brier=brier,
            reference_brier=reference,
            brier_skill=skill,
            auc=_auc(scores, won),
            base_rate=int(won.sum()) / n,
            trusted=skill is not None and math.isfinite(skill) and skill > 0,
        )


def _no_say(outcomes: int) -> RunningSkill:
    return RunningSkill(outcomes=outcomes, brier=None, reference_brier=None, brier_skill=None, auc=None, base_rate=None, trusted=False)


def _auc(scores: np.ndarray, wins: np.ndarray) -> float | None:
    """Mann-Whitney AUC with ties counted half."""
    positives = int(wins.sum())
    negatives = len(wins) - positives
    if not positives or not negatives:
        return None
    order = np.argsort(scores, kind="stable")
    ordered = scores[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(ordered)]
    ranks = np.repeat((starts + 1 + ends) / 2, ends - starts)  # 1-based, ties averaged
    rank_sum = float(ranks[wins[order]].sum())
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)
