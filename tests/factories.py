"""factory_boy factories for the learning store's inputs."""
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import factory
from factory import fuzzy

from learning.types import SignalContext, TradeOutcome

FEE_RATE = Decimal("0.0004")


class TradeOutcomeFactory(factory.Factory):
    """A closed trade whose accounting adds up: net P&L = gross − fees on both sides."""

    class Meta:
        model = TradeOutcome

    class Params:
        notional = Decimal("1000")
        move_pct = fuzzy.FuzzyDecimal(-0.03, 0.03, precision=5)

    trade_id = factory.Sequence(lambda n: f"trade-{n:06d}")
    symbol = fuzzy.FuzzyChoice(["BTCUSDT", "ETHUSDT"])
    strategy_type = fuzzy.FuzzyChoice(["trend_following", "mean_reversion"])
    system_type = fuzzy.FuzzyChoice(["paper_trading", "profit_scraping"])
    side = fuzzy.FuzzyChoice(["long", "short"])
    confidence_score = fuzzy.FuzzyFloat(0.0, 1.0)
    ml_score = fuzzy.FuzzyFloat(0.0, 1.0)
    entry_price = fuzzy.FuzzyDecimal(100, 60000, precision=2)
    exit_price = factory.LazyAttribute(lambda o: (o.entry_price * (1 + o.move_pct)).quantize(Decimal("0.01")))
    fees = factory.LazyAttribute(lambda o: (FEE_RATE * o.notional * (1 + o.exit_price / o.entry_price)).quantize(Decimal("1e-8")))
    net_pnl = factory.LazyAttribute(
        lambda o: ((1 if o.side == "long" else -1) * o.notional * (o.exit_price / o.entry_price - 1) - o.fees).quantize(Decimal("1e-8"))
    )
    pnl_pct = factory.LazyAttribute(lambda o: (o.net_pnl / o.notional).quantize(Decimal("1e-10")))
    market_regime = fuzzy.FuzzyChoice(["trending_up", "trending_down", "ranging"])
    volatility_regime = fuzzy.FuzzyChoice(["low", "medium", "high"])
    exit_reason = fuzzy.FuzzyChoice(["take_profit", "stop_loss", "time_exit"])
    entry_time = fuzzy.FuzzyDateTime(datetime(2022, 1, 1, tzinfo=UTC), datetime(2023, 12, 1, tzinfo=UTC))
    exit_time = factory.LazyAttribute(lambda o: o.entry_time + timedelta(minutes=60 * 7))
    features = factory.LazyFunction(lambda: {"rsi_14": float(fuzzy.FuzzyFloat(10, 90).fuzz()), "atr_pct": float(fuzzy.FuzzyFloat(0.002, 0.05).fuzz())})
    model_versions = factory.LazyFunction(dict)


class SignalContextFactory(factory.Factory):
    class Meta:
        model = SignalContext

    strategy_type = "trend_following"
    system_type = "paper_trading"
    confidence_score = 0.6
    market_regime = "trending_up"
    volatility_regime = "medium"
    take_profit_pct = 0.02
    stop_loss_pct = 0.01
