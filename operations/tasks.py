"""Celery tasks of the live engines: beat's entry point and one tick per account, symbol and closed candle.

The tasks keep the names they had when they lived in trading/tasks.py: the beat schedule's rows
(django-celery-beat's PeriodicTask.task) and messages already queued refer to them by name.
"""
from datetime import datetime

from celery import shared_task
from django.conf import settings

from operations.ticks import engine_tick
from tradelearn.celery import TASK_OPTIONS
from trading.marketdata.naming import normalize_symbol
from trading.models import PaperAccount
from trading.services.feeds import feed_poll


# A tick is retried sooner (backoff at most 5 minutes) and more often: its candle should run before the next closes.
@shared_task(name="trading.tasks.engine_tick_task", **{**TASK_OPTIONS, "retry_backoff_max": 300, "max_retries": 8})
def engine_tick_task(account_id: int, symbol: str, timeframe: str, exchange: str, now: str | None = None) -> int:
    """Run the account's engine over each new closed candle of the symbol; claimed once per candle.

    `now` (ISO 8601, default the wall clock) ticks only up to that time, so stored candles can be
    ticked through step by step (catch-up runs, fault tests).
    """
    if not PaperAccount.objects.filter(pk=account_id).exists():
        return 0  # the account was deleted after this was queued
    clock = None if now is None else datetime.fromisoformat(now)
    return engine_tick(account_id=account_id, symbol=symbol, timeframe=timeframe, exchange=exchange, now=clock)


@shared_task(name="trading.tasks.schedule_engine_ticks_task", **TASK_OPTIONS)
def schedule_engine_ticks_task() -> int:
    """Beat's entry point: poll the market data feed, then queue a tick per account and symbol it trades; returns how many.

    Ticks run on what is stored whatever the poll did: a failed fetch is recorded, logged once
    per failure streak and backed off (trading.services.feeds), never raised here. With the clock
    feed each tick runs up to the clock's latest closed candle. Paused accounts are ticked too:
    they open nothing but still manage their open trades to their exits.
    """
    poll = feed_poll()
    until = None if poll.closed_until is None else poll.closed_until.isoformat()
    queued = 0
    for account in PaperAccount.objects.order_by("pk").only("pk", "symbols"):
        for symbol in (normalize_symbol(market) for market in account.traded_markets):
            engine_tick_task.delay_on_commit(account.pk, symbol, settings.TRADING_TIMEFRAME, settings.TRADING_EXCHANGE, until)
            queued += 1
    return queued
