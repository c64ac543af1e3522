"""Pruning deletes old training records in batches and leaves the learned aggregates alone."""
from datetime import timedelta

import pytest
from django.utils import timezone

from learning.models import StrategyPerformance, TrainingRecord
from learning.services import store_trade_outcomes, training_records_prune
from tests.factories import TradeOutcomeFactory

pytestmark = pytest.mark.django_db


def test_prune_deletes_only_records_past_retention(settings):
    settings.LEARNING_RETENTION_DAYS = 30
    now = timezone.now()
    old = [TradeOutcomeFactory(entry_time=now - timedelta(days=90), exit_time=now - timedelta(days=89)) for _ in range(25)]
    new = [TradeOutcomeFactory(entry_time=now - timedelta(days=2), exit_time=now - timedelta(days=1)) for _ in range(5)]
    store_trade_outcomes(outcomes=old + new)
    before = list(StrategyPerformance.objects.order_by("pk").values())

    assert training_records_prune(now=now, batch_size=10) == 25
    assert set(TrainingRecord.objects.values_list("trade_id", flat=True)) == {o.trade_id for o in new}
    assert list(StrategyPerformance.objects.order_by("pk").values()) == before
    assert training_records_prune(now=now) == 0


def test_prune_rebuilds_the_dashboards_summaries_of_the_records_kept(settings):
    from collections import Counter

    from learning.buckets import bucket_index
    from learning.models import DailyOutcomes, ModelScoreCalibration

    settings.LEARNING_RETENTION_DAYS = 30
    now = timezone.now()
    old = [TradeOutcomeFactory(entry_time=now - timedelta(days=90), exit_time=now - timedelta(days=89), ml_score=0.15) for _ in range(6)]
    new = [TradeOutcomeFactory(entry_time=now - timedelta(days=2), exit_time=now - timedelta(days=1), ml_score=0.75) for _ in range(4)]
    store_trade_outcomes(outcomes=old + new)
    assert sum(DailyOutcomes.objects.values_list("outcomes", flat=True)) == 10

    training_records_prune(now=now)
    kept = TrainingRecord.objects.values_list("system_type", "exit_time", "ml_score")
    assert Counter({(row.system_type, row.day): row.outcomes for row in DailyOutcomes.objects.all()}) == Counter(
        (system, exit_time.date()) for system, exit_time, _ in kept
    )
    assert {row.bucket: row.outcomes for row in ModelScoreCalibration.objects.all()} == dict(Counter(bucket_index(score) for *_, score in kept))
