"""Celery tasks of the trading app: thin wrappers that call a service."""
from celery import shared_task

from tradelearn.celery import TASK_OPTIONS
from trading.services.candles import TRANSIENT_ERRORS as EXCHANGE_TRANSIENT_ERRORS
from trading.services.candles import candles_fetch


# The exchange briefly unreachable or throttling is as worth retrying as the database or broker.
@shared_task(**{**TASK_OPTIONS, "autoretry_for": TASK_OPTIONS["autoretry_for"] + EXCHANGE_TRANSIENT_ERRORS})
def fetch_candles_task(exchange: str, symbols: list[str], timeframe: str) -> dict[str, int]:
    """Store new closed candles for each symbol; returns the number newly stored per symbol.

    Idempotent: a redelivered or retried run resumes after the last stored candle.
    """
    return candles_fetch(exchange=exchange, symbols=symbols, timeframe=timeframe).counts()
