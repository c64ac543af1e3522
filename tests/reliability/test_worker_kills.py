"""Workers SIGKILLed mid-tick and mid-model-update, then restarted: the books equal an uninterrupted run's."""
import random
from decimal import Decimal

import pytest

from learning.models import LearningLease, ModelKind, ModelVersion, OnlineLearningState, TrainingRecord
from learning.services.retrain import RETRAIN_LEASE
from learning.services.versions import load_model
from tests.learning.learnable import store_learnable
from tests.reliability.conftest import (
    EXCHANGE,
    FIRST_TICK,
    TIMEFRAME,
    assert_books_hold,
    assert_one_active_version_per_kind,
    assert_rebuild_equals_incremental,
    books,
    expected_ticks,
    import_slice,
    queue_name,
    tick_times,
    ticks_done,
)
from operations.ticks import engine_tick
from trading.models import PaperAccount, PaperTrade
from trading.services.accounts import account_create
from trading.services.trades import model_updates_deferred

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TICK_HOURS, STEP_HOURS = 600, 24
KILLS = 3


def reference_books(times) -> dict:
    """The same ticks run in this process without any fault; its outcomes are then forgotten so the faulty run learns from the same state."""
    account = account_create(name="reference", system_type="paper_trading", starting_balance=Decimal("10000"))
    # Model updates are left out of the tick phase in both runs (the workers below do not consume
    # their queue yet): with no model version the hybrid answers the same 0.5 to both, so the
    # decisions, and with them the books, depend on the candles and stored outcomes alone.
    with model_updates_deferred():
        for now in times:
            engine_tick(account_id=account.pk, symbol="BTCUSDT", timeframe=TIMEFRAME, exchange=EXCHANGE, now=now)
    result = books(account)
    assert sum(1 for trade in result["trades"] if not trade[2]) >= 5, "too few real trades to compare books"
    TrainingRecord.objects.all().delete()
    from learning.services.aggregates import aggregates_rebuild

    aggregates_rebuild()
    return result


def test_killed_workers_redo_their_tick_and_update_and_the_books_equal_a_run_without_kills(tmp_path, workers):
    import_slice(tmp_path, "BTCUSDT")
    times = tick_times(TICK_HOURS, STEP_HOURS)
    reference = reference_books(times)

    account = account_create(name="killed", system_type="paper_trading", starting_balance=Decimal("10000"))
    queue = queue_name()
    for now in times:
        workers.send("trading.tasks.engine_tick_task", account.pk, "BTCUSDT", TIMEFRAME, EXCHANGE, now=now.isoformat(), queue=queue)
    total = expected_ticks("BTCUSDT", FIRST_TICK, times[-1])
    rng = random.Random(8)
    workers.start("ticker", [queue])
    for _ in range(KILLS):
        # Kill somewhere inside a run of ticks: a candle's transaction is in flight most of the time.
        target = min(total - 1, ticks_done(account, "BTCUSDT") + rng.randint(20, 90))
        workers.wait_for(lambda: ticks_done(account, "BTCUSDT") >= target, timeout=120, what=f"{target} ticks")
        workers.kill("ticker")
        workers.start("ticker", [queue])
    workers.wait_for(lambda: ticks_done(account, "BTCUSDT") == total, timeout=180, what=f"all {total} ticks")
    workers.stop("ticker")

    assert workers.redelivered_task_ids(), "no killed tick was handed to the restarted worker"
    assert books(account) == reference
    assert_books_hold(account)
    assert_rebuild_equals_incremental()

    # Now the model updates the closes queued, over enough extra records that one takes seconds:
    # small chunks, each committed with its checkpoint and watermark, so a kill lands between or
    # inside them. The retrain lease expires with the (short) task time limit a killed retrain
    # would have hit anyway.
    store_learnable(3000, seed=3)
    records = TrainingRecord.objects.count()
    model_env = {"LEARNING_CHECKPOINT_EVERY": "40", "CELERY_TASK_TIME_LIMIT": "12", "CELERY_TASK_SOFT_TIME_LIMIT": "10"}
    workers.send("learning.tasks.online_update_task", queue="celery")
    workers.send("learning.tasks.batch_retrain_task", queue="celery")
    workers.start("learner", ["celery"], **model_env)

    def learned() -> int:
        state = OnlineLearningState.objects.first()
        return 0 if state is None else state.samples_learned + state.records_skipped

    for fraction in (0.25, 0.6):
        workers.wait_for(lambda: learned() >= records * fraction, timeout=180, what=f"{fraction:.0%} learned")
        workers.kill("learner")
        workers.start("learner", ["celery"], **model_env)
    workers.wait_for(lambda: learned() == records, timeout=240, what=f"all {records} records learned")
    # A retrain killed mid-way leaves its lease until the time limit; once it lapses the next one trains.
    workers.wait_for(lambda: not LearningLease.objects.filter(name=RETRAIN_LEASE).exclude(holder="").exists(), timeout=60, what="lease")
    workers.send("learning.tasks.batch_retrain_task", queue="celery")
    workers.wait_for(lambda: ModelVersion.objects.filter(kind=ModelKind.BATCH, active=True).exists(), timeout=180, what="a batch version")
    workers.stop("learner")

    state = OnlineLearningState.objects.get()
    online = ModelVersion.objects.get(kind=ModelKind.ONLINE, active=True)
    # Every record learned exactly once: a killed chunk rolled back whole and was learned again.
    assert state.samples_learned + state.records_skipped == records
    assert online.samples_seen == state.samples_learned and online.trained_through_record_id == TrainingRecord.objects.latest("id").id
    assert_one_active_version_per_kind()
    for version in ModelVersion.objects.all():
        load_model(version)  # no half-written artifact: every stored version loads and matches its sha256
    assert books(account) == reference and PaperAccount.objects.get(pk=account.pk).current_balance == reference["balance"]
    assert PaperTrade.objects.filter(account=account).count() == len(reference["trades"])
    assert_rebuild_equals_incremental()

