"""Online updates: the online ensemble learns the stored records and examples it has not learned yet, checkpointed as versions."""
import copy
import heapq
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from learning.ml import metrics as ml_metrics
from learning.ml.online import OnlineEnsemble
from learning.ml.schema import current_feature_schema
from learning.models import ModelKind, ModelVersion, OnlineLearningState, TrainingExample, TrainingRecord
from learning.services.prediction import served_model_adopt
from learning.services.training_data import require_aware, schema_vector
from learning.services.versions import ModelSchemaMismatch, load_model, model_version_create, model_version_lock_active, model_version_switch

logger = logging.getLogger(__name__)

ONLINE_STATE_PK = 1
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


def trainer_cache_clear() -> None:
    """Forget the ensemble kept from the last online update: the next one loads the active version."""
    _trainer_cache.take(None)


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


def _records_to_learn(*, as_of: datetime | None, limit: int) -> list[_Sample]:
    """Records not learned yet (with `as_of`: that closed before it), in the order they were stored."""
    records = TrainingRecord.objects.filter(learned_at__isnull=True)
    if as_of is not None:
        records = records.filter(exit_time__lt=as_of)
    return [_record_sample(row) for row in records.order_by("id").values_list(*_RECORD_FIELDS)[:limit]]


def _examples_to_learn(*, as_of: datetime | None, limit: int) -> list[_Sample]:
    """Examples not learned yet (with `as_of`: added before it), in the order they were added."""
    examples = TrainingExample.objects.filter(learned_at__isnull=True)
    if as_of is not None:
        examples = examples.filter(created_at__lt=as_of)
    return [
        _Sample(created_at=created_at, features=features, outcome=int(target), example_id=example_id)
        for example_id, features, target, created_at in examples.order_by("id").values_list(
            "id", "features", "target", "created_at"
        )[:limit]
    ]


def _claim(model, ids: Sequence[int], now: datetime) -> set[int]:
    """Mark these rows learned at `now` if nobody has yet; returns the ids this transaction claimed.

    The conditional UPDATE is the claim: a row another transaction claimed first (committed, or
    waited for on its row lock) no longer matches `learned_at IS NULL` and is left to it. The
    rows claimed are the ones stamped with this claim's `now`, read back inside the transaction.
    """
    if not ids:
        return set()
    model.objects.filter(id__in=ids, learned_at__isnull=True).update(learned_at=now)
    return set(model.objects.filter(id__in=ids, learned_at=now).values_list("id", flat=True))


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
    version = model_version_create(
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
    model_version_switch(current=active, target=version, replaced=replaced)
    if active is not None and active.is_interim:
        active.delete()
    return version


def _continued_ensemble(active: ModelVersion) -> OnlineEnsemble:
    """The active version's ensemble to go on learning; a fresh one if it reads an older feature schema."""
    try:
        return load_model(ModelVersion.objects.get(pk=active.pk))
    except ModelSchemaMismatch as error:
        logger.warning("Online learning starts a new ensemble: %s", error)
        return OnlineEnsemble()


@transaction.atomic
def _online_update_chunk(*, as_of: datetime | None, limit: int) -> _ChunkResult:
    now = timezone.now()
    state = _locked_online_state()
    active = model_version_lock_active(ModelKind.ONLINE)
    if active is None:
        ensemble = OnlineEnsemble()
    else:
        ensemble = _trainer_cache.take(active.pk) or _continued_ensemble(active)
    every = settings.LEARNING_CHECKPOINT_EVERY
    # End the chunk on a multiple of LEARNING_CHECKPOINT_EVERY samples, where a milestone is kept.
    limit = min(limit, every - ensemble.samples_seen % every)

    stream = heapq.merge(
        _records_to_learn(as_of=as_of, limit=limit), _examples_to_learn(as_of=as_of, limit=limit), key=lambda s: s.created_at
    )
    candidates = [sample for _, sample in zip(range(limit), stream)]
    # Claimed before learning and in the same transaction as the checkpoint: a rolled-back chunk
    # leaves its rows unlearned, a committed one has learned each row it claimed exactly once.
    # A misfit is claimed too: it was processed, and retrying it would never succeed.
    claimed_records = _claim(TrainingRecord, [sample.record_id for sample in candidates if sample.record_id is not None], now)
    claimed_examples = _claim(TrainingExample, [sample.example_id for sample in candidates if sample.example_id is not None], now)
    taken = [sample for sample in candidates if sample.record_id in claimed_records or sample.example_id in claimed_examples]

    vectors, outcomes, learned = [], [], []
    for sample in taken:
        vector = schema_vector(sample.features)
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
        transaction.on_commit(lambda: served_model_adopt(version=version, model=served))
    elif active is not None:
        transaction.on_commit(lambda: _trainer_cache.put(active.pk, ensemble))

    if taken:
        state.samples_learned += len(learned)
        state.records_skipped += sum(1 for sample in taken if sample.record_id is not None) - sum(
            1 for sample in learned if sample.record_id is not None
        )
        state.save()
    if skipped:
        logger.info("Online update skipped %d samples whose features do not fit schema %s", skipped, current_feature_schema().version)
    return _ChunkResult(consumed=len(taken), learned=len(learned), skipped=skipped, version=version)


@transaction.atomic
def online_checkpoint(*, ensemble: OnlineEnsemble, samples_before: int, record_ids: Sequence[int]) -> ModelVersion:
    """Save an ensemble that learned these stored records outside online_update as the active online version.

    A replay's in-memory ensemble learns the trades as they close and is saved here when the
    replay writes them (`samples_before`: what it had seen at its last save). The records are
    claimed as learned with the checkpoint; any other record stored meanwhile stays for
    online_update to learn.
    """
    now = timezone.now()
    state = _locked_online_state()
    active = model_version_lock_active(ModelKind.ONLINE)
    record_ids = list(record_ids)
    claimed = _claim(TrainingRecord, record_ids, now)
    if len(claimed) != len(set(record_ids)):
        # The ensemble has learned them already; nothing can take that back, but it is said.
        logger.warning("%d of the records this checkpoint learned were learned before", len(set(record_ids)) - len(claimed))
    rows = list(TrainingRecord.objects.filter(id__in=claimed).order_by("id").values_list("id", "exit_time"))
    every = settings.LEARNING_CHECKPOINT_EVERY
    version = _checkpoint(
        ensemble=ensemble,
        active=active,
        milestone=ensemble.samples_seen // every > samples_before // every,
        record_ids=[record_id for record_id, _ in rows],
        exit_times=[exit_time for _, exit_time in rows],
    )
    state.samples_learned += ensemble.samples_seen - samples_before
    state.updates += 1
    state.last_update_at = now
    state.save()
    served = copy.deepcopy(ensemble)
    transaction.on_commit(lambda: served_model_adopt(version=version, model=served))
    return version


def online_update(*, as_of: datetime | None = None, max_records: int | None = None) -> OnlineUpdateResult:
    """Teach the online ensemble the training records and examples it has not learned yet.

    Records of both systems (shadow trades included) and added examples are learned in the order
    they were stored, in mini-batches of LEARNING_ONLINE_BATCH_SIZE; with `as_of`, only records
    that closed before it (no look-ahead in replays). Records whose features do not fit the
    schema are skipped and counted. Work is done in chunks of at most LEARNING_CHECKPOINT_EVERY
    samples, each in its own transaction: it claims its rows (a conditional UPDATE of their
    `learned_at`), learns exactly the rows claimed and writes a checkpoint version (activated),
    all committed together, so a killed update loses only its current chunk and no row is ever
    learned twice. The online state row's lock orders the chunks, since each goes on from the
    ensemble the last one saved.
    """
    require_aware(as_of, "as_of")
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


