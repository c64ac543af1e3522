"""Model versions: storing a trained model as a version, loading it back verified, and switching the active one."""
import logging
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from learning.ml.batch import BatchModel, SystemSplitModel, batch_model_from_state
from learning.ml.online import OnlineEnsemble
from learning.ml.schema import current_feature_schema
from learning.ml.serialization import Artifact, ModelArtifactError, dump_estimator, load_estimator
from learning.models import FeatureImportance, ModelKind, ModelVersion
from learning.services.aggregates import MODEL_IMPORTANCE_STRATEGY

logger = logging.getLogger(__name__)

# FeatureImportance rows of the batch model, which serves every strategy at once.
ALL_STRATEGIES = MODEL_IMPORTANCE_STRATEGY  # the rows a rebuild of the record statistics leaves alone
BATCH_MODELS_KEPT = 4


def _next_sequence(kind: str) -> int:
    # Called under the lock that serialises writers of this kind (the online state row or the
    # retrain lease), so two writers never pick the same number.
    return (ModelVersion.objects.filter(kind=kind).aggregate(top=Max("sequence"))["top"] or 0) + 1


def model_version_lock_active(kind: str) -> ModelVersion | None:
    """The active version of `kind` (without its bytes), locked until the transaction ends."""
    return ModelVersion.objects.select_for_update().defer("artifact").filter(kind=kind, active=True).first()


class ModelSchemaMismatch(ModelArtifactError):
    """A stored model reads another feature schema than the one decisions are made with now."""


def model_schema_check(version: ModelVersion) -> None:
    """Raise ModelSchemaMismatch, saying what to do, unless `version` reads the current feature schema."""
    current = current_feature_schema()
    if version.feature_schema != current.as_dict():
        stored = version.feature_schema or {}
        raise ModelSchemaMismatch(
            f"{version.version} was trained on feature schema {stored.get('version')!r} "
            f"({len(stored.get('names', []))} features); decisions now use schema {current.version!r} "
            f"({len(current.names)} features), which it cannot judge. Train a {current.version!r} model "
            f"(manage.py retrain) instead."
        )


def load_model(version: ModelVersion, *, schema_check: bool = True):
    """The model stored in a version, refusing a bad checksum or unknown types, and (with `schema_check`)
    a model that reads another feature schema than the current one (ModelSchemaMismatch).

    Old versions (feature schema v1) still load with schema_check=False, to be inspected.
    """
    if schema_check:
        model_schema_check(version)
    state = load_estimator(bytes(version.artifact), sha256=version.sha256, sklearn_version=version.sklearn_version)
    if version.kind == ModelKind.BATCH:
        return batch_model_from_state(state)
    return OnlineEnsemble.from_state(state)


# Batch models loaded or trained in this process, by version and checksum. A batch model never
# changes once trained (online ensembles do, so they are not kept here), and a replay retraining
# every few hundred trades would otherwise read each champion back from its skops bytes.
_batch_models: OrderedDict[tuple[int, str], BatchModel | SystemSplitModel] = OrderedDict()


def batch_model_keep(version: ModelVersion, model: BatchModel | SystemSplitModel) -> BatchModel | SystemSplitModel:
    """Remember `model` as the one stored in `version` (it was just trained here), so it is not read back."""
    _batch_models[(version.pk, version.sha256)] = model
    while len(_batch_models) > BATCH_MODELS_KEPT:
        _batch_models.popitem(last=False)
    return model


def batch_model(version: ModelVersion) -> BatchModel | SystemSplitModel:
    """The batch model of `version`: the one this process trained or loaded, else loaded (and verified) now."""
    key = (version.pk, version.sha256)
    if key in _batch_models:
        # Most recently used last: an active champion read at every retrain outlives the challengers it beats.
        _batch_models.move_to_end(key)
        return _batch_models[key]
    return batch_model_keep(version, load_model(version))


def model_version_create(*, kind: str, model_state: dict | None = None, artifact: Artifact | None = None, **fields) -> ModelVersion:
    """A new inactive version of `kind` holding `model_state` (or its `artifact`, dumped already).

    The caller holds the lock that serialises writers of this kind (the online state row or the retrain lease).
    """
    artifact = artifact or dump_estimator(model_state)
    sequence = _next_sequence(kind)
    return ModelVersion.objects.create(
        kind=kind,
        sequence=sequence,
        version=f"{kind}-{sequence:04d}",
        artifact=artifact.blob,
        sha256=artifact.sha256,
        sklearn_version=artifact.sklearn_version,
        feature_schema=current_feature_schema().as_dict(),
        **fields,
    )


def model_version_switch(*, current: ModelVersion | None, target: ModelVersion, replaced: ModelVersion | None) -> None:
    """Make `target` the active version of its kind; both rows must be locked by the caller."""
    now = timezone.now()
    if current is not None:
        # The one-active-per-kind constraint is checked per statement: deactivate first.
        ModelVersion.objects.filter(pk=current.pk).update(active=False)
        current.active = False
    target.active, target.activated_at, target.replaced = True, now, replaced
    ModelVersion.objects.filter(pk=target.pk).update(active=True, activated_at=now, replaced=replaced)
    if target.kind == ModelKind.BATCH:
        _model_importance_write(importance=target.feature_importance, now=now)


def _model_importance_write(*, importance: Mapping[str, float], now: datetime) -> None:
    """Mirror the active batch model's permutation importance into feature_importance_learning."""
    FeatureImportance.objects.filter(strategy_type=ALL_STRATEGIES).exclude(feature_name__in=list(importance)).delete()
    FeatureImportance.objects.bulk_create(
        [
            FeatureImportance(feature_name=name, strategy_type=ALL_STRATEGIES, model_importance=value, last_updated=now)
            for name, value in importance.items()
        ],
        update_conflicts=True,
        unique_fields=["feature_name", "strategy_type"],
        update_fields=["model_importance", "last_updated"],
    )


@transaction.atomic
def feature_importance_model_refresh() -> int:
    """Write the active batch version's importance again (a full statistics rebuild clears it)."""
    active = ModelVersion.objects.defer("artifact").filter(kind=ModelKind.BATCH, active=True).first()
    if active is None:
        return 0
    _model_importance_write(importance=active.feature_importance, now=timezone.now())
    return len(active.feature_importance)


def _verify_loadable(version: ModelVersion) -> None:
    try:
        load_model(ModelVersion.objects.get(pk=version.pk))
    except ModelArtifactError as error:
        raise ValidationError({"artifact": f"{version.version} cannot be loaded: {error}"}) from error


@transaction.atomic
def model_version_activate(*, version_id: int) -> ModelVersion:
    """Make a version the active one of its kind (refused if its artifact cannot be loaded)."""
    target = ModelVersion.objects.defer("artifact").filter(pk=version_id).first()
    if target is None:
        raise ValidationError({"version_id": f"No model version {version_id}."})
    rows = list(
        ModelVersion.objects.select_for_update()
        .defer("artifact")
        .filter(Q(pk=version_id) | Q(kind=target.kind, active=True))
        .order_by("pk")
    )
    target = next(row for row in rows if row.pk == version_id)
    if target.active:
        return target
    _verify_loadable(target)
    current = next((row for row in rows if row.active), None)
    model_version_switch(current=current, target=target, replaced=current)
    logger.info("Activated %s (was %s)", target.version, current.version if current else "none")
    return target


@transaction.atomic
def model_version_rollback(*, kind: str) -> ModelVersion:
    """Re-activate the version that was active before the current one of this kind."""
    if kind not in ModelKind.values:
        raise ValidationError({"kind": f"Unknown model kind {kind!r}; expected one of {', '.join(ModelKind.values)}."})
    current = ModelVersion.objects.defer("artifact").filter(kind=kind, active=True).first()
    if current is None:
        raise ValidationError({"kind": f"No {kind} version is active."})
    if current.replaced_id is None:
        raise ValidationError({"kind": f"{current.version} has no previous version to roll back to."})
    rows = list(
        ModelVersion.objects.select_for_update().defer("artifact").filter(pk__in=[current.pk, current.replaced_id]).order_by("pk")
    )
    current = next(row for row in rows if row.pk == current.pk)
    previous = next((row for row in rows if row.pk == current.replaced_id), None)
    if not current.active or previous is None:
        raise ValidationError({"kind": f"The active {kind} version changed meanwhile; try again."})
    _verify_loadable(previous)
    # The previous version keeps its own `replaced`, so rolling back again steps further back.
    model_version_switch(current=current, target=previous, replaced=previous.replaced)
    logger.info("Rolled %s back from %s to %s", kind, current.version, previous.version)
    return previous
