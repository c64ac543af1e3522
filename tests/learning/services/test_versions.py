"""Model versions: activation and roll-back, refusal of bad artifacts, and the same predictions after a restart."""
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from learning.models import FeatureImportance, ModelVersion
from learning.services.online import online_update
from learning.services.prediction import hybrid_predict
from learning.services.retrain import batch_retrain
from learning.services.versions import ALL_STRATEGIES, model_version_activate, model_version_rollback
from tests.learning.learnable import learnable_features, store_learnable

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.django_db


@pytest.fixture
def two_batch_versions():
    store_learnable(200)
    batch_retrain()
    batch_retrain()  # the same data: the challenger stays inactive
    return ModelVersion.objects.get(version="batch-0001"), ModelVersion.objects.get(version="batch-0002")


def active(kind: str) -> str:
    return ModelVersion.objects.get(kind=kind, active=True).version


def test_activate_then_roll_back(two_batch_versions):
    first, second = two_batch_versions
    activated = model_version_activate(version_id=second.pk)
    assert activated.active and active("batch") == "batch-0002"
    assert ModelVersion.objects.get(pk=second.pk).replaced_id == first.pk
    importance = FeatureImportance.objects.get(strategy_type=ALL_STRATEGIES, feature_name="roc_4").model_importance
    assert importance == pytest.approx(second.feature_importance["roc_4"])

    assert model_version_rollback(kind="batch").version == "batch-0001"
    assert active("batch") == "batch-0001"
    with pytest.raises(ValidationError) as error:
        model_version_rollback(kind="batch")
    assert "kind" in error.value.message_dict


def test_activating_the_active_version_changes_nothing(two_batch_versions):
    first, _ = two_batch_versions
    assert model_version_activate(version_id=first.pk).active
    assert active("batch") == "batch-0001"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: model_version_activate(version_id=999_999), "version_id"),
        (lambda: model_version_rollback(kind="nonsense"), "kind"),
        (lambda: model_version_rollback(kind="online"), "kind"),
    ],
)
def test_bad_requests_name_the_field(call, field):
    with pytest.raises(ValidationError) as error:
        call()
    assert field in error.value.message_dict


def test_a_tampered_artifact_is_not_activated(two_batch_versions):
    _, second = two_batch_versions
    blob = bytearray(second.artifact)
    blob[-10] ^= 0xFF
    ModelVersion.objects.filter(pk=second.pk).update(artifact=bytes(blob))
    with pytest.raises(ValidationError, match="checksum mismatch") as error:
        model_version_activate(version_id=second.pk)
    assert "artifact" in error.value.message_dict
    assert active("batch") == "batch-0001"


def test_a_refused_active_artifact_leaves_the_loaded_model_serving(two_batch_versions, caplog):
    first, second = two_batch_versions
    features = learnable_features(1, seed=7)[0][0]
    before = hybrid_predict(features=features)
    assert before.versions["batch"] == "batch-0001"

    # Someone edits the database behind the services' back: the active row now names a
    # scikit-learn this process does not run.
    ModelVersion.objects.filter(pk=first.pk).update(active=False)
    ModelVersion.objects.filter(pk=second.pk).update(active=True, sklearn_version="0.0.1")
    with caplog.at_level(logging.ERROR, logger="learning.services.prediction"):
        after = hybrid_predict(features=features)
    assert after == before
    assert "Refusing to load model batch-0002" in caplog.text and "scikit-learn 0.0.1" in caplog.text


def manage_shell(env: dict, code: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_after_a_restart_the_active_versions_give_the_same_predictions(subprocess_env):
    store_learnable(200)
    batch_retrain()
    online_update()
    rows = learnable_features(5, seed=11)[0]
    here = [hybrid_predict(features=row) for row in rows]
    code = (
        "import json, sys\n"
        "from learning.services.prediction import hybrid_predict\n"
        f"rows = json.loads({json.dumps(json.dumps(rows))})\n"
        "print(json.dumps([hybrid_predict(features=row).__dict__ for row in rows]))\n"
    )
    there = json.loads(manage_shell(subprocess_env, code).strip().splitlines()[-1])
    assert [p.versions for p in here] == [p["versions"] for p in there] == [{"batch": "batch-0001", "online": "online-0001"}] * 5
    assert [p.probability for p in here] == [p["probability"] for p in there]
    assert [p.model_probabilities for p in here] == [p["model_probabilities"] for p in there]


def test_a_v1_version_still_loads_and_is_refused_for_v2_features_saying_why(two_batch_versions, caplog):
    import numpy as np

    from learning.ml.batch import train_batch_model
    from learning.ml.schema import FEATURE_SCHEMA_V1, FEATURE_SCHEMA_V2
    from learning.services.versions import ModelSchemaMismatch, load_model, model_version_create

    features, outcomes = learnable_features(300, seed=3)
    X = np.array([[row[name] for name in FEATURE_SCHEMA_V1.names] for row in features])
    trained = train_batch_model(X, outcomes, np.arange(len(outcomes)) * 3600.0, feature_names=FEATURE_SCHEMA_V1.names)
    # A version saved before schema v2 existed.
    old = model_version_create(kind="batch", model_state=trained.model.get_state(), metrics=trained.metrics)
    ModelVersion.objects.filter(pk=old.pk).update(feature_schema=FEATURE_SCHEMA_V1.as_dict())
    old.refresh_from_db()

    model = load_model(old, schema_check=False)  # still loads, to be inspected
    assert np.all((model.predict_proba(X[:5]) >= 0) & (model.predict_proba(X[:5]) <= 1))
    with pytest.raises(ModelSchemaMismatch) as refused:
        load_model(old)
    message = str(refused.value)
    assert "feature schema 'v1' (30 features)" in message and f"schema 'v2' ({len(FEATURE_SCHEMA_V2.names)} features)" in message
    assert "retrain" in message
    with pytest.raises(ValidationError, match="feature schema 'v1'"):
        model_version_activate(version_id=old.pk)

    # Made active behind the services' back, it serves nothing: the v2 model loaded before goes on.
    sample = learnable_features(1, seed=7)[0][0]
    before = hybrid_predict(features=sample)
    ModelVersion.objects.filter(kind="batch", active=True).update(active=False)
    ModelVersion.objects.filter(pk=old.pk).update(active=True)
    with caplog.at_level(logging.ERROR, logger="learning.services.prediction"):
        after = hybrid_predict(features=sample)
    assert after == before and f"Refusing to load model {old.version}" in caplog.text and "feature schema 'v1'" in caplog.text
