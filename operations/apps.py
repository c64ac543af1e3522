"""The operations app: the wiring on top of learning, trading and scraping (no models of its own)."""
from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "operations"
