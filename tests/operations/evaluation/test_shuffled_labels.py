"""Leakage guard: with outcome labels shuffled before learning sees them, learning must not beat the baseline."""
import math
from dataclasses import replace
from datetime import date

import numpy as np
import pytest

from operations.evaluation.metrics import profit_factor
from operations.evaluation.runner import BASELINE, LEARNING, run_one
from operations.evaluation.scoring import ALL_SYSTEMS, score
from operations.evaluation.shuffle import shuffled_outcome_labels
from learning.ml.metrics import roc_auc
from tests.factories import TradeOutcomeFactory
from trading.services import trades

SHUFFLED = replace(LEARNING, name="shuffled", title="learning on shuffled labels", shuffle_labels_seed=7)
# Two standard errors: a chance edge this large happens about one time in forty.
Z = 2.0


@pytest.mark.slow
def test_learning_on_shuffled_labels_gains_nothing_over_the_baseline(tmp_path, template_database, window):
    span = window(date(2022, 1, 15), date(2022, 7, 15))
    payloads = {spec.name: run_one(spec=spec, window=span, template=template_database, workdir=tmp_path) for spec in (BASELINE, SHUFFLED)}
    # Every closed trade reached learning, the baseline's with its own result, the shuffled run's not.
    for name, payload in payloads.items():
        told, closed = payload["learning_store"], payload["trades"]
        assert told["records"] == len(closed)
        assert (told["net_pnl"] == pytest.approx(sum(row["net_pnl"] for row in closed), abs=1e-6)) is (name == "baseline")
    payloads["learning"] = payloads.pop("shuffled")  # scored as the learning run it stands in for
    report = score(payloads=payloads, window=span)
    learned = report["systems"]["learning"][ALL_SYSTEMS]["overall"]
    baseline = report["systems"]["baseline"][ALL_SYSTEMS]["overall"]
    # Taking a signal picks winners no better than taking every signal.
    meta = learned["meta_labelling"]
    base_rate = meta["base_rate"]
    assert meta["precision"] - base_rate <= Z * math.sqrt(base_rate * (1 - base_rate) / meta["taken"])

    # The hybrid model ranks outcomes no better than chance (null standard error of the AUC).
    decisions = [row for row in payloads["learning"]["decisions"] if row["model_probability"] is not None]
    outcome = {row["decision_id"]: row["net_pnl"] > 0 for row in payloads["learning"]["trades"]}
    scored = [(row["model_probability"], outcome[row["id"]]) for row in decisions if row["id"] in outcome]
    probabilities, wins = np.array([p for p, _ in scored]), np.array([w for _, w in scored])
    winners, losers = wins.sum(), (~wins).sum()
    assert roc_auc(wins, probabilities) - 0.5 <= Z * math.sqrt((winners + losers + 1) / (12 * winners * losers))
    assert learned["hybrid_probability"]["brier_skill"] <= 0.0

    # Its profit factor is within what taking as many of the baseline's trades at random gives.
    baseline_pnls = np.array([row["net_pnl"] for row in payloads["baseline"]["trades"] if not row["is_shadow"]])
    rng = np.random.default_rng(7)
    chance = [profit_factor(rng.choice(baseline_pnls, size=learned["trades"], replace=False)) for _ in range(2000)]
    assert learned["profit_factor"] <= np.quantile([value for value in chance if value is not None], 0.975)
    assert baseline["trades"] > learned["trades"] > 30


def test_the_shuffle_hook_moves_whole_results_between_trades_and_leaves_the_rest(monkeypatch):
    stored = []
    monkeypatch.setattr(trades, "store_trade_outcome", lambda *, outcome: stored.append(outcome))
    outcomes = [TradeOutcomeFactory(success=None) for _ in range(200)]
    with shuffled_outcome_labels(seed=3):
        for outcome in outcomes:
            trades.store_trade_outcome(outcome=outcome)
    results = {(o.net_pnl, o.pnl_pct, o.fees) for o in outcomes}
    for original, learned in zip(outcomes, stored):
        assert (learned.net_pnl, learned.pnl_pct, learned.fees) in results  # a real trade's result, whole
        assert learned.success in (None, learned.net_pnl > 0)
        assert (learned.trade_id, learned.features, learned.entry_time, learned.exit_time) == (
            original.trade_id, original.features, original.entry_time, original.exit_time,
        )
    moved = sum(learned.net_pnl != original.net_pnl for original, learned in zip(outcomes, stored))
    assert moved > 150


@pytest.mark.django_db
def test_the_shuffle_reaches_a_replays_learning_and_what_it_writes():
    from decimal import Decimal

    from learning.models import TrainingRecord
    from learning.services.session import LearningSession

    session = LearningSession(learning=False)
    outcomes = TradeOutcomeFactory.build_batch(100)
    with shuffled_outcome_labels(seed=3):
        for outcome in outcomes:
            session.observe(outcome)
    session.write(trade_ids={})
    stored = dict(TrainingRecord.objects.values_list("trade_id", "net_pnl"))
    assert set(stored) == {outcome.trade_id for outcome in outcomes}
    moved = sum(abs(stored[outcome.trade_id] - outcome.net_pnl) > Decimal("1e-6") for outcome in outcomes)
    assert moved > 60
