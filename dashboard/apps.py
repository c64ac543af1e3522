"""App config of the dashboard."""
from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
