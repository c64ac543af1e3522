"""Celery tasks of the trading app: thin wrappers that call a service."""
from celery import shared_task
from celery.signals import worker_ready

from tradelearn.celery import TASK_OPTIONS
from trading.services.candles import TRANSIENT_ERRORS as EXCHANGE_TRANSIENT_ERRORS
from trading.services.candles import candles_fetch


# The exchange briefly unreachable or throttling is as worth retrying as the database or broker.
EXCHANGE_TASK_OPTIONS = {**TASK_OPTIONS, "autoretry_for": TASK_OPTIONS["autoretry_for"] + EXCHANGE_TRANSIENT_ERRORS}


@shared_task(**EXCHANGE_TASK_OPTIONS)
def fetch_candles_task(exchange: str, symbols: list[str], timeframe: str) -> dict[str, int]:
    """Store new closed candles for each symbol; returns the number newly stored per symbol.

    Idempotent: a redelivered or retried run resumes after the last stored candle.
    """
    return candles_fetch(exchange=exchange, symbols=symbols, timeframe=timeframe).counts()


@shared_task(**EXCHANGE_TASK_OPTIONS)
def reconcile_exchange_accounts_task() -> dict[str, list[str]]:
    """Match every exchange account's open orders and positions with its books; returns what each could not explain."""
    from django.conf import settings

    from trading.brokers import exchange_order_client
    from trading.models import PaperAccount
    from trading.services.orders import account_reconcile

    unexplained = {}
    for account in PaperAccount.objects.filter(broker="exchange").order_by("pk"):
        report = account_reconcile(account=account, client=exchange_order_client(account), markets=list(settings.TRADING_MARKETS))
        unexplained[account.name] = report.unexplained
    return unexplained


@shared_task(**EXCHANGE_TASK_OPTIONS)
def exchange_entry_order_task(decision_id: int) -> str | None:
    """Place a taken decision's entry order on the exchange (once: a retry asks about it instead); returns its state."""
    from trading.brokers import exchange_order_client
    from trading.services.exchange_trades import entry_order_place

    order = entry_order_place(decision_id=decision_id, client_for=lambda account: exchange_order_client(account))
    return None if order is None else order.status


@worker_ready.connect
def _reconcile_at_start_up(sender=None, **kwargs) -> None:
    """A worker coming up reconciles first: orders may have filled or been cancelled while nothing listened."""
    from trading.models import PaperAccount

    if PaperAccount.objects.filter(broker="exchange").exists():
        reconcile_exchange_accounts_task.delay()
