"""Notifications of what the live system does (trades, retrains, feed failures, reconciliation, kill switch).

Off by default. `notify` queues a delivery after the caller's transaction commits and returns at
once: a tick never waits on a webhook or on Telegram, and a delivery that fails is retried by its
task (with backoff, a bounded number of times) and then dropped with one log line.
"""
import logging
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

EVENTS = (
    "trade_opened", "trade_closed", "retrain_adopted", "retrain_refused", "feed_failing", "feed_recovered",
    "reconciliation_mismatch", "kill_switch",
)  # fmt: skip


def notifications_enabled() -> bool:
    return bool(settings.NOTIFY_WEBHOOK_URL or (settings.NOTIFY_TELEGRAM_BOT_TOKEN and settings.NOTIFY_TELEGRAM_CHAT_ID))


def notify(event: str, text: str, **data) -> None:
    """Send `text` (one human line) and `data` (JSON-ready) to every configured target, after commit."""
    if event not in EVENTS:
        raise ValueError(f"Unknown notification event {event!r}; known: {', '.join(EVENTS)}.")
    if not notifications_enabled() or event not in settings.NOTIFY_EVENTS:
        return
    message = {"event": event, "text": text, "data": data, "at": datetime.now(UTC).isoformat()}
    transaction.on_commit(lambda: _queue(message))


def _queue(message: dict) -> None:
    from tradelearn.notifications.tasks import deliver_notification_task

    try:
        deliver_notification_task.apply_async(args=[message])
    except Exception as error:  # noqa: BLE001 - a broker outage (or, in-process, a failed delivery) must not fail the caller
        logger.warning("notification %s not queued: %s", message["event"], error)
