"""Hybrid predictor: fixed and adaptive weighting, renormalisation, confidence, versions."""

import math

import numpy as np
import pytest

from learning.ml.batch import train_batch_model
from learning.ml.hybrid import HybridPredictor
from learning.ml.online import OnlineEnsemble, SGDLearner
from tests.learning.ml.synthetic import N_FEATURES, synthetic_trades


@pytest.fixture(scope="module")
def trades():
    return synthetic_trades(1200, seed=31)


@pytest.fixture(scope="module")
def batch_model(trades):
    X, y, times = trades
    return train_batch_model(X[:800], y[:800], times[:800], kind="logistic").model


@pytest.fixture(scope="module")
def ensemble(trades):
    X, y, _ = trades
    ensemble = OnlineEnsemble()
    for start in range(0, 800, 40):
        ensemble.partial_fit(X[start : start + 40], y[start : start + 40])
    return ensemble


class FixedModel:
    """Stands in for a model that always answers the same probability."""

    is_fitted = True

    def __init__(self, probability: float, recent_log_loss: float = math.log(2)):
        self.probability = probability
        self.recent_log_loss = recent_log_loss

    def predict_one(self, x):
        return self.probability

    def predict_proba(self, X):
        return np.tile([1 - self.probability, self.probability], (len(X), 1))

    def recent_metrics(self):
        return {"n": 500, "log_loss": self.recent_log_loss}


def stub_ensemble(**probabilities) -> OnlineEnsemble:
    return OnlineEnsemble(learners={name: FixedModel(p) for name, p in probabilities.items()})


def test_nothing_fitted_is_a_coin_flip_with_no_confidence():
    prediction = HybridPredictor(online=OnlineEnsemble(), batch_version=None).predict(np.zeros(N_FEATURES))
    assert prediction.probability == 0.5 and prediction.confidence == 0.0
    assert prediction.model_probabilities == {}
    assert prediction.versions == {"batch": None, "online": None}


def test_fixed_weights_blend_batch_and_online_mean(trades, batch_model, ensemble):
    X, _, _ = trades
    hybrid = HybridPredictor(online=ensemble, batch=batch_model, batch_version="batch-7", online_version="online-3")
    prediction = hybrid.predict(X[1000])
    online_mean = ensemble.predict_one(X[1000]).mean
    assert prediction.probability == pytest.approx(0.7 * batch_model.predict_one(X[1000]) + 0.3 * online_mean, abs=1e-12)
    assert set(prediction.model_probabilities) == {"batch", "sgd", "pa", "mlp"}
    assert prediction.weights["batch"] == pytest.approx(0.7) and prediction.weights["mlp"] == pytest.approx(0.1)
    assert prediction.versions == {"batch": "batch-7", "online": "online-3"}
    np.testing.assert_allclose(
        hybrid.predict_proba(X[1000:1010])[:, 1], [hybrid.predict(row).probability for row in X[1000:1010]], atol=1e-9
    )


def test_missing_models_are_renormalised_away(trades, batch_model, ensemble):
    X, _, _ = trades
    online_only = HybridPredictor(online=ensemble).predict(X[1000])
    assert online_only.probability == pytest.approx(ensemble.predict_one(X[1000]).mean, abs=1e-12)
    batch_only = HybridPredictor(online=OnlineEnsemble(), batch=batch_model).predict(X[1000])
    assert batch_only.probability == pytest.approx(batch_model.predict_one(X[1000]), abs=1e-12)
    assert batch_only.weights == {"batch": 1.0}


def test_custom_weights_are_respected():
    hybrid = HybridPredictor(online=stub_ensemble(sgd=0.8), batch=FixedModel(0.4), batch_weight=0.5, online_weight=0.5)
    assert hybrid.predict(np.zeros(N_FEATURES)).probability == pytest.approx(0.6)


def test_adaptive_weights_favour_the_learner_with_lower_recent_log_loss(trades):
    X, y, _ = trades
    coin_flips = np.random.default_rng(5).integers(0, 2, size=len(y))
    skilled, guessing = SGDLearner(), SGDLearner()
    for start in range(0, 1000, 25):
        skilled.partial_fit(X[start : start + 25], y[start : start + 25])
        guessing.partial_fit(X[start : start + 25], coin_flips[start : start + 25])
    online = OnlineEnsemble(learners={"skilled": skilled, "guessing": guessing})
    fixed = HybridPredictor(online=online).weights(["skilled", "guessing"])
    adaptive = HybridPredictor(online=online, weighting="adaptive", temperature=0.05).weights(["skilled", "guessing"])
    assert fixed == {"skilled": 0.5, "guessing": 0.5}
    assert adaptive["skilled"] > 0.8
    gap = guessing.recent_metrics()["log_loss"] - skilled.recent_metrics()["log_loss"]
    assert adaptive["skilled"] / adaptive["guessing"] == pytest.approx(math.exp(gap / 0.05))


def test_adaptive_weighting_uses_the_batch_models_validation_log_loss():
    online = OnlineEnsemble(learners={"sgd": FixedModel(0.6, recent_log_loss=0.60)})
    strong_batch = HybridPredictor(online=online, batch=FixedModel(0.9), weighting="adaptive", batch_log_loss=0.55)
    weak_batch = HybridPredictor(online=online, batch=FixedModel(0.9), weighting="adaptive", batch_log_loss=0.70)
    assert strong_batch.weights(["batch", "sgd"])["batch"] > 0.7 > weak_batch.weights(["batch", "sgd"])["batch"]


def test_confidence_grows_with_distance_from_a_coin_flip_and_shrinks_with_disagreement():
    x = np.zeros(N_FEATURES)
    agreeing = HybridPredictor(online=stub_ensemble(sgd=0.8, pa=0.8), batch=FixedModel(0.8)).predict(x)
    split = HybridPredictor(online=stub_ensemble(sgd=0.2, pa=0.2), batch=FixedModel(0.9357142857142857)).predict(x)
    undecided = HybridPredictor(batch=FixedModel(0.5)).predict(x)
    assert agreeing.confidence == pytest.approx(0.6)
    assert split.probability == pytest.approx(0.715)
    assert 0 < split.confidence < abs(2 * split.probability - 1) < agreeing.confidence
    assert undecided.confidence == 0.0


def test_invalid_configuration_is_refused():
    with pytest.raises(ValueError):
        HybridPredictor(batch_weight=-0.1)
    with pytest.raises(ValueError):
        HybridPredictor(weighting="best")
    with pytest.raises(ValueError):
        HybridPredictor(temperature=0)
