"""The Celery application: configured from Django settings (CELERY_*), tasks autodiscovered, one set of task options."""
import os

from celery import Celery
from django.db import InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradelearn.settings.local")

app = Celery("tradelearn")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The database or the broker briefly gone (a restart, a dropped connection): worth retrying.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, RedisConnectionError)

# Every task: acknowledged only once done (a killed worker's task is redelivered), transient
# errors retried with jittered exponential backoff, up to a bound. Tasks are idempotent, so a
# retry or a redelivery never applies anything twice.
TASK_OPTIONS = {
    "acks_late": True,
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": True,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 5,
}
