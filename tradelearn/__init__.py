"""tradelearn: paper-trading engines whose closed trades teach the next decision."""
from .celery import app as celery_app

__all__ = ("celery_app",)
