"""A learning replay retrains in a worker process; when a model is adopted is fixed by the replay, not by the worker."""
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from learning.models import FeatureImportance, LearningLease, ModelKind, ModelVersion, OnlineLearningState
from operations.replay import replay
from tests.operations.test_replay import trades_of, wipe
from trading.engine import TradingEngine
from trading.models import SignalDecision
from trading.services.accounts import account_create

pytestmark = pytest.mark.django_db(transaction=True)
START, END = datetime(2022, 3, 1, tzinfo=UTC), datetime(2022, 9, 30, 23, tzinfo=UTC)


def learning_replay(frames, *, background: bool):
    account = account_create(name="learns", system_type="paper_trading", starting_balance=Decimal("10000"))
    summary = replay(
        engines=[TradingEngine(account=account, use_learning=True)], frames=frames, timeframe="1h",
        start=START, end=END, learning=True, retrain_every=60, background=background, progress=False,
    )  # fmt: skip
    decisions = list(
        SignalDecision.objects.filter(account=account).order_by("candle_time", "symbol")
        .values_list("candle_time", "symbol", "model_probability", "model_versions", "taken")
    )  # fmt: skip
    versions = list(
        ModelVersion.objects.filter(kind=ModelKind.BATCH).order_by("sequence")
        .values_list("version", "active", "metrics", "feature_importance", "trained_through_exit_time", "note")
    )  # fmt: skip
    return summary, trades_of(account), decisions, versions


def forget_learning():
    wipe()
    for model in (ModelVersion, OnlineLearningState, FeatureImportance, LearningLease):
        model.objects.all().delete()


def test_retraining_in_the_worker_gives_the_same_replay_as_retraining_in_process(btc_frame, eth_frame, settings):
    settings.REPLAY_RETRAIN_LAG = 25
    frames = {"BTCUSDT": btc_frame, "ETHUSDT": eth_frame}
    in_worker = learning_replay(frames, background=True)
    forget_learning()
    in_process = learning_replay(frames, background=False)

    summary = in_worker[0]
    assert summary.retrains >= 3 and summary.retrains == in_process[0].retrains
    assert in_worker[1:] == in_process[1:]


def test_a_batch_model_serves_only_after_the_records_it_was_trained_on_and_its_lag(btc_frame, eth_frame, settings):
    settings.REPLAY_RETRAIN_LAG = 25
    _, _, decisions, versions = learning_replay({"BTCUSDT": btc_frame, "ETHUSDT": eth_frame}, background=True)
    trained_through = {version: exit_time for version, _, _, _, exit_time, _ in versions}
    first_use = {}
    for candle_time, _, _, model_versions, _ in decisions:
        first_use.setdefault(model_versions.get("batch"), candle_time)
    served = [version for version in first_use if version is not None]
    assert len(served) >= 2
    for version in served:
        assert trained_through[version] < first_use[version]
    # Decisions went on while each model trained: the first one served was not there at the start.
    assert None in first_use and first_use[None] < first_use[served[0]]


def guard_decisions():
    return list(
        SignalDecision.objects.exclude(model_probability=None)
        .order_by("candle_time", "symbol").values_list("model_probability", "recommendation")
    )  # fmt: skip


def test_the_model_decides_only_while_it_beats_the_base_rate_and_the_reasoning_says_which(btc_frame, eth_frame, settings):
    frames = {"BTCUSDT": btc_frame, "ETHUSDT": eth_frame}
    learning_replay(frames, background=False)
    guarded = guard_decisions()
    assert len(guarded) > 100
    # Until its recent outcomes are scored, the model has no say, and the reasoning says why.
    first = guarded[0][1]
    assert not first["model_trusted"] and first["reasoning"].startswith("Model has no say: the model has 0 scored outcomes (needs 100)")
    for probability, recommendation in guarded:
        if recommendation["model_trusted"]:
            assert recommendation["reasoning"].startswith("Model trusted: the model's Brier skill +")
            assert recommendation["expected_win_rate"] == probability
        else:
            assert recommendation["reasoning"].startswith("Model has no say: ")
            assert "deciding on the learned statistics alone" in recommendation["reasoning"]

    # Without the guard the model's probability is the win rate of every decision it scores.
    forget_learning()
    settings.LEARNING_MODEL_GUARD = False
    learning_replay(frames, background=False)
    unguarded = guard_decisions()
    assert unguarded and all(
        recommendation["model_trusted"] and recommendation["expected_win_rate"] == probability for probability, recommendation in unguarded
    )
