"""Celery tasks of the learning app: thin, idempotent wrappers that call a service."""
import dataclasses
from datetime import datetime

from celery import shared_task

from learning.services.aggregates import aggregates_rebuild
from learning.services.online import online_update
from learning.services.retention import training_records_prune
from learning.services.retrain import batch_retrain
from learning.services.versions import feature_importance_model_refresh
from tradelearn.celery import TASK_OPTIONS
from tradelearn.notifications import notify


def _as_of(value: str | None) -> datetime | None:
    # Task arguments travel as JSON: times are ISO 8601 strings.
    return None if value is None else datetime.fromisoformat(value)


@shared_task(**TASK_OPTIONS)
def online_update_task(as_of: str | None = None, max_records: int | None = None) -> dict:
    """Learn the records and examples not learned yet; a redelivered run finds nothing left to learn."""
    return dataclasses.asdict(online_update(as_of=_as_of(as_of), max_records=max_records))


@shared_task(**TASK_OPTIONS)
def batch_retrain_task(as_of: str | None = None) -> dict:
    """Retrain the batch model; returns at once when another retrain holds the lease. Notifies what became of a trained model."""
    result = batch_retrain(as_of=_as_of(as_of))
    if result.version is not None:
        event = "retrain_adopted" if result.activated else "retrain_refused"
        notify(event, f"batch model {result.version} {'adopted' if result.activated else 'refused'}: {result.reason}", version=result.version, reason=result.reason)
    return dataclasses.asdict(result)


@shared_task(**TASK_OPTIONS)
def rebuild_learning_stats_task() -> dict[str, int]:
    """Recompute the learned statistics from the records, then the active batch model's importance."""
    counts = aggregates_rebuild()
    feature_importance_model_refresh()
    return counts


@shared_task(**TASK_OPTIONS)
def prune_training_data_task() -> int:
    """Delete training records past the retention window; returns how many."""
    return training_records_prune()


def learning_online_update_queue() -> None:
    """Queue an online update to run once the caller's transaction commits (in-process without a broker)."""
    online_update_task.delay_on_commit()
