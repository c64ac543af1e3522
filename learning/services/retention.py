"""Retention: delete training records older than LEARNING_RETENTION_DAYS, in batches.

The aggregates are left as they are on purpose: they summarise everything ever learned,
including pruned trades. A later `rebuild_learning_stats` reflects only the kept records.
The dashboard's two summaries (outcomes per day, the model's calibration) describe the records
as they are, so they are rebuilt once the pruning has deleted any.
"""
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from learning.models import TrainingRecord
from learning.services.aggregates import RECORD_SUMMARIES, aggregates_rebuild


def training_records_prune(*, now: datetime | None = None, batch_size: int = 5000) -> int:
    """Delete records whose exit is older than the retention window; returns how many."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.LEARNING_RETENTION_DAYS)
    deleted = 0
    while True:
        # Short transactions, so stores are never held up behind one long delete.
        with transaction.atomic():
            ids = list(TrainingRecord.objects.filter(exit_time__lt=cutoff).order_by("id").values_list("id", flat=True)[:batch_size])
            if not ids:
                if deleted:
                    aggregates_rebuild(aggregates=RECORD_SUMMARIES)
                return deleted
            deleted += TrainingRecord.objects.filter(id__in=ids).delete()[0]
