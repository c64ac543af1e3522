"""Celery tasks of the trading app: thin wrappers that call a service."""
from celery import shared_task

from trading.services.candles import TRANSIENT_ERRORS, candles_fetch


@shared_task(
    acks_late=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=5,
)
def fetch_candles_task(exchange: str, symbols: list[str], timeframe: str) -> dict[str, int]:
    """Store new closed candles for each symbol; returns the number newly stored per symbol.

    Idempotent: a redelivered or retried run resumes after the last stored candle.
    """
    return candles_fetch(exchange=exchange, symbols=symbols, timeframe=timeframe).counts()
