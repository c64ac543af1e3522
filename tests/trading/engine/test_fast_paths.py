"""The engine's shortcuts on real candles give exactly what the plain path gives.

Bars convert prices and features only when read; the technical score is computed once per
history; the exit pre-filter skips the exact exit check on candles that cannot touch a trade.
"""
import math
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pytest

from learning.models import TrainingRecord
from learning.services.aggregates import AGGREGATE_MODELS
from operations import books as books_module
from operations.replay import replay
from scraping.engine import ProfitScrapingEngine
from trading.engine import BarSource, TradingEngine, _WatchedTrade
from trading.features.builder import build_features
from trading.features.indicators import TECHNICAL_FEATURES
from trading.models import PaperTrade, SignalDecision
from trading.services.accounts import account_create
from trading.signals import technical_scores

START, END = datetime(2022, 5, 1, tzinfo=UTC), datetime(2022, 8, 31, 23, tzinfo=UTC)


def one_candle_score(features: dict[str, float]) -> float:
    """The score as first written, for one candle in plain Python floats: the rule the columns must reproduce."""
    atr = max(features["atr_pct"], 1e-6)
    components = (
        (features["rsi_14"] - 50.0) / 50.0,
        math.tanh(features["macd_hist_pct"] / (0.1 * atr)),
        math.tanh(features["roc_12"] / (math.sqrt(12) * atr)),
        math.tanh(features["sma_50_dist"] / (5 * atr)),
    )
    return sum(components) / len(components)


@pytest.fixture(scope="module")
def sources(btc_frame, eth_frame) -> list[BarSource]:
    return [BarSource(symbol=symbol, timeframe="1h", frame=frame) for symbol, frame in (("BTCUSDT", btc_frame), ("ETHUSDT", eth_frame))]


def test_a_bar_reads_its_row_of_the_frame(btc_frame, sources):
    features = build_features(btc_frame)
    for row in (0, 299, 300, 301, 5000, len(btc_frame) - 1):
        bar, candle = sources[0].bar(row), btc_frame.iloc[row]
        assert bar.open_time == btc_frame.index[row].to_pydatetime()
        assert (bar.open, bar.high, bar.low, bar.close) == tuple(Decimal(repr(float(candle[name]))) for name in ("open", "high", "low", "close"))
        assert bar.prices == tuple(float(candle[name]) for name in ("open", "high", "low", "close"))
        assert (bar.market_regime, bar.volatility_regime) == (features["market_regime"].iloc[row], features["volatility_regime"].iloc[row])
        assert bar.ready == bool(features["ready"].iloc[row])
        expected = {name: float(features[name].iloc[row]) for name in TECHNICAL_FEATURES} if bar.ready else None
        assert bar.features == expected
        assert (bar.technical_score is None) == (expected is None)
        assert bar.previous_features == sources[0].bar(row - 1).features if row else bar.previous_features is None


def test_scores_over_a_whole_history_are_the_one_candle_rule_bit_for_bit(sources):
    for source in sources:
        ready = [row for row in range(len(source.ready)) if source.ready[row]]
        assert len(ready) > 10_000
        for row in ready:
            assert source.technical_score(row) == one_candle_score(source.features(row))
        # The live path asks for one candle: the same function on a history of one gives the same score.
        for row in ready[::97]:
            alone = technical_scores({name: np.array([value]) for name, value in source.features(row).items()})
            assert alone.tolist() == [source.technical_score(row)]


def books(account) -> tuple[list, list]:
    trade_rows = PaperTrade.objects.filter(account=account).order_by("entry_time", "symbol", "is_shadow").values_list(
        "symbol", "side", "is_shadow", "entry_time", "entry_price", "exit_time", "exit_price", "exit_reason",
        "best_price", "quantity", "fees", "net_pnl",
    )  # fmt: skip
    decision_rows = SignalDecision.objects.filter(account=account).order_by("candle_time", "symbol").values_list(
        "symbol", "candle_time", "side", "taken", "technical_score", "combined_confidence", "features", "reason"
    )
    return list(trade_rows), list(decision_rows)


@pytest.mark.django_db
@pytest.mark.parametrize("engine_class", [TradingEngine, ProfitScrapingEngine])
def test_the_exit_prefilter_changes_nothing_but_how_many_exact_checks_run(engine_class, btc_frame, eth_frame, monkeypatch):
    exact_checks = []
    exit_step = books_module.trade_exit_step
    monkeypatch.setattr(books_module, "trade_exit_step", lambda **kwargs: exact_checks.append(1) or exit_step(**kwargs))

    def run(name: str, *, every_candle: bool = False):
        account = account_create(name=name, system_type=engine_class.system_type, starting_balance=Decimal("10000"))
        replay(
            engines=[engine_class(account=account, use_learning=False)], frames={"BTCUSDT": btc_frame, "ETHUSDT": eth_frame},
            timeframe="1h", start=START, end=END, learning=False, progress=False, every_candle=every_candle,
        )  # fmt: skip
        return books(account)

    filtered = run("filtered")
    filtered_checks = len(exact_checks)
    # The second run starts from an empty learning store too: its features hold the recent record.
    TrainingRecord.objects.all().delete()
    for model in AGGREGATE_MODELS:
        model.objects.all().delete()
    monkeypatch.setattr(_WatchedTrade, "leaves_alone", lambda self, bar: False)
    exact_checks.clear()
    every_candle = run("every-candle", every_candle=True)

    assert filtered == every_candle
    trade_rows = filtered[0]
    assert len(trade_rows) > 50 and any(row[8] is not None for row in trade_rows) == (engine_class is ProfitScrapingEngine)
    assert 0 < filtered_checks < len(exact_checks)
    if engine_class is TradingEngine:  # fixed stops and targets: the exact check runs near them only
        assert filtered_checks < len(exact_checks) / 10
