"""Online learners: they learn, score before learning, stay deterministic, and have exact fast paths."""

import math
import pickle

import numpy as np
import pytest

from learning.ml import metrics
from learning.ml.online import LEARNER_KINDS, OnlineEnsemble, OnlineLearner
from tests.learning.ml.synthetic import N_FEATURES, synthetic_trades

KINDS = sorted(LEARNER_KINDS)


@pytest.fixture(scope="module")
def trades():
    return synthetic_trades(2500, seed=11)


def train(learner: OnlineLearner, X, y, *, batch_size: int = 32) -> OnlineLearner:
    for start in range(0, len(y), batch_size):
        learner.partial_fit(X[start : start + batch_size], y[start : start + batch_size])
    return learner


@pytest.mark.parametrize("kind", KINDS)
def test_unfitted_learner_says_so_and_answers_a_coin_flip(kind):
    learner = LEARNER_KINDS[kind]()
    assert not learner.is_fitted
    assert learner.predict_one(np.zeros(N_FEATURES)) == 0.5
    np.testing.assert_array_equal(learner.predict_proba(np.zeros((3, N_FEATURES))), np.full((3, 2), 0.5))
    assert learner.recent_metrics() == {"n": 0, "log_loss": None, "brier": None, "accuracy": None}


@pytest.mark.parametrize("kind", KINDS)
def test_learner_beats_a_coin_flip_on_later_trades(kind, trades):
    X, y, _ = trades
    learner = train(LEARNER_KINDS[kind](), X[:2000], y[:2000])
    later_log_loss = metrics.log_loss(y[2000:], learner.predict_proba(X[2000:])[:, 1])
    assert later_log_loss < math.log(2) - 0.05
    assert learner.recent_metrics()["log_loss"] < math.log(2) - 0.03
    assert learner.samples_seen == 2000
    assert learner.updates == math.ceil(2000 / 32)


@pytest.mark.parametrize("kind", KINDS)
def test_fast_path_equals_predict_proba(kind, trades):
    X, y, _ = trades
    learner = train(LEARNER_KINDS[kind](), X[:600], y[:600])
    rows = X[2000:2200].copy()
    rows[:5] *= 1e3  # far outside the training range, so the clipping path is exercised too
    fast = np.array([learner.predict_one(row) for row in rows])
    np.testing.assert_allclose(fast, learner.predict_proba(rows)[:, 1], rtol=0, atol=1e-9)


@pytest.mark.parametrize("kind", KINDS)
def test_each_batch_is_scored_before_the_learner_sees_it(kind, trades):
    X, y, _ = trades
    learner = train(LEARNER_KINDS[kind](window_size=100), X[:256], y[:256])
    batch, outcomes = X[256:288], y[256:288]
    expected = learner.predict_proba(batch)[:, 1]
    learner.partial_fit(batch, outcomes)
    probabilities, recorded_outcomes = learner.recent_outcomes()
    np.testing.assert_allclose(probabilities[-32:], expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(recorded_outcomes[-32:], outcomes)
    # The first batch had nothing to be scored by; the window keeps only the latest outcomes.
    assert learner.recent_metrics()["n"] == 100


@pytest.mark.parametrize("kind", KINDS)
def test_scaler_is_learned_from_real_rows_only_and_classes_are_declared_up_front(kind, trades):
    X, y, _ = trades
    learner = LEARNER_KINDS[kind]()
    wins_only = np.flatnonzero(y == 1)[:10]
    learner.partial_fit(X[wins_only], y[wins_only])
    train(learner, X[:100], y[:100])
    assert list(learner.model.classes_) == [0, 1]
    assert learner.scaler.n_samples_seen_ == learner.samples_seen == 110
    np.testing.assert_allclose(learner.scaler.mean_, np.vstack([X[wins_only], X[:100]]).mean(axis=0))


@pytest.mark.parametrize("kind", KINDS)
def test_same_trades_give_the_same_model(kind, trades):
    X, y, _ = trades
    first = train(LEARNER_KINDS[kind](), X[:500], y[:500])
    second = train(LEARNER_KINDS[kind](), X[:500], y[:500])
    np.testing.assert_array_equal(first.predict_proba(X[2000:]), second.predict_proba(X[2000:]))
    assert first.recent_metrics() == second.recent_metrics()


def test_passive_aggressive_calibration_learns_from_margins_of_the_model_before_its_update(trades):
    X, y, _ = trades
    learner = train(LEARNER_KINDS["pa"](), X[:300], y[:300])
    margins_before = learner._margins(X[300:332])
    seen = []
    calibrate = learner.calibration.partial_fit

    def spy(margins, outcomes):
        seen.append(margins.copy())
        calibrate(margins, outcomes)

    learner.calibration.partial_fit = spy
    learner.partial_fit(X[300:332], y[300:332])
    np.testing.assert_array_equal(seen[0], margins_before)
    assert not np.allclose(learner._margins(X[300:332]), margins_before)


def test_the_network_keeps_one_loss_not_one_per_update_and_learns_as_if_it_kept_them_all(trades):
    from learning.ml.online import MLPLearner

    class KeepingEveryLoss(MLPLearner):
        def _update_model(self, scaled, outcomes):
            OnlineLearner._update_model(self, scaled, outcomes)

    X, y, _ = trades
    kept, trimmed = train(KeepingEveryLoss(), X[:2000], y[:2000], batch_size=10), train(MLPLearner(), X[:2000], y[:2000], batch_size=10)
    assert len(kept.model.loss_curve_) == 200 and trimmed.model.loss_curve_ == kept.model.loss_curve_[-1:]
    np.testing.assert_array_equal(trimmed.predict_proba(X[2000:]), kept.predict_proba(X[2000:]))
    size = len(pickle.dumps(trimmed))
    assert len(pickle.dumps(kept.model)) > len(pickle.dumps(trimmed.model)) + 2000  # a float and more per update
    assert len(pickle.dumps(train(trimmed, X[:2000], y[:2000], batch_size=10))) < size + 50  # 200 updates later


def test_invalid_batches_are_refused(trades):
    X, y, _ = trades
    learner = train(LEARNER_KINDS["sgd"](), X[:64], y[:64])
    with pytest.raises(ValueError, match="0 \\(loss\\) or 1"):
        learner.partial_fit(X[:2], np.array([0, 2]))
    with pytest.raises(ValueError, match=f"expected {N_FEATURES} features"):
        learner.partial_fit(X[:2, : N_FEATURES - 1], y[:2])
    with pytest.raises(ValueError, match="finite"):
        learner.partial_fit(np.full((1, N_FEATURES), np.nan), y[:1])
    with pytest.raises(ValueError, match=f"vector of {N_FEATURES} features"):
        learner.predict_one(np.zeros(1))


def test_ensemble_updates_all_learners_and_averages_them(trades):
    X, y, _ = trades
    ensemble = OnlineEnsemble()
    assert ensemble.predict_one(X[0]).probabilities == {} and ensemble.predict_one(X[0]).mean == 0.5
    for start in range(0, 1000, 50):
        ensemble.partial_fit(X[start : start + 50], y[start : start + 50])
    prediction = ensemble.predict_one(X[2100])
    assert set(prediction.probabilities) == {"sgd", "pa", "mlp"}
    assert prediction.mean == pytest.approx(np.mean(list(prediction.probabilities.values())), abs=1e-12)
    assert prediction.mean == pytest.approx(ensemble.predict_proba(X[2100:2101])[0, 1], abs=1e-9)
    assert ensemble.samples_seen == 1000
    assert all(learner.samples_seen == 1000 for learner in ensemble.learners.values())
    later = metrics.log_loss(y[2000:], ensemble.predict_proba(X[2000:])[:, 1])
    assert later < math.log(2) - 0.05
