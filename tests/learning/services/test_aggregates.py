"""Every aggregate formula, checked against figures computed independently from the outcomes."""
import dataclasses
import math
from decimal import Decimal

import numpy as np
import pytest

from learning.models import FeatureImportance, MarketRegimeStats, PositionSizing, SignalQuality, StrategyPerformance
from learning.services import store_trade_outcome
from learning.services.aggregates import position_size
from tests.factories import TradeOutcomeFactory

pytestmark = pytest.mark.django_db

# Net returns of five trades in one context, in the order they are recorded.
RETURNS = [Decimal("0.02"), Decimal("-0.01"), Decimal("-0.015"), Decimal("0.03"), Decimal("-0.005")]
FEATURE_VALUES = [30.0, 60.0, 55.0, 25.0, 70.0]


@pytest.fixture
def five_trades():
    outcomes = []
    for index, (pnl_pct, rsi) in enumerate(zip(RETURNS, FEATURE_VALUES)):
        outcome = TradeOutcomeFactory(
            strategy_type="trend_following",
            system_type="paper_trading",
            confidence_score=0.62 + index * 0.01,
            market_regime="trending_up",
            volatility_regime="medium",
            features={"rsi_14": rsi},
            duration_minutes=60 * (index + 1),
        )
        outcome = dataclasses.replace(outcome, pnl_pct=pnl_pct, net_pnl=pnl_pct * 1000, success=None)
        store_trade_outcome(outcome=outcome)
        outcomes.append(outcome)
    return outcomes


def test_strategy_performance(five_trades):
    row = StrategyPerformance.objects.get()
    returns = np.array([float(r) for r in RETURNS])
    assert (row.confidence_range, row.total_trades, row.winning_trades, row.losing_trades) == ("0.6-0.7", 5, 2, 3)
    assert row.win_rate == pytest.approx(0.4)
    assert row.avg_pnl_pct == pytest.approx(returns.mean())
    assert row.total_pnl == Decimal("20")  # 1000 × (0.02 − 0.01 − 0.015 + 0.03 − 0.005)
    assert row.avg_duration_minutes == pytest.approx(180)
    assert row.sharpe_ratio == pytest.approx(returns.mean() / returns.std(ddof=1))
    equity = np.cumsum(returns)
    assert row.max_drawdown_pct == pytest.approx(np.max(np.maximum.accumulate(np.maximum(equity, 0)) - equity))
    assert row.max_drawdown_pct == pytest.approx(0.025)  # from +0.02 down to −0.005


def test_signal_quality(five_trades):
    row = SignalQuality.objects.get()
    assert (row.signal_type, row.confidence_bucket, row.sample_size, row.successes) == ("trend_following", "0.6-0.7", 5, 2)
    assert row.predicted_success_rate == pytest.approx(np.mean([0.62, 0.63, 0.64, 0.65, 0.66]))
    assert row.actual_success_rate == pytest.approx(0.4)
    assert row.calibration_score == pytest.approx(1 - abs(0.4 - 0.64))
    assert row.market_conditions == {
        "market_regime": {"trending_up": {"trades": 5, "wins": 2}},
        "volatility_regime": {"medium": {"trades": 5, "wins": 2}},
    }


def test_market_regime_best_strategy_is_shrunk(settings, five_trades):
    settings.LEARNING_PRIOR_STRENGTH = 10
    # One lucky win for another strategy must not beat a long record.
    lucky = TradeOutcomeFactory(
        strategy_type="breakout", market_regime="trending_up", volatility_regime="medium", side="long", move_pct=Decimal("0.03")
    )
    store_trade_outcome(outcome=lucky)
    row = MarketRegimeStats.objects.get()
    assert row.total_trades_in_regime == 6
    assert row.regime_characteristics["strategies"]["breakout"] == {"trades": 1, "wins": 1, "sum_pnl_pct": pytest.approx(float(lucky.pnl_pct))}
    regime_rate = 3 / 6
    breakout = (1 + 10 * regime_rate) / (1 + 10)
    trend = (2 + 10 * regime_rate) / (5 + 10)
    assert row.best_strategy == ("breakout" if breakout > trend else "trend_following")
    assert row.best_strategy_win_rate == pytest.approx(max(breakout, trend))
    assert row.avg_trade_duration_minutes == pytest.approx((60 + 120 + 180 + 240 + 300 + 420) / 6)


def test_position_sizing_is_capped_fractional_kelly(settings, five_trades):
    settings.LEARNING_PRIOR_STRENGTH = 20
    row = PositionSizing.objects.get()
    assert (row.sample_size, row.wins) == (5, 2)
    win_rate = (2 + 20 * 0.65) / (5 + 20)
    observed_payoff = (0.05 / 2) / (0.03 / 3)
    payoff = (observed_payoff * 2 + 1.0 * 20) / (2 + 20)
    kelly = win_rate - (1 - win_rate) / payoff
    expected = min(max(settings.LEARNING_KELLY_FRACTION * kelly, settings.LEARNING_MIN_POSITION_SIZE), settings.LEARNING_MAX_POSITION_SIZE)
    assert row.optimal_position_size_pct == pytest.approx(expected)
    returns = np.array([float(r) for r in RETURNS])
    assert row.risk_adjusted_return == pytest.approx(returns.mean() / returns.std(ddof=1))


def test_position_size_is_zero_without_edge_and_bounded_with_it(settings):
    assert position_size(win_rate=0.3, payoff_ratio=1.0) == 0.0
    assert position_size(win_rate=0.99, payoff_ratio=10.0) == settings.LEARNING_MAX_POSITION_SIZE
    assert position_size(win_rate=0.5001, payoff_ratio=1.0) == settings.LEARNING_MIN_POSITION_SIZE


def test_feature_importance_is_the_correlation_with_success(settings, five_trades):
    settings.LEARNING_PRIOR_STRENGTH = 20
    row = FeatureImportance.objects.get(feature_name="rsi_14")
    success = np.array([float(r) > 0 for r in RETURNS], dtype=float)
    expected = np.corrcoef(FEATURE_VALUES, success)[0, 1]
    assert row.sample_size == 5
    assert row.correlation_with_success == pytest.approx(expected)
    assert row.correlation_with_success < -0.9  # low RSI went with the wins here
    assert row.importance_score == pytest.approx(abs(expected) * 5 / 25)


def test_sharpe_is_undefined_for_a_single_trade():
    store_trade_outcome(outcome=TradeOutcomeFactory())
    assert StrategyPerformance.objects.get().sharpe_ratio is None
    assert math.isclose(FeatureImportance.objects.first().correlation_with_success, 0.0)
