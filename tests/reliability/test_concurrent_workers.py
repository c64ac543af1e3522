"""Two and four workers racing over the same accounts, symbols and candles: each candle acted on once, books that add up."""
from decimal import Decimal

import pytest

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
from trading.models import PaperTrade, SignalDecision
from trading.services.accounts import account_create

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SYMBOLS = ("BTCUSDT", "ETHUSDT")


@pytest.mark.parametrize("worker_count", [2, 4])
def test_racing_workers_act_on_each_candle_once_and_every_balance_adds_up(tmp_path, workers, worker_count):
    import_slice(tmp_path, *SYMBOLS, candles=900)
    accounts = [
        account_create(name="paper", system_type="paper_trading", starting_balance=Decimal("10000")),
        account_create(name="scraping", system_type="profit_scraping", starting_balance=Decimal("10000")),
    ]
    times = tick_times(360, 12)
    queue = queue_name()
    # Every tick is queued once per worker, so the workers race for the same candles; the model
    # updates the closes queue run on the same workers, between and alongside the ticks.
    for now in times:
        for account in accounts:
            for symbol in SYMBOLS:
                for _ in range(worker_count):
                    workers.send("trading.tasks.engine_tick_task", account.pk, symbol, TIMEFRAME, EXCHANGE, now=now.isoformat(), queue=queue)
    for index in range(worker_count):
        workers.start(f"worker{index}", [queue, "celery"])
    totals = {symbol: expected_ticks(symbol, FIRST_TICK, times[-1]) for symbol in SYMBOLS}
    workers.wait_for(
        lambda: all(ticks_done(account, symbol) == totals[symbol] for account in accounts for symbol in SYMBOLS)
        and TrainingRecord.objects.exists()
        and all_learned(),
        timeout=300,
        what="every candle ticked and every outcome learned",
    )
    workers.stop_all()

    assert "already claimed" in workers.log(), "the workers never raced for a candle"
    for account in accounts:
        assert_books_hold(account)
        assert SignalDecision.objects.filter(account=account).exists()
    assert PaperTrade.objects.filter(is_shadow=False, status=PaperTrade.Status.CLOSED).count() >= 3
    assert_one_active_version_per_kind()
    assert_rebuild_equals_incremental(float_tolerance=1e-9)
