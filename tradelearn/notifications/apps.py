"""Django app config: registers the notification delivery task with Celery's autodiscovery."""
from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "tradelearn.notifications"
    label = "notifications"
