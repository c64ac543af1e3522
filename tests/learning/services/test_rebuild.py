"""The incremental aggregates equal a rebuild from the records, after thousands of random outcomes."""
import random

import pytest
from django.core.management import call_command

from learning.services import store_trade_outcome, store_trade_outcomes
from tests.conftest import aggregates_snapshot
from tests.factories import TradeOutcomeFactory

pytestmark = pytest.mark.django_db


def test_rebuild_equals_incremental_after_thousands_of_random_outcomes():
    rng = random.Random(7)
    outcomes = [
        TradeOutcomeFactory(
            features={"rsi_14": rng.uniform(5, 95), "atr_pct": rng.uniform(0.001, 0.05), "volume_ratio": rng.lognormvariate(0, 1)}
        )
        for _ in range(3000)
    ]
    position = 0
    while position < len(outcomes):  # singles and batches of varying sizes, like engines and imports
        size = rng.choice([1, 1, 1, 7, 50, 200])
        chunk = outcomes[position : position + size]
        if size == 1:
            store_trade_outcome(outcome=chunk[0])
        else:
            store_trade_outcomes(outcomes=chunk)
        position += size
    incremental = aggregates_snapshot()
    assert sum(row["total_trades"] for row in incremental["strategy_performance_learning"].values()) == 3000
    # The rolling windows were filled out of exit order (random entry times) and have dropped outcomes.
    windows = incremental["recent_performance_learning"]
    assert len(windows) == 6 and all(len(row["window"]) == 100 for row in windows.values())

    call_command("rebuild_learning_stats", stdout=open("/dev/null", "w"))
    assert aggregates_snapshot() == incremental


def test_rebuild_keeps_the_batch_models_importance_rows():
    from django.utils import timezone

    from learning.models import FeatureImportance
    from learning.services.aggregates import MODEL_IMPORTANCE_STRATEGY

    store_trade_outcomes(outcomes=TradeOutcomeFactory.build_batch(20))
    FeatureImportance.objects.create(
        feature_name="rsi_14", strategy_type=MODEL_IMPORTANCE_STRATEGY, model_importance=0.12, last_updated=timezone.now()
    )
    call_command("rebuild_learning_stats", stdout=open("/dev/null", "w"))
    assert FeatureImportance.objects.get(strategy_type=MODEL_IMPORTANCE_STRATEGY).model_importance == 0.12
    assert FeatureImportance.objects.exclude(strategy_type=MODEL_IMPORTANCE_STRATEGY).count() > 0
