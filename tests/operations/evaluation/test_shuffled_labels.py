"""Leakage guard: with outcome labels shuffled before learning sees them, learning must not beat the baseline."""
import math
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import numpy as np
import pytest

from learning.ml.metrics import roc_auc
from learning.models import TrainingRecord
from operations.evaluation.metrics import profit_factor
from operations.evaluation.runner import BASELINE, LEARNING, run_one
from operations.evaluation.scoring import ALL_SYSTEMS, score
from operations.evaluation.shuffle import ShuffledLabels
from operations.replay import replay
from tests.factories import TradeOutcomeFactory
from tests.trading.accounting.helpers import assert_account_balanced
from trading.engine import TradingEngine
from trading.models import PaperTrade
from trading.services.accounts import account_create
from trading.services.trades import trade_learning_id

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


def test_the_shuffle_moves_whole_results_between_trades_and_leaves_the_rest():
    outcomes = [TradeOutcomeFactory(success=None) for _ in range(200)]
    shuffle = ShuffledLabels(seed=3)
    learned_outcomes = [shuffle(outcome) for outcome in outcomes]
    results = {(o.net_pnl, o.pnl_pct, o.fees) for o in outcomes}
    for original, learned in zip(outcomes, learned_outcomes):
        assert (learned.net_pnl, learned.pnl_pct, learned.fees) in results  # a real trade's result, whole
        assert learned.success in (None, learned.net_pnl > 0)
        assert (learned.trade_id, learned.features, learned.entry_time, learned.exit_time) == (
            original.trade_id, original.features, original.entry_time, original.exit_time,
        )
    moved = sum(learned.net_pnl != original.net_pnl for original, learned in zip(outcomes, learned_outcomes))
    assert moved > 150


@pytest.mark.django_db
def test_a_replay_with_the_shuffle_tells_learning_other_trades_results_and_settles_on_the_real_ones(btc_frame):
    account = account_create(name="shuffled", system_type="paper_trading", starting_balance=Decimal("10000"))
    replay(
        engines=[TradingEngine(account=account, use_learning=False)], frames={"BTCUSDT": btc_frame}, timeframe="1h",
        start=datetime(2022, 6, 1, tzinfo=UTC), end=datetime(2022, 8, 31, 23, tzinfo=UTC), learning=False,
        progress=False, outcome_transform=ShuffledLabels(seed=3),
    )  # fmt: skip
    closed = {trade_learning_id(trade): trade.net_pnl for trade in PaperTrade.objects.filter(status=PaperTrade.Status.CLOSED)}
    told = dict(TrainingRecord.objects.values_list("trade_id", "net_pnl"))
    assert set(told) == set(closed) and len(closed) > 20  # every closed trade reached learning, once
    assert all(any(abs(pnl - real) < Decimal("1e-6") for real in closed.values()) for pnl in told.values())
    moved = sum(abs(told[trade_id] - closed[trade_id]) > Decimal("1e-6") for trade_id in closed)
    assert moved > len(closed) // 2
    assert_account_balanced(account)  # the account settled on the real results
