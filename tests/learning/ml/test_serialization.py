"""skops persistence: exact round trips, and refusal of tampered, mismatched or untrusted artifacts."""

import hashlib

import numpy as np
import pytest
import sklearn
from sklearn.ensemble import RandomForestClassifier
from sklearn.preprocessing import FunctionTransformer

from learning.ml.batch import BatchModel, train_batch_model
from learning.ml.online import OnlineEnsemble
from learning.ml.serialization import ModelArtifactError, dump_estimator, load_estimator
from tests.learning.ml.synthetic import synthetic_trades


@pytest.fixture(scope="module")
def trades():
    return synthetic_trades(900, seed=41)


@pytest.fixture(scope="module")
def ensemble(trades):
    X, y, _ = trades
    ensemble = OnlineEnsemble()
    for start in range(0, 600, 50):
        ensemble.partial_fit(X[start : start + 50], y[start : start + 50])
    return ensemble


def round_trip(state):
    artifact = dump_estimator(state)
    return load_estimator(artifact.blob, sha256=artifact.sha256, sklearn_version=artifact.sklearn_version)


def test_online_ensemble_round_trip_predicts_and_keeps_learning_identically(trades, ensemble):
    X, y, _ = trades
    artifact = dump_estimator(ensemble.get_state())
    assert artifact.sha256 == hashlib.sha256(artifact.blob).hexdigest()
    assert artifact.sklearn_version == sklearn.__version__
    restored = OnlineEnsemble.from_state(round_trip(ensemble.get_state()))
    np.testing.assert_array_equal(restored.predict_proba(X[600:]), ensemble.predict_proba(X[600:]))
    assert restored.predict_one(X[700]) == ensemble.predict_one(X[700])
    for kind, learner in ensemble.learners.items():
        assert restored.learners[kind].recent_metrics() == learner.recent_metrics()
        assert restored.learners[kind].samples_seen == learner.samples_seen
    # After a restart the models carry on as if nothing happened.
    original = OnlineEnsemble.from_state(round_trip(ensemble.get_state()))
    original.partial_fit(X[600:700], y[600:700])
    restored.partial_fit(X[600:700], y[600:700])
    np.testing.assert_array_equal(restored.predict_proba(X[700:]), original.predict_proba(X[700:]))


@pytest.mark.parametrize("kind", ["hgb", "logistic"])
@pytest.mark.parametrize("calibration", ["sigmoid", "isotonic"])
def test_batch_model_round_trip_predicts_identically(trades, kind, calibration):
    X, y, times = trades
    model = train_batch_model(X, y, times, kind=kind, calibration=calibration).model
    restored = BatchModel.from_state(round_trip(model.get_state()))
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))
    assert [restored.predict_one(row) for row in X[:20]] == [model.predict_one(row) for row in X[:20]]


def test_tampered_bytes_are_refused(ensemble):
    artifact = dump_estimator(ensemble.get_state())
    tampered = bytearray(artifact.blob)
    tampered[len(tampered) // 2] ^= 0xFF
    with pytest.raises(ModelArtifactError, match="checksum mismatch"):
        load_estimator(bytes(tampered), sha256=artifact.sha256, sklearn_version=artifact.sklearn_version)


def test_another_scikit_learn_version_is_refused(ensemble):
    artifact = dump_estimator(ensemble.get_state())
    with pytest.raises(ModelArtifactError, match="scikit-learn 1.5.0"):
        load_estimator(artifact.blob, sha256=artifact.sha256, sklearn_version="1.5.0")


@pytest.mark.parametrize(
    "stranger, type_name",
    [
        # skops would trust any scikit-learn estimator; the allow-list only admits our models.
        (RandomForestClassifier(n_estimators=2).fit([[0.0], [1.0]], [0, 1]), "RandomForestClassifier"),
        (FunctionTransformer(func=np.exp), "numpy.exp"),
    ],
)
def test_types_outside_the_allow_list_are_refused(stranger, type_name):
    artifact = dump_estimator({"model": stranger})
    with pytest.raises(ModelArtifactError, match=f"not allowed: .*{type_name}"):
        load_estimator(artifact.blob, sha256=artifact.sha256, sklearn_version=artifact.sklearn_version)


def test_bytes_that_are_not_a_skops_file_are_refused():
    blob = b"not a model"
    with pytest.raises(ModelArtifactError, match="not a readable skops file"):
        load_estimator(blob, sha256=hashlib.sha256(blob).hexdigest(), sklearn_version=sklearn.__version__)


def test_allow_list_can_be_narrowed(ensemble):
    artifact = dump_estimator(ensemble.get_state())
    with pytest.raises(ModelArtifactError, match="MLPClassifier"):
        load_estimator(
            artifact.blob,
            sha256=artifact.sha256,
            sklearn_version=artifact.sklearn_version,
            allowed_types=frozenset({"builtins.dict"}),
        )
