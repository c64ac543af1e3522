"""The shuffled-labels control: an outcome transform under which learning is told other trades' results."""
import dataclasses
import random

from learning.types import TradeOutcome

# The result of a trade, moved as a whole so net P&L, return and label stay consistent.
_RESULT_FIELDS = ("pnl_pct", "net_pnl", "fees", "success")


class ShuffledLabels:
    """Called on each closed trade's outcome, in the order trades close, before learning sees it.

    Returns the outcome with the result of a trade drawn at random (with replacement) from those
    closed so far, itself included. Features, times and the trade itself are untouched, and
    accounts settle on the real result: only what learning is told is shuffled. A replay takes
    it as its `outcome_transform` (`evaluation_run --shuffle-labels-seed`), to show that learning
    with meaningless labels gains nothing.
    """

    def __init__(self, *, seed: int):
        self._rng = random.Random(seed)
        self._results: list[dict] = []

    def __call__(self, outcome: TradeOutcome) -> TradeOutcome:
        self._results.append({name: getattr(outcome, name) for name in _RESULT_FIELDS})
        return dataclasses.replace(outcome, **self._rng.choice(self._results))
