"""Property-based: random valid outcomes keep every learning invariant; random invalid ones are refused and change nothing."""
import dataclasses
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from learning.models import (
    ExitReason,
    MarketRegime,
    MarketRegimeStats,
    PositionSizing,
    Side,
    SignalQuality,
    StrategyPerformance,
    SystemType,
    TrainingRecord,
    VolatilityRegime,
)
from learning.services import store_trade_outcomes
from learning.types import TradeOutcome
from tests.reliability.conftest import aggregates_snapshot

pytestmark = pytest.mark.django_db

PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
EPOCH = datetime(2022, 1, 1, tzinfo=UTC)

money = st.decimals(min_value=Decimal("-50000"), max_value=Decimal("50000"), places=8, allow_nan=False, allow_infinity=False)


@st.composite
def outcomes(draw, trade_id: str) -> TradeOutcome:
    entry_time = EPOCH + timedelta(minutes=draw(st.integers(0, 60 * 24 * 700)))
    net_pnl = draw(money)
    return TradeOutcome(
        trade_id=trade_id,
        symbol=draw(st.sampled_from(["BTCUSDT", "ETHUSDT", "SOLUSDT"])),
        strategy_type=draw(st.sampled_from(["trend_following", "mean_reversion", "profit_scraping"])),
        system_type=draw(st.sampled_from(SystemType.values)),
        side=draw(st.sampled_from(Side.values)),
        confidence_score=draw(st.floats(0, 1)),
        ml_score=draw(st.none() | st.floats(0, 1)),
        entry_price=draw(st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("1e9"), places=4)),
        exit_price=draw(st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("1e9"), places=4)),
        pnl_pct=draw(st.decimals(min_value=Decimal("-1"), max_value=Decimal("5"), places=6)),
        net_pnl=net_pnl,
        fees=draw(st.decimals(min_value=Decimal(0), max_value=Decimal("500"), places=8)),
        market_regime=draw(st.sampled_from(MarketRegime.values)),
        volatility_regime=draw(st.sampled_from(VolatilityRegime.values)),
        exit_reason=draw(st.sampled_from(ExitReason.values)),
        entry_time=entry_time,
        exit_time=entry_time + timedelta(minutes=draw(st.integers(0, 60 * 24 * 30))),
        success=draw(st.sampled_from([None, net_pnl > 0])),
        features=draw(st.dictionaries(st.sampled_from(["rsi_14", "atr_pct", "roc_4", "volume_ratio"]), st.floats(-1e6, 1e6), max_size=4)),
        is_shadow=draw(st.booleans()),
    )


@st.composite
def outcome_batches(draw) -> list[TradeOutcome]:
    count = draw(st.integers(1, 25))
    batch = [draw(outcomes(f"p-{index}")) for index in range(count)]
    # Some trade ids sent twice: storing one again must change nothing.
    repeats = draw(st.lists(st.sampled_from(batch), max_size=5))
    return batch + [dataclasses.replace(item) for item in repeats]


def assert_invariants() -> None:
    for row in StrategyPerformance.objects.all():
        assert row.total_trades == row.winning_trades + row.losing_trades
        assert 0.0 <= row.win_rate <= 1.0
        assert math.isclose(row.win_rate, row.winning_trades / row.total_trades, rel_tol=1e-12)
    for row in SignalQuality.objects.all():
        assert 0 <= row.successes <= row.sample_size and 0.0 <= row.actual_success_rate <= 1.0
        assert 0.0 <= row.predicted_success_rate <= 1.0 + 1e-12 and row.calibration_score <= 1.0 + 1e-12
    for row in MarketRegimeStats.objects.all():
        assert 0 <= row.winning_trades <= row.total_trades_in_regime
        assert row.best_strategy_win_rate is None or 0.0 <= row.best_strategy_win_rate <= 1.0
    for row in PositionSizing.objects.all():
        assert 0 <= row.wins <= row.sample_size and 0.0 <= row.optimal_position_size_pct <= 1.0


@PROPERTY_SETTINGS
@given(batch=outcome_batches(), singly=st.booleans())
def test_random_valid_outcomes_keep_every_invariant_and_rebuild_equals_incremental(batch, singly):
    from learning.services.aggregates import aggregates_rebuild

    with transaction.atomic():  # each example starts from an empty store
        if singly:
            for outcome in batch:
                store_trade_outcomes(outcomes=[outcome])
        else:
            store_trade_outcomes(outcomes=batch)
        unique_ids = {outcome.trade_id for outcome in batch}
        assert TrainingRecord.objects.count() == len(unique_ids)
        total = sum(row.total_trades for row in StrategyPerformance.objects.all())
        assert total == len(unique_ids)
        wins = TrainingRecord.objects.filter(success=True).count()
        assert sum(row.winning_trades for row in StrategyPerformance.objects.all()) == wins
        assert all(success == (pnl > 0) for success, pnl in TrainingRecord.objects.values_list("success", "net_pnl"))
        assert_invariants()
        incremental = aggregates_snapshot()
        aggregates_rebuild()
        assert aggregates_snapshot() == incremental
        transaction.set_rollback(True)


def _naive(value: datetime) -> datetime:
    return value.replace(tzinfo=None)


# Each entry: the field it breaks and how, from a valid outcome.
CORRUPTIONS = {
    "trade_id": st.sampled_from(["", "   ", "x" * 65, None, 17]),
    "symbol": st.sampled_from(["", "S" * 33, None]),
    "strategy_type": st.sampled_from(["", "s" * 65]),
    "system_type": st.text(max_size=20).filter(lambda text: text not in SystemType.values),
    "side": st.text(max_size=10).filter(lambda text: text not in Side.values),
    "market_regime": st.sampled_from(["sideways", "", "TRENDING_UP"]),
    "volatility_regime": st.sampled_from(["extreme", None]),
    "exit_reason": st.sampled_from(["liquidated", ""]),
    "confidence_score": st.sampled_from([-0.01, 1.0001, math.nan, math.inf, "0.5", True, None]) | st.floats(min_value=1.0, exclude_min=True),
    "ml_score": st.sampled_from([-1.0, 2.0, math.nan, "high"]),
    "entry_price": st.sampled_from([Decimal(0), Decimal(-1), Decimal("NaN"), Decimal("Infinity"), Decimal("1e18"), "abc", None]),
    "exit_price": st.sampled_from([Decimal(0), Decimal("-0.5"), Decimal("sNaN"), Decimal("1e20")]),
    "pnl_pct": st.sampled_from([Decimal("NaN"), Decimal("1e12"), "x", None]),
    "fees": st.decimals(max_value=Decimal("-0.00000001"), allow_nan=False, allow_infinity=False, places=8) | st.just(Decimal("Infinity")),
    "net_pnl": st.sampled_from([Decimal("NaN"), Decimal("1e15"), None]),
    "features": st.sampled_from([[1, 2], "rsi=5", {"rsi_14": math.nan}, {"rsi_14": "high"}, {"rsi_14": True}, {"atr_pct": math.inf}]),
    "model_versions": st.sampled_from([["batch-0001"], "batch-0001", None]),
    "is_shadow": st.sampled_from([None, "yes", 1]),
    "duration_minutes": st.sampled_from([-1, 1.5, True, "60"]),
}


@PROPERTY_SETTINGS
@given(data=st.data(), broken=st.sampled_from(sorted(CORRUPTIONS) + ["success", "exit_time", "entry_time"]))
def test_random_invalid_outcomes_are_refused_naming_the_field_and_change_nothing(data, broken):
    with transaction.atomic():
        store_trade_outcomes(outcomes=[data.draw(outcomes("kept"))])
        records_before, aggregates_before = list(TrainingRecord.objects.values_list("trade_id", flat=True)), aggregates_snapshot()
        valid = data.draw(outcomes("new"))
        if broken == "success":
            bad = dataclasses.replace(valid, success=not (valid.net_pnl > 0))
        elif broken == "exit_time":
            bad = dataclasses.replace(valid, exit_time=valid.entry_time - timedelta(minutes=data.draw(st.integers(1, 10_000))))
        elif broken == "entry_time":
            bad = dataclasses.replace(valid, entry_time=_naive(valid.entry_time))
        else:
            bad = dataclasses.replace(valid, **{broken: data.draw(CORRUPTIONS[broken])})
        # A batch with one bad outcome among good ones is refused whole.
        batch = data.draw(st.sampled_from([[bad], [dataclasses.replace(valid, trade_id="good"), bad]]))
        with pytest.raises(ValidationError) as error:
            store_trade_outcomes(outcomes=batch)
        fields = error.value.message_dict
        assert any(broken in name.split(".") for name in fields), fields
        assert all(messages and all(isinstance(m, str) and m for m in messages) for messages in fields.values())
        assert list(TrainingRecord.objects.values_list("trade_id", flat=True)) == records_before
        assert aggregates_snapshot() == aggregates_before
        transaction.set_rollback(True)
