"""Model services: online updates, batch retraining with champion/challenger, model versions, hybrid prediction."""
import copy
import heapq
import logging
import math
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.signals import setting_changed
from django.db import DatabaseError, transaction
from django.db.models import Max, Q
from django.dispatch import receiver
from django.utils import timezone

from learning.ml import metrics as ml_metrics
from learning.ml.batch import (
    MIN_TRAINING_ROWS,
    MIN_VALIDATION_ROWS,
    BatchModel,
    BatchTrainingResult,
    evaluate,
    train_batch_model,
)
from learning.ml.hybrid import HybridPrediction, HybridPredictor
from learning.ml.online import OnlineEnsemble
from learning.ml.schema import FEATURE_SCHEMA, FeatureSchemaError
from learning.ml.serialization import Artifact, ModelArtifactError, dump_estimator, load_estimator
from learning.models import (
    FeatureImportance,
    LearningLease,
    ModelKind,
    ModelVersion,
    OnlineLearningState,
    TrainingExample,
    TrainingRecord,
)
from learning.services.aggregates import MODEL_IMPORTANCE_STRATEGY

logger = logging.getLogger(__name__)

ONLINE_STATE_PK = 1
RETRAIN_LEASE = "batch_retrain"
RETRAIN_ALREADY_RUNNING = "retrain already running"
# FeatureImportance rows of the batch model, which serves every strategy at once.
ALL_STRATEGIES = MODEL_IMPORTANCE_STRATEGY  # the rows a rebuild of the record statistics leaves alone
# A record id passed over because its transaction had not committed yet is looked for again for
# this long; an id still missing after that belonged to a rolled-back or deleted record.
DEFERRED_GAP_GRACE = timedelta(hours=1)
MAX_DEFERRED_GAPS = 10_000
SYMBOL_MAX_LENGTH = TrainingExample._meta.get_field("symbol").max_length
SOURCE_MAX_LENGTH = TrainingExample._meta.get_field("source").max_length
# Fields read from a training record to learn from it.
_RECORD_FIELDS = ("id", "features", "success", "exit_time", "created_at")


@dataclass(frozen=True)
class OnlineUpdateResult:
    """What one online update learned; `metrics` holds each learner's (and the ensemble's) recent scores."""

    learned: int
    samples_seen: int
    updates: int
    metrics: dict[str, dict]
    version: str | None
    skipped: int = 0


@dataclass(frozen=True)
class RetrainResult:
    """The outcome of a batch retrain: the new version (if one was trained) and why it is or is not active."""

    version: str | None
    activated: bool
    metrics: dict
    champion_metrics: dict | None
    reason: str

    @classmethod
    def untrained(cls, reason: str) -> "RetrainResult":
        """No version trained, for `reason`."""
        return cls(version=None, activated=False, metrics={}, champion_metrics=None, reason=reason)


@dataclass(frozen=True, kw_only=True)
class ExampleInput:
    """A labelled feature vector sent to `/ml/online/add_training_data`."""

    features: Mapping[str, float]
    target: bool
    symbol: str
    source: str = "api"


def _require_aware(value: datetime | None, name: str) -> None:
    if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
        raise ValidationError({name: "Must be a timezone-aware datetime."})


def _next_sequence(kind: str) -> int:
    # Called under the lock that serialises writers of this kind (the online state row or the
    # retrain lease), so two writers never pick the same number.
    return (ModelVersion.objects.filter(kind=kind).aggregate(top=Max("sequence"))["top"] or 0) + 1


def _locked_active(kind: str) -> ModelVersion | None:
    return ModelVersion.objects.select_for_update().defer("artifact").filter(kind=kind, active=True).first()


def _load_model(version: ModelVersion):
    """The model stored in a version, refusing another feature schema, a bad checksum or unknown types."""
    if version.feature_schema != FEATURE_SCHEMA.as_dict():
        raise ModelArtifactError(
            f"{version.version} reads feature schema {version.feature_schema.get('version')!r}, "
            f"not the current {FEATURE_SCHEMA.version!r}"
        )
    state = load_estimator(bytes(version.artifact), sha256=version.sha256, sklearn_version=version.sklearn_version)
    if version.kind == ModelKind.BATCH:
        return BatchModel.from_state(state)
    return OnlineEnsemble.from_state(state)


# Batch models loaded or trained in this process, by version and checksum. A batch model never
# changes once trained (online ensembles do, so they are not kept here), and a replay retraining
# every few hundred trades would otherwise read each champion back from its skops bytes.
_batch_models: OrderedDict[tuple[int, str], BatchModel] = OrderedDict()
_BATCH_MODELS_KEPT = 4


def _batch_model_keep(version: ModelVersion, model: BatchModel) -> BatchModel:
    _batch_models[(version.pk, version.sha256)] = model
    while len(_batch_models) > _BATCH_MODELS_KEPT:
        _batch_models.popitem(last=False)
    return model


def batch_model(version: ModelVersion) -> BatchModel:
    """The batch model of `version`: the one this process trained or loaded, else loaded (and verified) now."""
    key = (version.pk, version.sha256)
    if key in _batch_models:
        # Most recently used last: an active champion read at every retrain outlives the challengers it beats.
        _batch_models.move_to_end(key)
        return _batch_models[key]
    return _batch_model_keep(version, _load_model(version))


def _new_version(*, kind: str, model_state: dict | None = None, artifact: Artifact | None = None, **fields) -> ModelVersion:
    """A new inactive version of `kind` holding `model_state` (or its `artifact`, dumped already)."""
    artifact = artifact or dump_estimator(model_state)
    sequence = _next_sequence(kind)
    return ModelVersion.objects.create(
        kind=kind,
        sequence=sequence,
        version=f"{kind}-{sequence:04d}",
        artifact=artifact.blob,
        sha256=artifact.sha256,
        sklearn_version=artifact.sklearn_version,
        feature_schema=FEATURE_SCHEMA.as_dict(),
        **fields,
    )


def _switch_active(*, current: ModelVersion | None, target: ModelVersion, replaced: ModelVersion | None) -> None:
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


# --- Online update --------------------------------------------------------------------------


class _TrainerCache:
    """The ensemble the last online update in this process left, keyed by the version it was saved as.

    Loading a checkpoint costs tens of milliseconds and replays update after every few trades; an
    update takes the ensemble out while it learns, so a rolled-back update leaves nothing stale.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._version_id: int | None = None
        self._ensemble: OnlineEnsemble | None = None

    def take(self, version_id: int) -> OnlineEnsemble | None:
        with self._lock:
            ensemble = self._ensemble if self._version_id == version_id else None
            self._version_id, self._ensemble = None, None
            return ensemble

    def put(self, version_id: int, ensemble: OnlineEnsemble) -> None:
        with self._lock:
            self._version_id, self._ensemble = version_id, ensemble


_trainer_cache = _TrainerCache()


@dataclass(frozen=True)
class _Sample:
    created_at: datetime
    features: dict
    outcome: int
    record_id: int | None = None
    example_id: int | None = None
    exit_time: datetime | None = None


@dataclass(frozen=True)
class _ChunkResult:
    consumed: int
    learned: int
    skipped: int
    version: ModelVersion | None


def _schema_vector(features) -> np.ndarray | None:
    """A stored record's features in schema order, or None when they do not fit the schema."""
    try:
        return FEATURE_SCHEMA.vector(features)
    except FeatureSchemaError:
        return None


def _locked_online_state() -> OnlineLearningState:
    """The online state row, locked until the transaction ends; two updates never overlap."""
    try:
        return OnlineLearningState.objects.select_for_update().get(pk=ONLINE_STATE_PK)
    except OnlineLearningState.DoesNotExist:
        OnlineLearningState.objects.bulk_create([OnlineLearningState(pk=ONLINE_STATE_PK)], ignore_conflicts=True)
        return OnlineLearningState.objects.select_for_update().get(pk=ONLINE_STATE_PK)


def _record_sample(row: tuple) -> _Sample:
    record_id, features, success, exit_time, created_at = row
    return _Sample(created_at=created_at, features=features or {}, outcome=int(success), record_id=record_id, exit_time=exit_time)


def _records_to_learn(state: OnlineLearningState, *, as_of: datetime | None, limit: int, now: datetime):
    """Records in id order: deferred ones now learnable, then those past the watermark.

    Returns the candidate samples, the fresh rows fetched (for the watermark) and the deferred
    ids that stay deferred.
    """
    deferred = {int(record_id): deferred_at for record_id, deferred_at in state.deferred_record_ids.items()}
    candidates, still_deferred = [], {}
    if deferred:
        present = {row[0]: row for row in TrainingRecord.objects.filter(id__in=list(deferred)).values_list(*_RECORD_FIELDS)}
        for record_id in sorted(deferred):
            row = present.get(record_id)
            if row is None:
                if now - datetime.fromisoformat(deferred[record_id]) < DEFERRED_GAP_GRACE:
                    still_deferred[record_id] = deferred[record_id]
            elif as_of is not None and row[3] >= as_of:
                still_deferred[record_id] = deferred[record_id]
            else:
                candidates.append(_record_sample(row))
    fresh = list(
        TrainingRecord.objects.filter(id__gt=state.trained_through_record_id)
        .order_by("id")
        .values_list(*_RECORD_FIELDS)[:limit]
    )
    return candidates, fresh, still_deferred


def _examples_to_learn(*, as_of: datetime | None, limit: int) -> list[_Sample]:
    examples = TrainingExample.objects.filter(learned_at__isnull=True)
    if as_of is not None:
        examples = examples.filter(created_at__lt=as_of)
    return [
        _Sample(created_at=created_at, features=features, outcome=int(target), example_id=example_id)
        for example_id, features, target, created_at in examples.order_by("id").values_list(
            "id", "features", "target", "created_at"
        )[:limit]
    ]


def _advance_watermark(state, fresh: list[tuple], taken_ids: set[int], *, as_of, deferred: dict, now: datetime) -> None:
    """Move the watermark past the fresh records taken, deferring gaps and records not yet learnable."""
    stamp = now.isoformat()
    previous = state.trained_through_record_id
    learnable = [row for row in fresh if as_of is None or row[3] < as_of]
    if learnable and learnable[-1][0] not in taken_ids:
        # The sample limit cut the stream short: stop after the last fresh record taken.
        last_taken = max((row[0] for row in learnable if row[0] in taken_ids), default=previous)
        fresh = [row for row in fresh if row[0] <= last_taken]
    if not fresh:
        return
    fetched = {row[0] for row in fresh}
    watermark = fresh[-1][0]
    for row in fresh:
        if row[0] not in taken_ids:  # its exit is not before as_of: learn it in a later update
            deferred[row[0]] = stamp
    # Ids skipped by the sequence belong to stores not committed yet (or rolled back).
    gaps = [record_id for record_id in range(previous + 1, watermark) if record_id not in fetched]
    if len(gaps) > MAX_DEFERRED_GAPS:
        # Only a mass deletion leaves this many; no store keeps that many transactions open.
        logger.warning("Not deferring %d missing record ids between %d and %d", len(gaps), previous, watermark)
        gaps = []
    deferred.update(dict.fromkeys(gaps, stamp))
    state.trained_through_record_id = watermark


def _learner_metrics(ensemble: OnlineEnsemble) -> dict[str, dict]:
    """Each learner's and the ensemble's scores on outcomes scored before they were learned."""
    result, windows = {}, []
    for name, learner in ensemble.learners.items():
        probabilities, outcomes = learner.recent_outcomes()
        scores = ml_metrics.classification_metrics(outcomes, probabilities) if outcomes.size else {"n": 0}
        result[name] = {**scores, "samples_seen": learner.samples_seen, "updates": learner.updates}
        windows.append((probabilities, outcomes))
    sizes = {outcomes.size for _, outcomes in windows}
    ensemble_scores = {"n": 0}
    if len(sizes) == 1 and sizes != {0}:
        # The learners score every batch together, so their windows hold the same outcomes.
        mean = np.mean([probabilities for probabilities, _ in windows], axis=0)
        ensemble_scores = ml_metrics.classification_metrics(windows[0][1], mean)
    result["ensemble"] = {
        **ensemble_scores,
        "samples_seen": ensemble.samples_seen,
        "updates": max((learner.updates for learner in ensemble.learners.values()), default=0),
    }
    return result


def _checkpoint(
    *, ensemble: OnlineEnsemble, active: ModelVersion | None, milestone: bool, record_ids: list[int], exit_times: list[datetime]
) -> ModelVersion:
    previous_through = active.trained_through_record_id if active else None
    previous_exit = active.trained_through_exit_time if active else None
    version = _new_version(
        kind=ModelKind.ONLINE,
        model_state=ensemble.get_state(),
        samples_seen=ensemble.samples_seen,
        metrics=_learner_metrics(ensemble),
        trained_through_record_id=max([*record_ids, previous_through or 0]) or None,
        trained_through_exit_time=max([t for t in (*exit_times, previous_exit) if t is not None], default=None),
        is_interim=not milestone,
    )
    # An interim checkpoint is replaced by the next one; roll-back returns past it to a milestone.
    replaced = active.replaced if active is not None and active.is_interim else active
    _switch_active(current=active, target=version, replaced=replaced)
    if active is not None and active.is_interim:
        active.delete()
    return version


@transaction.atomic
def _online_update_chunk(*, as_of: datetime | None, limit: int) -> _ChunkResult:
    now = timezone.now()
    state = _locked_online_state()
    active = _locked_active(ModelKind.ONLINE)
    if active is None:
        ensemble = OnlineEnsemble()
    else:
        ensemble = _trainer_cache.take(active.pk) or _load_model(ModelVersion.objects.get(pk=active.pk))
    every = settings.LEARNING_CHECKPOINT_EVERY
    # End the chunk on a multiple of LEARNING_CHECKPOINT_EVERY samples, where a milestone is kept.
    limit = min(limit, every - ensemble.samples_seen % every)

    watermark_before = state.trained_through_record_id
    record_candidates, fresh, deferred = _records_to_learn(state, as_of=as_of, limit=limit, now=now)
    fresh_learnable = [_record_sample(row) for row in fresh if as_of is None or row[3] < as_of]
    stream = heapq.merge(
        [*record_candidates, *fresh_learnable], _examples_to_learn(as_of=as_of, limit=limit), key=lambda s: s.created_at
    )
    taken = [sample for _, sample in zip(range(limit), stream)]

    vectors, outcomes, learned = [], [], []
    for sample in taken:
        vector = _schema_vector(sample.features)
        if vector is None:
            continue
        vectors.append(vector)
        outcomes.append(sample.outcome)
        learned.append(sample)
    skipped = len(taken) - len(learned)

    version = None
    if learned:
        X, y = np.vstack(vectors), np.asarray(outcomes)
        before = ensemble.samples_seen
        ensemble.learn(X, y, batch_size=settings.LEARNING_ONLINE_BATCH_SIZE)
        milestone = ensemble.samples_seen // every > before // every
        version = _checkpoint(
            ensemble=ensemble,
            active=active,
            milestone=milestone,
            record_ids=[sample.record_id for sample in learned if sample.record_id is not None],
            exit_times=[sample.exit_time for sample in learned if sample.exit_time is not None],
        )
        state.updates += 1
        state.last_update_at = now
        served = copy.deepcopy(ensemble)  # the trainer goes on learning; predictions use this snapshot
        transaction.on_commit(lambda: _trainer_cache.put(version.pk, ensemble))
        transaction.on_commit(lambda: _active_models.adopt(version=version, model=served))
    elif active is not None:
        transaction.on_commit(lambda: _trainer_cache.put(active.pk, ensemble))

    taken_record_ids = {sample.record_id for sample in taken if sample.record_id is not None}
    _advance_watermark(state, fresh, taken_record_ids, as_of=as_of, deferred=deferred, now=now)
    example_ids = [sample.example_id for sample in taken if sample.example_id is not None]
    if example_ids:
        # A misfit example is marked too: it was processed, and retrying it would never succeed.
        TrainingExample.objects.filter(id__in=example_ids).update(learned_at=now)
    deferred_record_ids = {str(record_id): stamp for record_id, stamp in sorted(deferred.items())}
    if taken or deferred_record_ids != state.deferred_record_ids or state.trained_through_record_id != watermark_before:
        state.deferred_record_ids = deferred_record_ids
        state.samples_learned += len(learned)
        state.records_skipped += sum(1 for sample in taken if sample.record_id is not None) - sum(
            1 for sample in learned if sample.record_id is not None
        )
        state.save()
    if skipped:
        logger.info("Online update skipped %d samples whose features do not fit schema %s", skipped, FEATURE_SCHEMA.version)
    return _ChunkResult(consumed=len(taken), learned=len(learned), skipped=skipped, version=version)


@transaction.atomic
def online_checkpoint(*, ensemble: OnlineEnsemble, samples_before: int, record_ids: Sequence[int]) -> ModelVersion:
    """Save an ensemble that learned these stored records outside online_update as the active online version.

    A replay's in-memory ensemble learns the trades as they close and is saved here when the
    replay writes them (`samples_before`: what it had seen at its last save). The watermark moves
    past the records; any other record stored meanwhile is deferred, for online_update to learn.
    """
    now = timezone.now()
    state = _locked_online_state()
    active = _locked_active(ModelKind.ONLINE)
    taken = set(record_ids)
    rows = list(TrainingRecord.objects.filter(id__in=taken).order_by("id").values_list("id", "exit_time"))
    every = settings.LEARNING_CHECKPOINT_EVERY
    version = _checkpoint(
        ensemble=ensemble,
        active=active,
        milestone=ensemble.samples_seen // every > samples_before // every,
        record_ids=[record_id for record_id, _ in rows],
        exit_times=[exit_time for _, exit_time in rows],
    )
    deferred = {int(record_id): stamp for record_id, stamp in state.deferred_record_ids.items() if int(record_id) not in taken}
    stamp = now.isoformat()
    previous = state.trained_through_record_id
    fresh = set(TrainingRecord.objects.filter(id__gt=previous).values_list("id", flat=True))
    if fresh:
        watermark = max(fresh)
        # Records stored by others meanwhile (and ids of stores still in flight) are learned later.
        gaps = [record_id for record_id in range(previous + 1, watermark) if record_id not in taken]
        deferred.update(dict.fromkeys(gaps[:MAX_DEFERRED_GAPS], stamp))
        if watermark not in taken:
            deferred[watermark] = stamp
        state.trained_through_record_id = watermark
    state.deferred_record_ids = {str(record_id): stamp for record_id, stamp in sorted(deferred.items())}
    state.samples_learned += ensemble.samples_seen - samples_before
    state.updates += 1
    state.last_update_at = now
    state.save()
    served = copy.deepcopy(ensemble)
    transaction.on_commit(lambda: _active_models.adopt(version=version, model=served))
    return version


def online_update(*, as_of: datetime | None = None, max_records: int | None = None) -> OnlineUpdateResult:
    """Teach the online ensemble the training records and examples it has not learned yet.

    Records of both systems (shadow trades included) and added examples are learned in the order
    they were stored, in mini-batches of LEARNING_ONLINE_BATCH_SIZE; with `as_of`, only records
    that closed before it (no look-ahead in replays). Records whose features do not fit the
    schema are skipped and counted. Work is done in chunks of at most LEARNING_CHECKPOINT_EVERY
    samples, each in its own transaction holding the online state row lock: it learns, writes
    a checkpoint version (activated), and moves the watermark together, so a killed update
    loses only its current chunk and two updates never learn a record twice.
    """
    _require_aware(as_of, "as_of")
    if max_records is not None and (isinstance(max_records, bool) or not isinstance(max_records, int) or max_records < 1):
        raise ValidationError({"max_records": "Must be a whole number of at least 1."})
    learned = skipped = 0
    remaining = max_records
    while remaining is None or remaining > 0:
        limit = settings.LEARNING_CHECKPOINT_EVERY if remaining is None else min(remaining, settings.LEARNING_CHECKPOINT_EVERY)
        chunk = _online_update_chunk(as_of=as_of, limit=limit)
        learned += chunk.learned
        skipped += chunk.skipped
        if remaining is not None:
            remaining -= chunk.consumed
        if chunk.consumed == 0:
            break
    active = ModelVersion.objects.defer("artifact").filter(kind=ModelKind.ONLINE, active=True).first()
    if active is None:
        return OnlineUpdateResult(learned=learned, samples_seen=0, updates=0, metrics={}, version=None, skipped=skipped)
    ensemble_metrics = active.metrics.get("ensemble", {})
    return OnlineUpdateResult(
        learned=learned,
        samples_seen=active.samples_seen,
        updates=ensemble_metrics.get("updates", 0),
        metrics=active.metrics,
        version=active.version,
        skipped=skipped,
    )


# --- Batch retrain --------------------------------------------------------------------------


def _lease_acquire(name: str) -> str | None:
    """Claim a named lease with one conditional UPDATE (committed at once); None if someone holds it."""
    now = timezone.now()
    token = uuid.uuid4().hex
    LearningLease.objects.bulk_create([LearningLease(name=name)], ignore_conflicts=True)
    ttl = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    claimed = (
        LearningLease.objects.filter(Q(holder="") | Q(expires_at__lt=now), name=name)
        .update(holder=token, expires_at=now + ttl, last_started_at=now)
    )
    return token if claimed == 1 else None


def _lease_release(name: str, token: str, result: dict) -> None:
    LearningLease.objects.filter(name=name, holder=token).update(
        holder="", expires_at=None, last_finished_at=timezone.now(), last_result=result
    )


def _retrain_lease_release(token: str, result: RetrainResult | None) -> None:
    """Release the retrain lease, recording what the retrain came to (None: it failed)."""
    summary = {"reason": "failed"} if result is None else {"version": result.version, "activated": result.activated, "reason": result.reason}
    _lease_release(RETRAIN_LEASE, token, summary)


def _training_matrix(as_of: datetime | None):
    """All records that fit the schema, oldest exit first: features, outcomes, exit times, ids."""
    records = TrainingRecord.objects.order_by("exit_time", "id")
    if as_of is not None:
        records = records.filter(exit_time__lt=as_of)
    vectors, outcomes, exit_times, ids = [], [], [], []
    skipped = 0
    for record_id, features, success, exit_time in records.values_list("id", "features", "success", "exit_time").iterator(chunk_size=2000):
        vector = _schema_vector(features or {})
        if vector is None:
            skipped += 1
            continue
        vectors.append(vector)
        outcomes.append(int(success))
        exit_times.append(exit_time)
        ids.append(record_id)
    X = np.vstack(vectors) if vectors else np.empty((0, len(FEATURE_SCHEMA.names)))
    return X, np.asarray(outcomes, dtype=np.int64), exit_times, ids, skipped


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(float(timestamp), UTC).isoformat()


def _log_loss_text(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


@transaction.atomic
def _batch_version_store(
    *, result, artifact: Artifact | None, ids: list[int], exit_times: list[datetime], champion_metrics: dict | None, champion_problem: str | None
) -> RetrainResult:
    champion = _locked_active(ModelKind.BATCH)
    challenger_loss = result.metrics["log_loss"]
    window = f"the same {result.validation_size} validation trades"
    if champion is None:
        activate, reason = True, "activated: no batch version was active"
    elif champion_problem is not None:
        activate, reason = True, f"activated: the active {champion.version} could not be evaluated ({champion_problem})"
    elif challenger_loss < champion_metrics["log_loss"]:
        activate = True
        reason = f"activated: log-loss {challenger_loss:.4f} beats {champion.version}'s {champion_metrics['log_loss']:.4f} on {window}"
    else:
        activate = False
        reason = f"kept {champion.version}: log-loss {challenger_loss:.4f} does not beat its {champion_metrics['log_loss']:.4f} on {window}"
    version = _new_version(
        kind=ModelKind.BATCH,
        model_state=result.model.get_state(),
        artifact=artifact,
        samples_seen=result.train_size + result.validation_size,
        metrics=result.metrics,
        validation_window={
            "start": _iso(result.validation_start),
            "end": _iso(result.validation_end),
            "size": result.validation_size,
            "train_start": _iso(result.train_start),
            "train_end": _iso(result.train_end),
            "train_size": result.train_size,
        },
        feature_importance=result.feature_importance,
        trained_through_record_id=max(ids),
        trained_through_exit_time=exit_times[-1],
        note=reason[:255],
    )
    _batch_model_keep(version, result.model)
    if activate:
        _switch_active(current=champion, target=version, replaced=champion)
    return RetrainResult(
        version=version.version, activated=activate, metrics=result.metrics, champion_metrics=champion_metrics, reason=reason
    )


def _champion_metrics(X: np.ndarray, y: np.ndarray, validation_rows: np.ndarray) -> tuple[dict | None, str | None]:
    """The active batch model's scores on the challenger's validation window, or why there are none."""
    champion = ModelVersion.objects.defer("artifact").filter(kind=ModelKind.BATCH, active=True).first()
    if champion is None:
        return None, None
    try:
        model = batch_model(champion)
    except (ModelArtifactError, ValueError) as error:
        logger.error("Active batch model %s cannot be loaded for comparison: %s", champion.version, error)
        return None, str(error)
    return evaluate(model, X[validation_rows], y[validation_rows]), None


def batch_retrain(*, as_of: datetime | None = None) -> RetrainResult:
    """Train a batch model on every record (closed before `as_of`) and activate it if it beats the champion.

    The split is by exit time (older trades train, the newest validate). The challenger becomes
    active only when its log-loss on the validation window is lower than the active version's on
    the same trades (or none is active); a losing challenger is kept, inactive, for audit. The
    active model's permutation importance goes to feature_importance_learning (strategy '*').
    Single-flight through a lease row: a second retrain returns at once. Training runs outside
    any transaction; only storing the version is atomic.
    """
    _require_aware(as_of, "as_of")
    token = _lease_acquire(RETRAIN_LEASE)
    if token is None:
        return RetrainResult.untrained(RETRAIN_ALREADY_RUNNING)
    outcome = None
    try:
        outcome = _batch_retrain(as_of=as_of)
        return outcome
    finally:
        _retrain_lease_release(token, outcome)


def _batch_retrain(*, as_of: datetime | None) -> RetrainResult:
    X, y, exit_times, ids, skipped = _training_matrix(as_of)
    problem = batch_training_problem(y, skipped=skipped)
    if problem is not None:
        return batch_no_version(problem)
    times = np.array([exit_time.timestamp() for exit_time in exit_times])
    try:
        result = train_batch_model(X, y, times, kind=settings.LEARNING_BATCH_MODEL_KIND)
    except ValueError as error:
        return batch_no_version(str(error))
    return batch_version_adopt(result=result, X=X, y=y, ids=ids, exit_times=exit_times)


def batch_training_problem(y: np.ndarray, *, skipped: int) -> str | None:
    """Why these outcomes cannot train a batch model, or None when they can be tried."""
    needed = MIN_TRAINING_ROWS + MIN_VALIDATION_ROWS
    misfits = f" ({skipped} skipped: features do not fit schema {FEATURE_SCHEMA.version})" if skipped else ""
    if y.size < needed:
        return f"too few records: {y.size} usable{misfits}, at least {needed} are needed"
    if np.unique(y).size < 2:
        return f"all {y.size} usable records are {'wins' if y[0] else 'losses'}; both are needed"
    return None


def batch_no_version(reason: str) -> RetrainResult:
    logger.info("Batch retrain trained no version: %s", reason)
    return RetrainResult.untrained(reason)


def batch_version_adopt(
    *,
    result: BatchTrainingResult,
    X: np.ndarray,
    y: np.ndarray,
    ids: list[int],
    exit_times: list[datetime],
    artifact: Artifact | None = None,
) -> RetrainResult:
    """Store a trained challenger (trained on the records `ids`, rows of X and y) and activate it if it beats the champion."""
    champion_metrics, champion_problem = _champion_metrics(X, y, result.validation_rows)
    retrain = _batch_version_store(
        result=result, artifact=artifact, ids=ids, exit_times=exit_times, champion_metrics=champion_metrics, champion_problem=champion_problem
    )
    logger.info("Batch retrain %s: %s", retrain.version, retrain.reason)
    return retrain


# --- Versions -------------------------------------------------------------------------------


def _verify_loadable(version: ModelVersion) -> None:
    try:
        _load_model(ModelVersion.objects.get(pk=version.pk))
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
    _switch_active(current=current, target=target, replaced=current)
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
    _switch_active(current=current, target=previous, replaced=previous.replaced)
    logger.info("Rolled %s back from %s to %s", kind, current.version, previous.version)
    return previous


# --- Training examples ----------------------------------------------------------------------


def _schema_messages(error: FeatureSchemaError, *, prefix: str = "") -> dict[str, str]:
    """The schema's complaint per feature, as sentences keyed by the feature's name."""
    return {f"{prefix}{name}": f"{message[0].upper()}{message[1:]}." for name, message in error.errors.items()}


def _example_errors(example) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not isinstance(example, ExampleInput):
        return {"example": "Must be an example with features, target and symbol."}
    if not isinstance(example.features, Mapping):
        errors["features"] = "Must be an object of feature name to number."
    else:
        try:
            FEATURE_SCHEMA.vector(example.features)
        except FeatureSchemaError as error:
            errors.update(_schema_messages(error, prefix="features."))
    if not isinstance(example.target, bool):
        errors["target"] = "Must be true (a net profit) or false."
    for name, limit in (("symbol", SYMBOL_MAX_LENGTH), ("source", SOURCE_MAX_LENGTH)):
        value = getattr(example, name)
        if not isinstance(value, str) or not value.strip():
            errors[name] = "Must be a non-empty string."
        elif len(value) > limit:
            errors[name] = f"Must be at most {limit} characters."
    return errors


@transaction.atomic
def training_examples_add(*, examples: Sequence[ExampleInput]) -> int:
    """Store labelled examples for the next online update, all or nothing; returns how many.

    Errors name the field (`features.rsi_14`, `target`, `symbol`), prefixed with the example's
    index when more than one is sent.
    """
    limit = settings.LEARNING_MAX_EXAMPLES_PER_REQUEST
    if not examples:
        raise ValidationError({"examples": "Send at least one example."})
    if len(examples) > limit:
        raise ValidationError({"examples": f"At most {limit} examples per request; got {len(examples)}."})
    errors: dict[str, str] = {}
    for index, example in enumerate(examples):
        prefix = f"{index}." if len(examples) > 1 else ""
        errors.update({f"{prefix}{name}": message for name, message in _example_errors(example).items()})
    if errors:
        raise ValidationError(errors)
    TrainingExample.objects.bulk_create(
        [
            TrainingExample(
                features={name: float(example.features[name]) for name in FEATURE_SCHEMA.names},
                target=example.target,
                symbol=example.symbol.strip(),
                source=example.source.strip(),
            )
            for example in examples
        ]
    )
    return len(examples)


# --- Hybrid prediction ----------------------------------------------------------------------


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
        """Serve a model this process just saved as `version` without reading its artifact back.

        An online update in a replay saves a checkpoint every few trades; loading each again
        from its skops bytes cost more than the update itself.
        """
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
            model = _load_model(version)
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


def hybrid_predict(*, features: Mapping[str, float], predictor: HybridPredictor | None = None) -> HybridPrediction:
    """Probability of a net profit from the active batch and online versions, blended by the hybrid weights.

    Raises ValidationError naming each missing, extra or non-finite feature. Read-only, so no
    transaction: this is the hot path of every trading decision. A replay passes the
    `predictor` it keeps in memory (learning.services.session) instead of the active versions.
    """
    if not isinstance(features, Mapping):
        raise ValidationError({"features": "Must be an object of feature name to number."})
    try:
        x = FEATURE_SCHEMA.vector(features)
    except FeatureSchemaError as error:
        raise ValidationError(_schema_messages(error)) from None
    return (predictor or _active_models.predictor()).predict(x)

