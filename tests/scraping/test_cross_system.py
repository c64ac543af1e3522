"""Cross-system learning: one system's history moves the other's recommendations; the summary compares them."""
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from learning.selectors import get_learning_summary
from learning.services import get_signal_recommendation, store_trade_outcomes
from learning.types import SignalContext
from scraping.engine import STRATEGY_TYPE as SCRAPING_STRATEGY
from scraping.engine import ProfitScrapingEngine
from tests.factories import TradeOutcomeFactory
from tests.scraping.conftest import run_replay
from trading.engine import TradingEngine
from trading.signals import STRATEGY_TYPE as PAPER_STRATEGY

pytestmark = pytest.mark.django_db

STRATEGIES = {"paper_trading": PAPER_STRATEGY, "profit_scraping": SCRAPING_STRATEGY}


@pytest.fixture(autouse=True)
def transfer_on(settings):
    """Transfer is off by default (evaluate measured no help); these tests are of what it does when on."""
    settings.LEARNING_TRANSFER_WEIGHT = 0.5


DIRECTIONS = pytest.mark.parametrize(("source", "target"), [("paper_trading", "profit_scraping"), ("profit_scraping", "paper_trading")])


def ask(system_type: str, strategy_type: str):
    return get_signal_recommendation(
        context=SignalContext(
            strategy_type=strategy_type, system_type=system_type, confidence_score=0.62, market_regime="ranging",
            volatility_regime="medium", symbol="BTCUSDT", take_profit_pct=0.006, stop_loss_pct=0.006,
        )
    )  # fmt: skip


def store(system_type: str, strategy_type: str, *, n: int, win: bool) -> None:
    store_trade_outcomes(
        outcomes=TradeOutcomeFactory.build_batch(
            n, system_type=system_type, strategy_type=strategy_type, confidence_score=0.62, market_regime="ranging",
            volatility_regime="medium", side="long", move_pct=Decimal("0.012") if win else Decimal("-0.012"),
        )
    )  # fmt: skip


@DIRECTIONS
@pytest.mark.parametrize("win", [True, False])
def test_one_systems_history_moves_the_others_recommendation(source, target, win):
    strategy = STRATEGIES[target]
    before = ask(target, strategy)
    store(source, strategy, n=40, win=win)
    after = ask(target, strategy)
    assert after.sample_size == 0 and after.transfer_sample_size == pytest.approx(0.5 * 40)
    assert (after.expected_win_rate > before.expected_win_rate) if win else (after.expected_win_rate < before.expected_win_rate)
    if not win:
        # Enough of the other system's losses in this context turn a take into a skip.
        assert before.should_take_trade and not after.should_take_trade


@DIRECTIONS
def test_the_other_system_counts_for_less_as_own_history_grows(source, target):
    strategy = STRATEGIES[target]
    store(source, strategy, n=40, win=True)
    thin = ask(target, strategy)
    store(target, strategy, n=60, win=True)
    thick = ask(target, strategy)
    assert thick.sample_size == 60 and thick.transfer_sample_size < thin.transfer_sample_size / 3


@DIRECTIONS
def test_the_engines_own_strategies_learn_from_each_other(source, target):
    # The two engines trade different strategies; the other system's outcomes in the same
    # conditions still move the win rate, the decision and the size.
    before = ask(target, STRATEGIES[target])
    store(source, STRATEGIES[source], n=40, win=False)
    after = ask(target, STRATEGIES[target])
    assert after.transfer_sample_size == pytest.approx(0.5 * 40)
    assert after.expected_win_rate < before.expected_win_rate
    assert after.recommended_position_size < before.recommended_position_size


def test_the_learning_summary_compares_the_systems_once_both_have_traded(btc_frame, eth_frame):
    run_replay(
        {"BTCUSDT": btc_frame, "ETHUSDT": eth_frame}, engine_classes=(TradingEngine, ProfitScrapingEngine),
        start=datetime(2022, 6, 1, tzinfo=UTC), end=datetime(2022, 7, 15, 23, tzinfo=UTC),
    )  # fmt: skip
    summary = get_learning_summary()
    assert summary["systems"]["paper_trading"]["trades"] > 0 and summary["systems"]["profit_scraping"]["trades"] > 0
    cross = summary["cross_system"]
    assert cross["shared_regimes"] >= 3
    assert isinstance(cross["regime_win_rate_correlation"], float) and -1 <= cross["regime_win_rate_correlation"] <= 1
    for direction in ("paper_to_scraping", "scraping_to_paper"):
        assert isinstance(cross["transfer_effectiveness"][direction], float)
    assert isinstance(cross["win_rate_gap"], float)
