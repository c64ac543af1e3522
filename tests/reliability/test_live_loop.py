"""The whole live loop on real parts: beat, a Celery worker, PostgreSQL, Redis, the clock feed at high speed.

Over a few hundred hourly candles released by the clock (MARKET_FEED=clock, 40 candles a wall
second), beat polls the feed and queues ticks, the worker trades, stores each outcome once,
updates the online models and retrains the batch model. The worker is SIGKILLed part-way and
restarted. Then the same candles are replayed in this process on a fresh account and the
learning store as it was: the replay is the run without a kill, and its trades, balance and
decisions must equal the live run's (live = replay).

The model's weight in the decision is 0 here (TRADING_MODEL_WEIGHT=0): live, a model is adopted
when its task happens to finish, which depends on the machine, while the replay adopts at fixed
outcome counts. With the weight at 0 every decision depends on the candles and the stored
outcomes alone, so the comparison is exact; the models still learn and are still asked.
"""
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from learning.models import ModelKind, ModelVersion, OnlineLearningState, TrainingRecord
from learning.services.aggregates import aggregates_rebuild
from tests.learning.learnable import store_learnable
from tests.reliability.conftest import CELERY, EXCHANGE, FIRST_TICK, ROOT, TIMEFRAME, assert_books_hold, books, import_slice
from trading.models import EngineTick, MarketFeedStatus, PaperAccount, SignalDecision
from trading.selectors import candles_frame
from trading.services.accounts import account_create

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CANDLES = 240  # traded after the 400 warm-up hours before FIRST_TICK
SPEED = 40 * 3600  # market seconds per wall second: 40 hourly candles a second
LIVE = {
    "MARKET_FEED": "clock",
    "MARKET_FEED_CLOCK_SPEED": str(SPEED),
    "TRADING_MARKETS": "BTC/USDT:USDT",
    "TRADING_MODEL_WEIGHT": "0",
    "LEARNING_MODEL_RECHECK_SECONDS": "0",
    # The clock starts as the warm-up ends: the candle opening at FIRST_TICK closes first.
    "MARKET_FEED_CLOCK_START": (FIRST_TICK + timedelta(hours=1)).isoformat(),
}
DECISION_FIELDS = ("candle_time", "side", "taken", "technical_score", "combined_confidence", "reason")


def schedule(task: str, seconds: int) -> None:
    every, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name=f"{task} every {seconds}s", task=task, interval=every)


def start_beat(workers, log_dir) -> subprocess.Popen:
    log = open(log_dir / "beat.log", "w")
    process = subprocess.Popen(
        [CELERY, "-A", "tradelearn", "beat", "-l", "info", "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler",
         "--max-interval", "1"],
        cwd=ROOT, env={**workers.env, **LIVE}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    log.close()
    return process


def decisions(account: PaperAccount) -> list[tuple]:
    return list(SignalDecision.objects.filter(account=account).order_by("candle_time", "strategy_type").values_list(*DECISION_FIELDS))


def test_the_live_loop_trades_learns_survives_a_kill_and_equals_a_replay(tmp_path, workers, settings):
    settings.TRADING_MODEL_WEIGHT = 0.0
    settings.TRADING_MARKETS = ["BTC/USDT:USDT"]
    import_slice(tmp_path, "BTCUSDT", candles=400 + CANDLES)
    last_candle = FIRST_TICK + timedelta(hours=CANDLES - 1)
    account = account_create(name="live", system_type="paper_trading", starting_balance=Decimal("10000"))
    # Outcomes learned before (closed in 2021, before every candle traded here): enough for the
    # batch model to train, which a few hundred candles of one engine do not give on their own.
    store_learnable(200, seed=5, start=datetime(2021, 1, 1, tzinfo=UTC))
    schedule("trading.tasks.schedule_engine_ticks_task", 1)
    schedule("learning.tasks.online_update_task", 2)
    schedule("learning.tasks.batch_retrain_task", 10)

    workers.start("live", ["celery"], **LIVE)
    beat = start_beat(workers, workers.log_dir)
    try:
        def ticked() -> int:
            return EngineTick.objects.filter(account=account, completed_at__isnull=False).count()

        def expected() -> int:
            # A new account starts at the latest candle closed when it first ticks (the clock has
            # moved on by then), and from there ticks every candle to the last.
            first = EngineTick.objects.filter(account=account).order_by("candle_time").first()
            return -1 if first is None else int((last_candle - first.candle_time) / timedelta(hours=1)) + 1

        workers.wait_for(lambda: ticked() >= CANDLES * 2 // 5, timeout=150, what="two fifths of the candles ticked")
        workers.kill("live")  # SIGKILL mid-run: a tick (or an update) in flight is lost and redelivered
        killed_at = ticked()
        workers.start("live", ["celery"], **LIVE)
        workers.wait_for(lambda: ticked() == expected(), timeout=180, what=f"all {CANDLES} candles ticked")
        workers.wait_for(
            lambda: (state := OnlineLearningState.objects.first()) is not None
            and state.samples_learned + state.records_skipped == TrainingRecord.objects.count(),
            timeout=60, what="every outcome learned online",
        )  # fmt: skip
        workers.wait_for(
            lambda: ModelVersion.objects.filter(kind=ModelKind.BATCH, samples_seen__gt=200).exists(),
            timeout=60, what="a batch retrain on the live outcomes",
        )  # fmt: skip
    finally:
        beat.kill()
        beat.wait(timeout=10)
        workers.stop_all()

    first_ticked = EngineTick.objects.filter(account=account).earliest("candle_time").candle_time
    assert killed_at < expected() and first_ticked < FIRST_TICK + timedelta(hours=CANDLES // 4)
    # The clock released exactly the stored candles, in order, each ticked once.
    assert EngineTick.objects.filter(account=account).latest("candle_time").candle_time == last_candle
    assert MarketFeedStatus.objects.get(feed="clock").consecutive_failures == 0
    live_books, live_decisions = books(account), decisions(account)
    real_closed = [trade for trade in live_books["trades"] if not trade[2] and trade[3] == "closed"]
    assert len(real_closed) >= 3, "too few closed trades to say the loop trades"
    assert_books_hold(account)  # one decision per candle, one outcome per closed trade, the balance adds up
    state = OnlineLearningState.objects.get()
    assert state.updates >= 1 and ModelVersion.objects.filter(kind=ModelKind.ONLINE).exists()
    # Beat's retrains trained batch models on the outcomes, the live ones included; each was adopted or refused.
    batch = ModelVersion.objects.filter(kind=ModelKind.BATCH)
    assert batch.exists() and max(batch.values_list("samples_seen", flat=True)) > 200

    # The replay: the same candles, a fresh account, the learning store as the live run found it.
    TrainingRecord.objects.filter(trade_id__startswith=f"acct{account.pk}-").delete()
    aggregates_rebuild()
    from operations.replay import replay
    from trading.engine import TradingEngine

    replayed = account_create(name=f"replayed-{uuid.uuid4().hex[:6]}", system_type="paper_trading", starting_balance=Decimal("10000"))
    frame = candles_frame(symbol="BTCUSDT", timeframe=TIMEFRAME, exchange=EXCHANGE)
    replay(
        engines=[TradingEngine(account=replayed)], frames={"BTCUSDT": frame}, timeframe=TIMEFRAME,
        start=first_ticked, end=last_candle, background=False, progress=False,
    )  # fmt: skip
    assert decisions(replayed) == live_decisions
    assert books(replayed) == live_books
