"""hybrid_predict: errors name the feature; the blend follows the settings and picks up activations."""
import math

import pytest
from django.core.exceptions import ValidationError

from learning.ml.schema import current_feature_schema
from learning.services.online import online_update
from learning.services.prediction import hybrid_predict
from learning.services.retrain import batch_retrain
from learning.services.versions import model_version_activate
from learning.models import ModelVersion
from tests.learning.learnable import learnable_features, store_learnable

pytestmark = pytest.mark.django_db

FEATURES = learnable_features(1, seed=21)[0][0]


def test_without_models_it_is_a_coin_flip():
    prediction = hybrid_predict(features=FEATURES)
    assert (prediction.probability, prediction.confidence, prediction.model_probabilities) == (0.5, 0.0, {})
    assert prediction.versions == {"batch": None, "online": None}


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (lambda f: f.pop("rsi_14"), "rsi_14", "Missing."),
        (lambda f: f.update(moon_phase=0.5), "moon_phase", f"Not in feature schema {current_feature_schema().version}."),
        (lambda f: f.update(atr_pct=math.nan), "atr_pct", "Not a finite number (nan)."),
        (lambda f: f.update(roc_4=math.inf), "roc_4", "Not a finite number (inf)."),
        (lambda f: f.update(adx_14="strong"), "adx_14", "Not a number (str)."),
    ],
)
def test_a_bad_feature_is_named(change, field, message):
    features = dict(FEATURES)
    change(features)
    with pytest.raises(ValidationError) as error:
        hybrid_predict(features=features)
    assert error.value.message_dict == {field: [message]}


def test_features_must_be_a_mapping():
    with pytest.raises(ValidationError) as error:
        hybrid_predict(features=[1.0, 2.0])
    assert "features" in error.value.message_dict


def test_blends_batch_and_online_with_the_configured_weights(settings):
    settings.LEARNING_HYBRID_WEIGHTING = "fixed"
    store_learnable(200)
    batch_retrain()
    online_update()
    prediction = hybrid_predict(features=FEATURES)
    assert set(prediction.model_probabilities) == {"batch", "sgd", "pa", "mlp"}
    assert prediction.weights["batch"] == pytest.approx(0.7)
    assert prediction.weights["sgd"] == pytest.approx(0.1)
    expected = sum(prediction.weights[name] * p for name, p in prediction.model_probabilities.items())
    assert prediction.probability == pytest.approx(expected)
    assert prediction.versions == {"batch": "batch-0001", "online": "online-0001"}

    settings.LEARNING_HYBRID_BATCH_WEIGHT, settings.LEARNING_HYBRID_ONLINE_WEIGHT = 1.0, 0.0
    batch_only = hybrid_predict(features=FEATURES)
    assert batch_only.probability == pytest.approx(prediction.model_probabilities["batch"])

    settings.LEARNING_HYBRID_BATCH_WEIGHT, settings.LEARNING_HYBRID_ONLINE_WEIGHT = 0.7, 0.3
    settings.LEARNING_HYBRID_WEIGHTING = "adaptive"
    adaptive = hybrid_predict(features=FEATURES)
    assert adaptive.weights != prediction.weights and sum(adaptive.weights.values()) == pytest.approx(1.0)


def test_an_activation_is_picked_up(settings):
    store_learnable(200)
    batch_retrain()
    batch_retrain()
    assert hybrid_predict(features=FEATURES).versions["batch"] == "batch-0001"
    model_version_activate(version_id=ModelVersion.objects.get(version="batch-0002").pk)
    assert hybrid_predict(features=FEATURES).versions["batch"] == "batch-0002"


def test_a_loaded_model_is_kept_until_the_recheck_interval_passes(settings):
    settings.LEARNING_MODEL_RECHECK_SECONDS = 3600.0
    assert hybrid_predict(features=FEATURES).versions["batch"] is None
    store_learnable(200)
    batch_retrain()
    assert hybrid_predict(features=FEATURES).versions["batch"] is None
