"""Delivering one notification to the configured webhook and Telegram chat, retried on failure."""
import logging

import requests
from celery import shared_task
from django.conf import settings

logger = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """A target answered with an error status or could not be reached; worth retrying."""


def _post(url: str, payload: dict, *, target: str) -> None:
    # The URL may hold a secret (Telegram's bot token is in its path): errors name the target only.
    try:
        response = requests.post(url, json=payload, timeout=settings.NOTIFY_TIMEOUT_SECONDS)
    except requests.RequestException as error:
        raise DeliveryFailed(f"{target}: {type(error).__name__}") from None
    if response.status_code >= 300:
        raise DeliveryFailed(f"{target}: HTTP {response.status_code}")


RETRY_BASE_SECONDS = 5
RETRY_MAX_SECONDS = 300


@shared_task(acks_late=True, max_retries=5)
def deliver_notification_task(message: dict, targets: list[str] | None = None) -> list[str]:
    """Post `message` to each target not yet delivered; returns the targets delivered by this run.

    A retry posts only to the targets that failed, so a receiver that worked is not sent it twice.
    """
    pending = targets or [name for name, enabled in (
        ("webhook", bool(settings.NOTIFY_WEBHOOK_URL)),
        ("telegram", bool(settings.NOTIFY_TELEGRAM_BOT_TOKEN and settings.NOTIFY_TELEGRAM_CHAT_ID)),
    ) if enabled]  # fmt: skip
    delivered, failed = [], []
    for target in pending:
        try:
            if target == "webhook":
                _post(settings.NOTIFY_WEBHOOK_URL, message, target=target)
            else:
                url = f"{settings.NOTIFY_TELEGRAM_API_URL.rstrip('/')}/bot{settings.NOTIFY_TELEGRAM_BOT_TOKEN}/sendMessage"
                _post(url, {"chat_id": settings.NOTIFY_TELEGRAM_CHAT_ID, "text": message["text"]}, target=target)
            delivered.append(target)
        except DeliveryFailed as error:
            failed.append((target, str(error)))
    if failed:
        request = deliver_notification_task.request
        if request.retries >= deliver_notification_task.max_retries:
            logger.warning("notification %s dropped after %d attempts: %s", message.get("event"), request.retries + 1, "; ".join(text for _, text in failed))
            return delivered
        raise deliver_notification_task.retry(
            args=(message, [target for target, _ in failed]),
            countdown=min(RETRY_BASE_SECONDS * 2**request.retries, RETRY_MAX_SECONDS),
            exc=DeliveryFailed("; ".join(text for _, text in failed)),
        )
    return delivered
