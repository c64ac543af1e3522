"""Strategy insights and the learning summary, including the cross-system figures."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from learning.selectors import get_learning_summary, get_strategy_insights
from learning.services import store_trade_outcomes
from tests.factories import TradeOutcomeFactory

pytestmark = pytest.mark.django_db

REGIMES = [("trending_up", "low"), ("trending_down", "medium"), ("ranging", "high"), ("ranging", "low")]


def store(system: str, regime: tuple[str, str], n: int, wins: int, *, recent: bool = False):
    now = timezone.now()
    outcomes = []
    for index in range(n):
        extra = {"entry_time": now - timedelta(days=2), "exit_time": now - timedelta(days=1)} if recent else {}
        outcomes.append(
            TradeOutcomeFactory(
                system_type=system,
                strategy_type="trend_following",
                market_regime=regime[0],
                volatility_regime=regime[1],
                side="long",
                move_pct=Decimal("0.02") if index < wins else Decimal("-0.02"),
                **extra,
            )
        )
    store_trade_outcomes(outcomes=outcomes)


def test_strategy_insights_sum_up_the_cells():
    store("paper_trading", REGIMES[0], 30, 24)
    store("paper_trading", REGIMES[1], 20, 4, recent=True)
    insights = get_strategy_insights(strategy_type="trend_following", system_type="paper_trading")
    assert insights["overall"]["outcomes"] == 50 and insights["overall"]["wins"] == 28
    assert insights["overall"]["win_rate"] == pytest.approx(0.56)
    assert insights["best_market_conditions"] == "trending_up/low"
    assert {group["name"] for group in insights["by_market_conditions"]} == {"trending_up/low", "trending_down/medium"}
    assert insights["recent_30_days"]["trades"] == 20 and insights["recent_30_days"]["wins"] == 4
    assert get_strategy_insights(strategy_type="trend_following", system_type="profit_scraping")["overall"]["outcomes"] == 0


def test_strategy_insights_split_real_from_shadow_pnl():
    real = TradeOutcomeFactory.build_batch(6, strategy_type="trend_following", system_type="paper_trading", is_shadow=False)
    shadow = TradeOutcomeFactory.build_batch(9, strategy_type="trend_following", system_type="paper_trading", is_shadow=True)
    store_trade_outcomes(outcomes=real + shadow)
    insights = get_strategy_insights(strategy_type="trend_following")
    split = insights["real_and_shadow"]
    assert (split["outcomes"], split["trades"], split["shadow"]) == (15, 6, 9)
    assert split["net_pnl"] == sum(outcome.net_pnl for outcome in real)
    assert split["shadow_net_pnl"] == sum(outcome.net_pnl for outcome in shadow)
    # The learned statistics are of outcomes, real and shadow alike, and say so.
    assert insights["overall"]["outcomes"] == 15 and "trades" not in insights["overall"]


def test_summary_compares_the_two_systems():
    paper_wins = [24, 6, 15, 20]
    scraping_wins = [22, 9, 14, 18]
    for regime, paper, scraping in zip(REGIMES, paper_wins, scraping_wins):
        store("paper_trading", regime, 30, paper)
        store("profit_scraping", regime, 30, scraping)
    summary = get_learning_summary()
    assert summary["total_records"] == 240
    assert summary["systems"]["paper_trading"]["win_rate"] == pytest.approx(sum(paper_wins) / 120)
    cross = summary["cross_system"]
    assert cross["win_rate_gap"] == pytest.approx((sum(paper_wins) - sum(scraping_wins)) / 120)
    assert cross["shared_regimes"] == 4
    import numpy as np

    expected_corr = np.corrcoef(np.array(paper_wins) / 30, np.array(scraping_wins) / 30)[0, 1]
    assert cross["regime_win_rate_correlation"] == pytest.approx(expected_corr)
    # Paper's per-regime rates predict scraping's far better than scraping's overall rate does.
    assert cross["transfer_effectiveness"]["paper_to_scraping"] > 0.5
    assert summary["table_rows"]["ml_training_data"] == 240
    assert len(summary["best_strategy_by_regime"]) == 4


def test_summary_of_an_empty_store():
    summary = get_learning_summary()
    assert summary["total_records"] == 0
    assert summary["cross_system"]["regime_win_rate_correlation"] is None
    assert summary["calibration_gap"] is None
