"""Test-only leakage guard: learning is handed other trades' results, so its labels carry no information."""
import dataclasses
import random
from contextlib import contextmanager
from unittest import mock

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
    store = trades.store_trade_outcome

    def store_shuffled(*, outcome: TradeOutcome):
        results.append({name: getattr(outcome, name) for name in _RESULT_FIELDS})
        return store(outcome=dataclasses.replace(outcome, **rng.choice(results)))

    with mock.patch.object(trades, "store_trade_outcome", store_shuffled):
        yield
