"""The broker (a Redis of the test's own) stops mid-run and comes back empty: ticks and updates resume, nothing lost or doubled."""
import time
from decimal import Decimal

import pytest
import redis

from learning.models import TrainingRecord
from tests.reliability.conftest import (
    EXCHANGE,
    FIRST_TICK,
    TIMEFRAME,
    all_learned,
    assert_books_hold,
    assert_one_active_version_per_kind,
    assert_rebuild_equals_incremental,
    expected_ticks,
    import_slice,
    queue_name,
    tick_times,
    ticks_done,
)
from trading.services.accounts import account_create

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

OUTAGE_SECONDS = 5


def test_ticks_and_updates_resume_after_the_broker_comes_back(tmp_path, own_redis, workers):
    import_slice(tmp_path, "BTCUSDT")
    account = account_create(name="outage", system_type="paper_trading", starting_balance=Decimal("10000"))
    times = tick_times(600, 12)
    half = len(times) // 2
    queue = queue_name()

    def queue_ticks(steps) -> None:
        for now in steps:
            workers.send("trading.tasks.engine_tick_task", account.pk, "BTCUSDT", TIMEFRAME, EXCHANGE, now=now.isoformat(), queue=queue)

    queue_ticks(times[:half])
    workers.start("worker", [queue, "celery"])
    workers.wait_for(lambda: ticks_done(account, "BTCUSDT") >= 60, timeout=120, what="ticks before the outage")

    # Redis dies (no persistence: every queued and unacknowledged message goes with it) while
    # the worker is ticking; the closes meanwhile cannot queue their model updates.
    own_redis.stop()
    during = ticks_done(account, "BTCUSDT")
    time.sleep(OUTAGE_SECONDS)
    own_redis.start()
    assert redis.Redis.from_url(own_redis.url).dbsize() == 0

    # Beat queues the next ticks and its periodic online update as usual: the first tick after the
    # outage catches up every candle whose message was lost.
    queue_ticks(times[half:])
    total = expected_ticks("BTCUSDT", FIRST_TICK, times[-1])
    workers.wait_for(lambda: ticks_done(account, "BTCUSDT") == total, timeout=180, what=f"all {total} ticks after the outage")
    workers.send("learning.tasks.online_update_task", queue="celery")

    workers.wait_for(all_learned, timeout=120, what="every outcome learned")
    workers.stop_all()

    log = workers.log()
    assert during < total
    assert "Cannot connect to redis" in log or "Connection to broker lost" in log, "the worker never noticed the outage"
    assert log.count("Connected to redis") >= 2, "the worker did not reconnect"
    assert TrainingRecord.objects.exists()
    assert_books_hold(account)
    assert_one_active_version_per_kind()
    assert_rebuild_equals_incremental()
