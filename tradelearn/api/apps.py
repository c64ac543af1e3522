"""The API plumbing as an app, so its system checks are registered at start-up."""
from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "tradelearn.api"
    label = "tradelearn_api"

    def ready(self):
        from tradelearn.api import checks  # noqa: F401  (registers the checks)
