"""Batch retraining: a challenger trained on every stored record, activated only if it beats the champion, single-flight by lease."""
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from learning.ml import metrics
from learning.ml.batch import MIN_TRAINING_ROWS, MIN_VALIDATION_ROWS, BatchTrainingResult, evaluate, train_batch_model
from learning.ml.schema import current_feature_schema
from learning.ml.serialization import Artifact, ModelArtifactError
from learning.models import LearningLease, ModelKind, ModelVersion
from learning.services.training_data import exchange_fill_weights, require_aware, training_matrix
from learning.services.versions import (
    batch_model,
    batch_model_keep,
    model_version_create,
    model_version_lock_active,
    model_version_switch,
)

logger = logging.getLogger(__name__)

RETRAIN_LEASE = "batch_retrain"
RETRAIN_ALREADY_RUNNING = "retrain already running"


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


def lease_acquire(name: str) -> str | None:
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


def lease_release(name: str, token: str, result: dict) -> None:
    """Give up a lease held with `token`, recording `result` as what the holder came to."""
    LearningLease.objects.filter(name=name, holder=token).update(
        holder="", expires_at=None, last_finished_at=timezone.now(), last_result=result
    )


def retrain_lease_release(token: str, result: RetrainResult | None) -> None:
    """Release the retrain lease, recording what the retrain came to (None: it failed)."""
    summary = {"reason": "failed"} if result is None else {"version": result.version, "activated": result.activated, "reason": result.reason}
    lease_release(RETRAIN_LEASE, token, summary)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(float(timestamp), UTC).isoformat()


@dataclass(frozen=True)
class _Comparison:
    """The champion and the challenger scored on the same validation trades, or why the champion could not be."""

    champion_metrics: dict | None = None
    challenger_loss: float | None = None
    window: str = ""
    problem: str | None = None


@transaction.atomic
def _batch_version_store(*, result, artifact: Artifact | None, ids: list[int], exit_times: list[datetime], comparison: _Comparison) -> RetrainResult:
    champion = model_version_lock_active(ModelKind.BATCH)
    champion_metrics = comparison.champion_metrics
    if champion is None:
        activate, reason = True, "activated: no batch version was active"
    elif comparison.problem is not None:
        activate, reason = True, f"activated: the active {champion.version} could not be evaluated ({comparison.problem})"
    elif comparison.challenger_loss < champion_metrics["log_loss"]:
        activate = True
        reason = (
            f"activated: log-loss {comparison.challenger_loss:.4f} beats {champion.version}'s "
            f"{champion_metrics['log_loss']:.4f} on {comparison.window}"
        )
    else:
        activate = False
        reason = (
            f"kept {champion.version}: log-loss {comparison.challenger_loss:.4f} does not beat its "
            f"{champion_metrics['log_loss']:.4f} on {comparison.window}"
        )
    version = model_version_create(
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
    batch_model_keep(version, result.model)
    if activate:
        model_version_switch(current=champion, target=version, replaced=champion)
    return RetrainResult(
        version=version.version, activated=activate, metrics=result.metrics, champion_metrics=champion_metrics, reason=reason
    )


def _champion_comparison(result: BatchTrainingResult, X: np.ndarray, y: np.ndarray, exit_times: list[datetime]) -> _Comparison:
    """The active batch model and the challenger on the challenger's validation trades that neither had learned from.

    A model learns from every trade it is given (train_batch_model), so the champion knows the
    older part of the challenger's validation window; scored there it would be flattered. Both are
    scored on the trades that exited after the champion's newest (the challenger's scores there are
    its out-of-sample ones), or on the whole window when fewer than MIN_VALIDATION_ROWS are that new.
    """
    champion = ModelVersion.objects.defer("artifact").filter(kind=ModelKind.BATCH, active=True).first()
    if champion is None:
        return _Comparison()
    try:
        model = batch_model(champion)
    except (ModelArtifactError, ValueError) as error:
        logger.error("Active batch model %s cannot be loaded for comparison: %s", champion.version, error)
        return _Comparison(problem=str(error))
    rows, probabilities = result.validation_rows, result.validation_probabilities
    window = f"the same {len(rows)} validation trades"
    seen_until = champion.trained_through_exit_time
    if seen_until is not None:
        unseen = np.array([exit_times[row] > seen_until for row in rows], dtype=bool)
        if unseen.sum() >= MIN_VALIDATION_ROWS:
            rows, probabilities = rows[unseen], probabilities[unseen]
            window = f"the {len(rows)} validation trades neither had learned from"
    return _Comparison(
        champion_metrics=evaluate(model, X[rows], y[rows]),
        challenger_loss=metrics.log_loss(y[rows], probabilities),
        window=window,
    )


def batch_retrain(*, as_of: datetime | None = None) -> RetrainResult:
    """Train a batch model on every record (closed before `as_of`) and activate it if it beats the champion.

    The split is by exit time (older trades train, the newest validate). The challenger becomes
    active only when its log-loss on the validation window is lower than the active version's on
    the same trades (or none is active); a losing challenger is kept, inactive, for audit. The
    active model's permutation importance goes to feature_importance_learning (strategy '*').
    Single-flight through a lease row: a second retrain returns at once. Training runs outside
    any transaction; only storing the version is atomic.
    """
    require_aware(as_of, "as_of")
    token = lease_acquire(RETRAIN_LEASE)
    if token is None:
        return RetrainResult.untrained(RETRAIN_ALREADY_RUNNING)
    outcome = None
    try:
        outcome = _batch_retrain(as_of=as_of)
        return outcome
    finally:
        retrain_lease_release(token, outcome)


def _batch_retrain(*, as_of: datetime | None) -> RetrainResult:
    stored = training_matrix(as_of)
    X, y, exit_times, ids = stored.X, stored.y, stored.exit_times, stored.ids
    problem = batch_training_problem(y, skipped=stored.skipped)
    if problem is not None:
        return batch_no_version(problem)
    times = np.array([exit_time.timestamp() for exit_time in exit_times])
    try:
        # Overlapping outcomes weigh by their uniqueness, and exchange fills by LEARNING_EXCHANGE_FILL_WEIGHT on top.
        weights = stored.weights * exchange_fill_weights(ids)
        result = train_batch_model(
            X, y, times, kind=settings.LEARNING_BATCH_MODEL_KIND, per_system=settings.LEARNING_BATCH_PER_SYSTEM, sample_weight=weights
        )
    except ValueError as error:
        return batch_no_version(str(error))
    return batch_version_adopt(result=result, X=X, y=y, ids=ids, exit_times=exit_times)


def batch_training_problem(y: np.ndarray, *, skipped: int) -> str | None:
    """Why these outcomes cannot train a batch model, or None when they can be tried."""
    needed = MIN_TRAINING_ROWS + MIN_VALIDATION_ROWS
    misfits = f" ({skipped} skipped: features do not fit schema {current_feature_schema().version})" if skipped else ""
    if y.size < needed:
        return f"too few records: {y.size} usable{misfits}, at least {needed} are needed"
    if np.unique(y).size < 2:
        return f"all {y.size} usable records are {'wins' if y[0] else 'losses'}; both are needed"
    return None


def batch_no_version(reason: str) -> RetrainResult:
    """A retrain that trained nothing, for `reason` (logged)."""
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
    comparison = _champion_comparison(result, X, y, exit_times)
    retrain = _batch_version_store(result=result, artifact=artifact, ids=ids, exit_times=exit_times, comparison=comparison)
    logger.info("Batch retrain %s: %s", retrain.version, retrain.reason)
    return retrain
