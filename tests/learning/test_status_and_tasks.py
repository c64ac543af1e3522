"""Selectors (online stats, hybrid status), tasks queued on commit, and the learning commands."""
import json
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from learning.ml.schema import FEATURE_SCHEMA
from learning.models import FeatureImportance, ModelVersion, TrainingRecord
from learning.selectors import hybrid_status, online_stats
from learning.services.online import online_update
from learning.services.retrain import batch_retrain
from learning.services.versions import ALL_STRATEGIES
from learning.tasks import (
    batch_retrain_task,
    learning_online_update_queue,
    online_update_task,
    rebuild_learning_stats_task,
)
from tests.learning.learnable import fresh_model_state, store_learnable  # noqa: F401  (autouse)

pytestmark = pytest.mark.django_db


def test_online_stats_report_each_learner_on_outcomes_it_had_not_seen():
    empty = online_stats()
    assert (empty["version"], empty["samples_seen"], empty["models"]) == (None, 0, {})
    store_learnable(60)
    online_update()
    store_learnable(7, seed=3, start=datetime(2025, 1, 1, tzinfo=UTC))
    stats = online_stats()
    assert stats["version"] == "online-0001" and stats["samples_seen"] == 60
    assert set(stats["models"]) == {"sgd", "pa", "mlp", "ensemble"}
    sgd = stats["models"]["sgd"]
    # The first batch trains the learners unscored; every later one is scored before it is learned.
    assert sgd["samples_seen"] == 60 and sgd["recent"]["n"] == 0
    assert stats["pending"] == {"records": 7, "examples": 0}


def test_online_stats_recent_scores_after_several_batches(settings):
    settings.LEARNING_ONLINE_BATCH_SIZE = 16
    store_learnable(64)
    online_update()
    recent = online_stats()["models"]["pa"]["recent"]
    assert recent["n"] == 48 and 0 <= recent["accuracy"] <= 1 and recent["log_loss"] > 0 and recent["brier"] > 0


def test_hybrid_status_without_broker(settings):
    settings.CELERY_BROKER_URL = None
    store_learnable(100)
    batch_retrain()
    status = hybrid_status()
    assert status["active_versions"]["batch"]["version"] == "batch-0001"
    assert status["active_versions"]["batch"]["metrics"]["log_loss"] > 0
    assert status["last_retrain"]["version"] == "batch-0001" and status["last_retrain"]["activated"]
    assert status["records"]["training_records"] == 100 and status["records"]["pending"]["records"] == 100
    assert status["health"]["database"]["status"] == "ok"
    assert status["health"]["broker"]["status"] == "not configured"
    assert status["next_retrain"] is None
    call_command("setup_periodic_tasks", stdout=StringIO())
    assert hybrid_status()["next_retrain"] > status["last_retrain"]["finished_at"]


def test_hybrid_status_checks_the_broker(settings, redis_url):
    settings.CELERY_BROKER_URL = redis_url
    assert hybrid_status()["health"]["broker"]["status"] == "ok"
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    assert hybrid_status()["health"]["broker"]["status"] == "unavailable"


def test_the_queued_online_update_runs_only_after_commit(django_capture_on_commit_callbacks):
    store_learnable(20)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        learning_online_update_queue()
    assert len(callbacks) == 1 and not ModelVersion.objects.exists()
    callbacks[0]()
    assert ModelVersion.objects.get(kind="online", active=True).samples_seen == 20


def test_tasks_take_primitives_and_return_json():
    outcomes = store_learnable(100)
    online = online_update_task.delay(as_of=outcomes[50].exit_time.isoformat(), max_records=30).get()
    assert online["learned"] == 30 and online["version"] == "online-0001"
    retrained = batch_retrain_task.delay().get()
    assert retrained["activated"] and json.dumps(retrained)
    # A full rebuild clears the model importance rows; the task writes them again.
    counts = rebuild_learning_stats_task.delay().get()
    assert counts["feature_importance_learning"] > 0
    assert FeatureImportance.objects.filter(strategy_type=ALL_STRATEGIES, model_importance__isnull=False).count() == len(FEATURE_SCHEMA.names)


def test_tasks_retry_transient_errors_with_a_bound():
    for task in (online_update_task, batch_retrain_task, rebuild_learning_stats_task):
        assert task.acks_late and task.max_retries == 5 and task.retry_backoff
        assert {error.__name__ for error in task.autoretry_for} == {"OperationalError", "InterfaceError", "ConnectionError"}


def test_setup_periodic_tasks_is_idempotent_and_keeps_admin_edits():
    call_command("setup_periodic_tasks", stdout=StringIO())
    rows = {task.name: task.task for task in PeriodicTask.objects.all()}
    assert rows == {
        "learning: online update": "learning.tasks.online_update_task",
        "learning: batch retrain": "learning.tasks.batch_retrain_task",
        "learning: prune training data": "learning.tasks.prune_training_data_task",
        "learning: rebuild learning stats": "learning.tasks.rebuild_learning_stats_task",
        "trading: fetch candles and tick engines": "trading.tasks.schedule_engine_ticks_task",
        "trading: reconcile exchange accounts": "trading.tasks.reconcile_exchange_accounts_task",
    }
    online = PeriodicTask.objects.get(name="learning: online update")
    assert (online.interval.every, online.interval.period) == (5, "minutes")
    snapshot = (PeriodicTask.objects.count(), IntervalSchedule.objects.count(), CrontabSchedule.objects.count())

    PeriodicTask.objects.filter(pk=online.pk).update(enabled=False)
    out = StringIO()
    call_command("setup_periodic_tasks", stdout=out)
    assert "0 created, 0 reset, 6 kept" in out.getvalue()
    assert (PeriodicTask.objects.count(), IntervalSchedule.objects.count(), CrontabSchedule.objects.count()) == snapshot
    assert not PeriodicTask.objects.get(pk=online.pk).enabled

    call_command("setup_periodic_tasks", "--reset", stdout=StringIO())
    assert PeriodicTask.objects.get(pk=online.pk).enabled
    assert (PeriodicTask.objects.count(), IntervalSchedule.objects.count(), CrontabSchedule.objects.count()) == snapshot


def test_retrain_and_online_update_commands():
    store_learnable(100)
    out = StringIO()
    call_command("online_update", stdout=out)
    assert "Learned 100 samples" in out.getvalue()
    out = StringIO()
    call_command("retrain", stdout=out)
    assert "batch-0001" in out.getvalue() and "activated: no batch version was active" in out.getvalue()
    out = StringIO()
    call_command("retrain", "--json", stdout=out)
    assert json.loads(out.getvalue())["version"] == "batch-0002"
    assert TrainingRecord.objects.count() == 100
