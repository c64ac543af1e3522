"""batch_retrain: time-ordered training, champion/challenger on one validation window, importance, single-flight."""
from datetime import timedelta

import numpy as np
import pytest

from learning.ml.schema import FEATURE_SCHEMA, current_feature_schema
from learning.models import FeatureImportance, LearningLease, ModelVersion
from learning.services import store_trade_outcomes
from learning.services.retrain import RETRAIN_ALREADY_RUNNING, RETRAIN_LEASE, batch_retrain, lease_acquire, lease_release
from learning.services.versions import ALL_STRATEGIES
from tests.factories import TradeOutcomeFactory
from tests.learning.learnable import START, learnable_outcomes, store_learnable

pytestmark = pytest.mark.django_db


def store_noise(n_trades: int, *, seed: int) -> None:
    """Trades whose outcome has nothing to do with their features."""
    outcomes = learnable_outcomes(n_trades, seed=seed)
    rng = np.random.default_rng(seed + 100)
    shuffled = rng.permutation([o.features for o in outcomes])
    store_trade_outcomes(outcomes=[o.__class__(**{**o.__dict__, "features": f}) for o, f in zip(outcomes, shuffled)])


def test_the_first_version_is_activated_and_learns_the_signal():
    store_learnable(200)
    result = batch_retrain()
    assert (result.version, result.activated, result.champion_metrics) == ("batch-0001", True, None)
    assert result.reason == "activated: no batch version was active"
    assert result.metrics["log_loss"] < 0.65 and result.metrics["roc_auc"] > 0.7

    version = ModelVersion.objects.get(version="batch-0001")
    assert version.active and version.sha256 and version.feature_schema == FEATURE_SCHEMA.as_dict()
    assert version.samples_seen == 200 and version.validation_window["size"] == 40
    assert version.validation_window["train_end"] < version.validation_window["start"]
    importance = {row.feature_name: row.model_importance for row in FeatureImportance.objects.filter(strategy_type=ALL_STRATEGIES)}
    assert set(importance) == set(FEATURE_SCHEMA.names)
    assert max(importance, key=importance.get) in ("roc_4", "atr_pct")


def test_a_challenger_that_does_not_beat_the_champion_on_the_same_window_stays_inactive():
    store_learnable(200)
    batch_retrain()
    again = batch_retrain()
    assert again.version == "batch-0002" and not again.activated
    assert again.champion_metrics["n"] == again.metrics["n"]
    assert again.reason.startswith("kept batch-0001")
    assert ModelVersion.objects.get(active=True, kind="batch").version == "batch-0001"


def test_a_champion_is_compared_with_a_challenger_on_the_validation_trades_it_had_not_learned_from():
    store_learnable(200)
    champion = batch_retrain()
    trained_through = ModelVersion.objects.get(version=champion.version).trained_through_exit_time
    store_learnable(30, seed=9, start=START + timedelta(days=60))
    result = batch_retrain()
    window = ModelVersion.objects.get(version=result.version).validation_window
    assert window["size"] == 46 and window["start"] < trained_through.isoformat()  # the champion learned the older 16
    assert (result.champion_metrics["n"], result.metrics["n"]) == (30, 46)
    assert "on the 30 validation trades neither had learned from" in result.reason


def test_a_champion_that_keeps_beating_challengers_is_not_read_back_from_its_artifact(monkeypatch):
    from learning.services import versions

    store_learnable(200)
    batch_retrain()
    loads = []
    monkeypatch.setattr(versions, "load_model", lambda version: loads.append(version.version) or pytest.fail("reloaded"))
    for _ in range(versions.BATCH_MODELS_KEPT + 2):  # more challengers than the cache holds
        assert not batch_retrain().activated
    assert loads == []


def test_a_better_challenger_replaces_a_champion_trained_on_noise():
    store_noise(90, seed=1)
    assert batch_retrain().activated
    store_learnable(300, seed=2, start=START + timedelta(days=30))
    result = batch_retrain()
    assert result.activated, result.reason
    assert result.metrics["log_loss"] < result.champion_metrics["log_loss"]
    assert "beats batch-0001" in result.reason
    new = ModelVersion.objects.get(active=True, kind="batch")
    assert new.version == "batch-0002" and new.replaced.version == "batch-0001"


def test_as_of_trains_only_on_trades_closed_before_it():
    outcomes = store_learnable(200)
    as_of = outcomes[150].exit_time
    result = batch_retrain(as_of=as_of)
    version = ModelVersion.objects.get(version=result.version)
    assert version.samples_seen == 150 and version.trained_through_exit_time < as_of


def test_too_few_records_or_one_class_write_no_version():
    store_learnable(30)
    store_trade_outcomes(outcomes=TradeOutcomeFactory.build_batch(3))
    result = batch_retrain()
    assert (result.version, result.activated) == (None, False)
    schema = current_feature_schema().version
    assert result.reason == f"too few records: 30 usable (3 skipped: features do not fit schema {schema}), at least 70 are needed"

    wins = [o for o in learnable_outcomes(400, seed=3) if o.net_pnl > 0][:100]
    store_trade_outcomes(outcomes=wins)
    assert "both are needed" in batch_retrain().reason
    assert not ModelVersion.objects.exists()


def test_a_second_retrain_returns_at_once_while_one_runs():
    store_learnable(100)
    token = lease_acquire(RETRAIN_LEASE)
    result = batch_retrain()
    assert (result.version, result.reason) == (None, RETRAIN_ALREADY_RUNNING)
    lease_release(RETRAIN_LEASE, token, {})
    assert batch_retrain().activated
    lease = LearningLease.objects.get(name=RETRAIN_LEASE)
    assert lease.holder == "" and lease.last_result["version"] == "batch-0001"


def test_a_lease_left_by_a_killed_worker_expires(settings):
    store_learnable(100)
    settings.CELERY_TASK_TIME_LIMIT = 0
    lease_acquire(RETRAIN_LEASE)
    assert batch_retrain().activated


def store_real_signal_among_paper_noise() -> None:
    """Every third trade filled on an exchange and following the signal; the paper ones between carry shuffled (noise) features."""
    outcomes = learnable_outcomes(300, seed=3)
    rng = np.random.default_rng(7)
    paper = [index for index in range(len(outcomes)) if index % 3]
    shuffled = rng.permutation([outcomes[index].features for index in paper])
    for index, features in zip(paper, shuffled):
        outcomes[index] = outcomes[index].__class__(**{**outcomes[index].__dict__, "features": features})
    for index in range(0, len(outcomes), 3):
        outcomes[index] = outcomes[index].__class__(**{**outcomes[index].__dict__, "fill_source": "exchange"})
    store_trade_outcomes(outcomes=outcomes)


def fresh_trades_auc() -> float:
    """ROC AUC of the active batch model on new trades that follow the signal (as the real fills do)."""
    from sklearn.metrics import roc_auc_score

    from learning.services.versions import batch_model
    from tests.learning.learnable import learnable_features

    rows, wins = learnable_features(600, seed=11)
    X = np.array([[row[name] for name in current_feature_schema().names] for row in rows])
    model = batch_model(ModelVersion.objects.get(kind="batch", active=True))
    return roc_auc_score(wins, model.predict_proba(X)[:, 1])


def test_real_fills_weigh_as_the_setting_says_in_the_batch_retrain(settings):
    from learning.models import TrainingRecord
    from learning.services.training_data import exchange_fill_weights

    store_real_signal_among_paper_noise()
    ids = list(TrainingRecord.objects.order_by("exit_time", "id").values_list("id", flat=True))
    assert TrainingRecord.objects.filter(fill_source="exchange").count() == 100
    assert set(exchange_fill_weights(ids).tolist()) == {1.0}  # the default, 1: a real fill weighs as a paper one
    batch_retrain()
    even = fresh_trades_auc()
    ModelVersion.objects.all().delete()
    settings.LEARNING_EXCHANGE_FILL_WEIGHT = 10.0
    weights = exchange_fill_weights(ids)
    assert weights.tolist() == [10.0 if index % 3 == 0 else 1.0 for index in range(300)]
    batch_retrain()
    weighted = fresh_trades_auc()
    # The signal is in the real fills only: weighing them up, the model finds it better.
    assert weighted > even + 0.05, (even, weighted)
