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
        capacity = 2 * keep  # outcomes beyond `keep` are forgotten in one go when it fills
        self._exits: list[datetime] = []  # every outcome kept, in exit order
        self._wins_before = np.zeros(capacity + 1, dtype=np.int64)  # [i]: wins among the first i outcomes kept
        # The outcomes with a probability, in order: position in _exits, outcomes exited by its entry, probability, won.
        self._scored = 0
        self._position = np.empty(capacity, dtype=np.int64)
        self._known = np.empty(capacity, dtype=np.int64)
        self._scores = np.empty(capacity, dtype=np.float64)
        self._won = np.empty(capacity, dtype=bool)
        self._skill: dict[tuple[int, int], RunningSkill] = {}
        for outcome in outcomes:
            self.append(outcome)

    def __len__(self) -> int:
        return min(len(self._exits), self.keep)

    def append(self, outcome: ScoredOutcome) -> None:
        count = len(self._exits)
        if outcome.ml_score is not None:
            at = self._scored
            self._position[at], self._known[at] = count, bisect.bisect_right(self._exits, outcome.entry_time)
            self._scores[at], self._won[at] = outcome.ml_score, outcome.success
            self._scored += 1
        self._exits.append(outcome.exit_time)
        self._wins_before[count + 1] = self._wins_before[count] + outcome.success
        self._skill.clear()
        if len(self._exits) == len(self._position):
            self._drop(len(self._exits) - self.keep)

    def _drop(self, count: int) -> None:
        """Forget the first `count` outcomes, which have left the window for good."""
        kept = len(self._exits) - count
        self._exits = self._exits[count:]
        self._wins_before[: kept + 1] = self._wins_before[count : count + kept + 1] - self._wins_before[count]
        first = int(np.searchsorted(self._position[: self._scored], count))
        scored = self._scored - first
        for column in (self._position, self._known):
            column[:scored] = column[first : self._scored] - count
        for column in (self._scores, self._won):
            column[:scored] = column[first : self._scored]
        self._scored = scored

    def skill(self, *, window: int = SKILL_WINDOW, minimum: int = SKILL_MIN_OUTCOMES) -> RunningSkill:
        """running_skill of the outcomes kept (cached until the next append)."""
        cached = self._skill.get((window, minimum))
        if cached is None:
            cached = self._skill[(window, minimum)] = self._score(window, minimum)
        return cached

    def _score(self, window: int, minimum: int) -> RunningSkill:
        start = max(0, len(self._exits) - self.keep)  # the first outcome kept
        first = int(np.searchsorted(self._position[: self._scored], start))  # the first scored outcome kept
        first = max(first, self._scored - window)
        # Outcomes kept that had exited by each entry (a prefix, in exit order); none known: not scored.
        known = self._known[first : self._scored] - start
        has = known > 0
        known, scores, won = known[has], self._scores[first : self._scored][has], self._won[first : self._scored][has]
        n = len(won)
        if n < minimum:
            return _no_say(n)
        references = (self._wins_before[start + known] - self._wins_before[start]) / known
        # In Python floats, in order: the same figures to the last bit however the history was kept.
        outcomes = won.tolist()
        brier = sum((p - w) ** 2 for p, w in zip(scores.tolist(), outcomes)) / n
        reference = sum((r - w) ** 2 for r, w in zip(references.tolist(), outcomes)) / n
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
