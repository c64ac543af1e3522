"""Test-only leakage guard: learning is handed other trades' results, so its labels carry no information."""
import dataclasses
import random
from contextlib import contextmanager
from unittest import mock

from learning.services.session import LearningSession
from learning.types import TradeOutcome
from trading.services import trades

# The result of a trade, moved as a whole so net P&L, return and label stay consistent.
_RESULT_FIELDS = ("pnl_pct", "net_pnl", "fees", "success")


@contextmanager
def shuffled_outcome_labels(*, seed: int):
    """While active, every closed trade is stored for learning with the result of a trade drawn at random
    (with replacement) from those closed so far in this process, itself included.

    Features, times and the trade itself are untouched: accounts are settled on the real result,
    only what learning sees is shuffled. Used by the evaluation tests alone (`evaluation_run
    --shuffle-labels-seed`), to show that learning with meaningless labels gains nothing.
    """
    rng = random.Random(seed)
    results: list[dict] = []
    store, observe = trades.store_trade_outcome, LearningSession.observe

    def shuffled(outcome: TradeOutcome) -> TradeOutcome:
        results.append({name: getattr(outcome, name) for name in _RESULT_FIELDS})
        return dataclasses.replace(outcome, **rng.choice(results))

    def store_shuffled(*, outcome: TradeOutcome):
        return store(outcome=shuffled(outcome))

    def observe_shuffled(session: LearningSession, outcome: TradeOutcome) -> None:
        # A replay's learning sees closed trades here first, and later writes what it saw.
        observe(session, shuffled(outcome))

    with mock.patch.object(trades, "store_trade_outcome", store_shuffled), mock.patch.object(LearningSession, "observe", observe_shuffled):
        yield
