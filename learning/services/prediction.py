"""Hybrid prediction: the probability of a net profit from the active batch and online versions, loaded once per process."""
import logging
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.signals import setting_changed
from django.db import DatabaseError
from django.dispatch import receiver

from learning.ml.hybrid import HybridPrediction, HybridPredictor
from learning.ml.schema import FeatureSchemaError, current_feature_schema
from learning.models import ModelKind, ModelVersion
from learning.services.training_data import schema_error_messages
from learning.services.versions import load_model

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Loaded:
    version_id: int
    sha256: str
    version: str
    model: object
    log_loss: float | None


class _ActiveModels:
    """The active versions loaded in this process, re-checked at most every LEARNING_MODEL_RECHECK_SECONDS.

    A version that cannot be loaded (another scikit-learn, a bad checksum, an unexpected type,
    another feature schema) is logged once and the model loaded before it keeps serving.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._checked_at = -math.inf
        self._loaded: dict[str, _Loaded] = {}
        self._refused: set[tuple[int, str]] = set()
        self._predictor: HybridPredictor | None = None

    def reset(self) -> None:
        with self._lock:
            self._checked_at, self._loaded, self._refused, self._predictor = -math.inf, {}, set(), None

    def predictor(self) -> HybridPredictor:
        if self._predictor is None or time.monotonic() - self._checked_at >= settings.LEARNING_MODEL_RECHECK_SECONDS:
            # Another thread already re-checking: serve what is loaded rather than wait.
            if self._lock.acquire(blocking=self._predictor is None):
                try:
                    self._refresh()
                finally:
                    self._lock.release()
        return self._predictor

    def adopt(self, *, version: ModelVersion, model) -> None:
        with self._lock:
            self._loaded[version.kind] = _Loaded(
                version_id=version.pk, sha256=version.sha256, version=version.version, model=model, log_loss=None
            )
            self._predictor = self._build()

    def _refresh(self) -> None:
        try:
            active = {kind: (pk, sha256) for pk, kind, sha256 in ModelVersion.objects.filter(active=True).values_list("id", "kind", "sha256")}
        except DatabaseError as error:
            logger.error("Cannot check the active model versions, serving those loaded: %s", error)
            self._checked_at = time.monotonic()
            self._predictor = self._predictor or self._build()
            return
        changed = False
        for kind in ModelKind.values:
            current = self._loaded.get(kind)
            wanted = active.get(kind)
            if wanted is None:
                changed |= self._loaded.pop(kind, None) is not None
            elif (current is None or (current.version_id, current.sha256) != wanted) and wanted not in self._refused:
                loaded = self._load(wanted[0])
                if loaded is not None:
                    self._loaded[kind] = loaded
                    changed = True
                else:
                    self._refused.add(wanted)
        if changed or self._predictor is None:
            self._predictor = self._build()
        self._checked_at = time.monotonic()

    def _load(self, version_id: int) -> _Loaded | None:
        version = ModelVersion.objects.filter(pk=version_id).first()
        if version is None:
            return None
        try:
            model = load_model(version)
        except Exception as error:  # noqa: BLE001 - whatever is wrong with a stored model, predictions go on
            logger.error("Refusing to load model %s (serving the previously loaded one): %s", version.version, error)
            return None
        logger.info("Loaded model %s", version.version)
        log_loss = version.metrics.get("log_loss") if version.kind == ModelKind.BATCH else None
        return _Loaded(version_id=version.pk, sha256=version.sha256, version=version.version, model=model, log_loss=log_loss)

    def _build(self) -> HybridPredictor:
        batch, online = self._loaded.get(ModelKind.BATCH), self._loaded.get(ModelKind.ONLINE)
        return HybridPredictor(
            batch=batch.model if batch else None,
            online=online.model if online else None,
            batch_weight=settings.LEARNING_HYBRID_BATCH_WEIGHT,
            online_weight=settings.LEARNING_HYBRID_ONLINE_WEIGHT,
            weighting=settings.LEARNING_HYBRID_WEIGHTING,
            batch_log_loss=batch.log_loss if batch else None,
            batch_version=batch.version if batch else None,
            online_version=online.version if online else None,
        )


_active_models = _ActiveModels()


@receiver(setting_changed)
def _reset_on_setting_change(*, setting: str, **kwargs) -> None:
    if setting.startswith("LEARNING_"):
        _active_models.reset()


def served_model_adopt(*, version: ModelVersion, model) -> None:
    """Serve a model this process just saved as `version` without reading its artifact back.

    An online update in a replay saves a checkpoint every few trades; loading each again
    from its skops bytes cost more than the update itself.
    """
    _active_models.adopt(version=version, model=model)


def served_models_forget() -> None:
    """Drop the models loaded in this process: the next prediction reads the active versions again."""
    _active_models.reset()


def hybrid_predict(*, features: Mapping[str, float], predictor: HybridPredictor | None = None) -> HybridPrediction:
    """Probability of a net profit from the active batch and online versions, blended by the hybrid weights.

    Raises ValidationError naming each missing, extra or non-finite feature. Read-only, so no
    transaction: this is the hot path of every trading decision. A replay passes the
    `predictor` it keeps in memory (learning.services.session) instead of the active versions.
    """
    if not isinstance(features, Mapping):
        raise ValidationError({"features": "Must be an object of feature name to number."})
    try:
        x = current_feature_schema().vector(features)
    except FeatureSchemaError as error:
        raise ValidationError(schema_error_messages(error)) from None
    return (predictor or _active_models.predictor()).predict(x)
