"""store_trade_outcome: validation, one row per trade, all five aggregates in one transaction."""
import dataclasses
import math
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from learning.models import (
    FeatureImportance,
    MarketRegimeStats,
    PositionSizing,
    SignalQuality,
    StrategyPerformance,
    TrainingRecord,
)
from learning.services import store_trade_outcome, store_trade_outcomes
from tests.factories import TradeOutcomeFactory

pytestmark = pytest.mark.django_db
AGGREGATES = (StrategyPerformance, SignalQuality, MarketRegimeStats, PositionSizing, FeatureImportance)


def table_counts() -> tuple[int, ...]:
    return (TrainingRecord.objects.count(), *(model.objects.count() for model in AGGREGATES))


def test_stores_the_record_and_updates_every_aggregate():
    outcome = TradeOutcomeFactory(features={"rsi_14": 55.0, "atr_pct": 0.01, "side": 1})
    result = store_trade_outcome(outcome=outcome)
    assert result.stored == 1 and not result.duplicate
    record = TrainingRecord.objects.get(trade_id=outcome.trade_id)
    assert record.success == (outcome.net_pnl > 0)
    assert record.duration_minutes == 7 * 60
    assert table_counts() == (1, 1, 1, 1, 1, 3)
    assert StrategyPerformance.objects.get().total_trades == 1
    assert FeatureImportance.objects.filter(strategy_type=outcome.strategy_type).count() == 3


def test_same_trade_id_again_is_a_duplicate_and_changes_nothing():
    outcome = TradeOutcomeFactory()
    store_trade_outcome(outcome=outcome)
    before = list(StrategyPerformance.objects.values())
    again = store_trade_outcome(outcome=dataclasses.replace(outcome, exit_price=outcome.exit_price * 2))
    assert again.duplicate and again.duplicates == (outcome.trade_id,)
    assert TrainingRecord.objects.count() == 1
    assert list(StrategyPerformance.objects.values()) == before


def test_a_batch_stores_new_trades_and_reports_repeats_within_it():
    first, second = TradeOutcomeFactory(), TradeOutcomeFactory()
    store_trade_outcome(outcome=first)
    result = store_trade_outcomes(outcomes=[first, second, second])
    assert result.stored == 1
    assert sorted(result.duplicates) == sorted([first.trade_id, second.trade_id])
    assert sum(row.total_trades for row in StrategyPerformance.objects.all()) == 2


INVALID = [
    ("entry_price", Decimal("0"), "entry_price"),
    ("entry_price", Decimal("-5"), "entry_price"),
    ("exit_price", Decimal("NaN"), "exit_price"),
    ("exit_price", float("inf"), "exit_price"),
    ("net_pnl", float("nan"), "net_pnl"),
    ("pnl_pct", "abc", "pnl_pct"),
    ("fees", Decimal("-1"), "fees"),
    ("confidence_score", 1.5, "confidence_score"),
    ("confidence_score", float("nan"), "confidence_score"),
    ("ml_score", -0.1, "ml_score"),
    ("system_type", "live_trading", "system_type"),
    ("side", "sideways", "side"),
    ("market_regime", "bubbly", "market_regime"),
    ("volatility_regime", "extreme", "volatility_regime"),
    ("exit_reason", "bored", "exit_reason"),
    ("trade_id", "", "trade_id"),
    ("trade_id", "x" * 65, "trade_id"),
    ("symbol", "", "symbol"),
    ("entry_time", datetime(2023, 1, 1), "entry_time"),
    ("exit_time", datetime(2021, 1, 1, tzinfo=UTC), "exit_time"),
    ("duration_minutes", -3, "duration_minutes"),
    ("features", {"rsi_14": float("nan")}, "features.rsi_14"),
    ("features", {"rsi_14": "high"}, "features.rsi_14"),
    ("features", [1, 2], "features"),
]


@pytest.mark.parametrize(("field", "value", "error_key"), INVALID)
def test_invalid_outcomes_are_rejected_naming_the_field_and_nothing_is_written(field, value, error_key):
    good = TradeOutcomeFactory()
    with pytest.raises(ValidationError) as caught:
        store_trade_outcomes(outcomes=[dataclasses.replace(good, **{field: value})])
    assert error_key in caught.value.message_dict
    assert table_counts() == (0, 0, 0, 0, 0, 0)


def test_success_must_agree_with_net_pnl():
    outcome = TradeOutcomeFactory(move_pct=Decimal("0.02"), side="long")
    with pytest.raises(ValidationError) as caught:
        store_trade_outcome(outcome=dataclasses.replace(outcome, success=False))
    assert "success" in caught.value.message_dict


def test_one_bad_outcome_in_a_batch_writes_nothing_and_names_its_position():
    batch = [TradeOutcomeFactory(), TradeOutcomeFactory(), dataclasses.replace(TradeOutcomeFactory(), side="up")]
    with pytest.raises(ValidationError) as caught:
        store_trade_outcomes(outcomes=batch)
    assert "2.side" in caught.value.message_dict
    assert table_counts() == (0, 0, 0, 0, 0, 0)


def test_a_failure_inside_the_transaction_leaves_no_half_write(monkeypatch):
    from learning.services import aggregates

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(aggregates.FeatureImportanceAggregate, "apply_all", broken)
    with pytest.raises(RuntimeError):
        store_trade_outcome(outcome=TradeOutcomeFactory())
    assert table_counts() == (0, 0, 0, 0, 0, 0)


def test_stored_numbers_round_trip_exactly():
    outcome = TradeOutcomeFactory(entry_price=Decimal("0.0000123456"), exit_price=Decimal("0.0000124"))
    store_trade_outcome(outcome=outcome)
    record = TrainingRecord.objects.get()
    assert record.entry_price == Decimal("0.0000123456")
    assert math.isclose(float(record.pnl_pct), float(outcome.pnl_pct))


@pytest.mark.django_db(transaction=True)
def test_one_outcome_on_postgresql_is_one_statement_and_exactly_once():
    """Outside a transaction the store is a single statement (its own commit), also when rows exist."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    first, second = TradeOutcomeFactory(), TradeOutcomeFactory()
    store_trade_outcome(outcome=first)  # creates the aggregate rows and prepares the statement
    with CaptureQueriesContext(connection) as queries:
        result = store_trade_outcome(outcome=second)
        again = store_trade_outcome(outcome=second)
    assert [query["sql"].split(" ")[0] for query in queries.captured_queries] == ["EXECUTE", "EXECUTE"]
    assert result.stored == 1 and again.duplicate
    assert TrainingRecord.objects.count() == 2
    assert sum(StrategyPerformance.objects.values_list("total_trades", flat=True)) == 2
