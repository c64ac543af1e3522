"""A tampered active artifact (bytes that fail their sha256, or an allow-listed-out type) is refused; the loaded model keeps serving."""
import logging

import pytest
from sklearn.ensemble import RandomForestClassifier

from learning.ml.serialization import dump_estimator
from learning.models import ModelVersion
from learning.services.prediction import hybrid_predict
from learning.services.retrain import batch_retrain
from learning.services.versions import model_version_activate
from tests.learning.learnable import learnable_features, store_learnable

pytestmark = pytest.mark.django_db


def tamper_with_bytes(version: ModelVersion) -> str:
    blob = bytearray(version.artifact)
    blob[len(blob) // 2] ^= 0xFF
    ModelVersion.objects.filter(pk=version.pk).update(artifact=bytes(blob))
    return "checksum mismatch"


def swap_in_a_stranger(version: ModelVersion) -> str:
    # A well-formed skops file with a correct sha256, holding a type outside the allow-list.
    artifact = dump_estimator({"model": RandomForestClassifier(n_estimators=2).fit([[0.0], [1.0]], [0, 1])})
    ModelVersion.objects.filter(pk=version.pk).update(artifact=artifact.blob, sha256=artifact.sha256)
    return "not allowed"


@pytest.mark.parametrize("tamper", [tamper_with_bytes, swap_in_a_stranger])
def test_a_tampered_version_is_refused_and_the_previous_one_keeps_serving(tamper, caplog, settings):
    settings.LEARNING_MODEL_RECHECK_SECONDS = 0
    store_learnable(200)
    batch_retrain()
    batch_retrain()
    first, second = ModelVersion.objects.get(version="batch-0001"), ModelVersion.objects.get(version="batch-0002")
    features = learnable_features(1, seed=3)[0][0]
    before = hybrid_predict(features=features)
    assert before.versions["batch"] == "batch-0001"

    reason = tamper(second)
    with pytest.raises(Exception, match=reason):
        model_version_activate(version_id=second.pk)
    assert ModelVersion.objects.get(kind="batch", active=True).pk == first.pk

    # Made active behind the services' back (a hand-edited row): the serving process refuses to load it.
    ModelVersion.objects.filter(pk=first.pk).update(active=False)
    ModelVersion.objects.filter(pk=second.pk).update(active=True)
    with caplog.at_level(logging.ERROR, logger="learning.services.prediction"):
        after = hybrid_predict(features=features)
    assert after == before
    assert "Refusing to load model batch-0002" in caplog.text and reason in caplog.text
