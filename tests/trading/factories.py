"""factory_boy factories for paper accounts, signal decisions, paper trades and trade_open's requests."""
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import factory
from factory.django import DjangoModelFactory

from trading.models import PaperAccount, PaperTrade, SignalDecision
from trading.services.trades import TradeOpenRequest

FEATURES = {"rsi_14": 58.2, "macd_hist": 0.0012, "atr_pct": 0.011}


class PaperAccountFactory(DjangoModelFactory):
    class Meta:
        model = PaperAccount

    name = factory.Sequence(lambda n: f"paper-{n}")
    system_type = "paper_trading"
    starting_balance = Decimal("10000")
    current_balance = factory.SelfAttribute("starting_balance")
    fee_rate = Decimal("0.0004")
    slippage_rate = Decimal("0.0002")


class SignalDecisionFactory(DjangoModelFactory):
    class Meta:
        model = SignalDecision

    account = factory.SubFactory(PaperAccountFactory)
    symbol = "BTCUSDT"
    timeframe = "1h"
    candle_time = factory.Sequence(lambda n: datetime(2022, 3, 1, tzinfo=UTC) + timedelta(hours=n))
    strategy_type = "trend_following"
    side = "long"
    features = factory.LazyFunction(lambda: dict(FEATURES))
    technical_score = 0.7
    model_probability = 0.6
    combined_confidence = 0.66
    market_regime = "trending_up"
    volatility_regime = "medium"
    taken = True


class TradeOpenRequestFactory(factory.Factory):
    """trade_open's request with the signal filled in; tests give the fill (fill_time, fill_price) and exits."""

    class Meta:
        model = TradeOpenRequest

    decision = None
    symbol = "BTCUSDT"
    timeframe = "1h"
    side = "long"
    strategy_type = "trend_following"
    size_fraction = Decimal("0.1")
    stop_loss_price = None
    take_profit_price = None
    signal_features = factory.LazyFunction(lambda: dict(FEATURES))
    signal_confidence = 0.66
    ml_score = 0.6
    market_regime = "trending_up"
    volatility_regime = "medium"
    model_versions = factory.LazyFunction(lambda: {"online": "v3", "batch": "v1"})


class PaperTradeFactory(DjangoModelFactory):
    """An open trade row as stored; for reads (API, admin). Trades that move money go through trade_open."""

    class Meta:
        model = PaperTrade

    account = factory.SubFactory(PaperAccountFactory)
    symbol = "BTCUSDT"
    timeframe = "1h"
    side = "long"
    strategy_type = "trend_following"
    entry_time = factory.Sequence(lambda n: datetime(2022, 3, 1, tzinfo=UTC) + timedelta(hours=n))
    entry_price = Decimal("43000")
    quantity = Decimal("0.02")
    notional = factory.LazyAttribute(lambda o: o.entry_price * o.quantity)
    stop_loss_price = Decimal("42000")
    take_profit_price = Decimal("45000")
    max_holding_minutes = 48 * 60
    fees = factory.LazyAttribute(lambda o: (o.notional * Decimal("0.0004")).quantize(Decimal("1e-10")))
    signal_features = factory.LazyFunction(lambda: dict(FEATURES))
    signal_confidence = 0.66
    ml_score = 0.6
    market_regime = "trending_up"
    volatility_regime = "medium"
