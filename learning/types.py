"""The learning service's typed inputs and outputs (the seed's TradeOutcome and SignalRecommendation)."""
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, kw_only=True)
class TradeOutcome:
    """A closed trade, as an engine (or an API client) reports it to the learning store.

    `success` and `duration_minutes` may be left out: they follow from net_pnl and the times.
    """

    trade_id: str
    symbol: str
    strategy_type: str
    system_type: str
    side: str
    confidence_score: float
    entry_price: Decimal
    exit_price: Decimal
    pnl_pct: Decimal
    net_pnl: Decimal
    fees: Decimal
    market_regime: str
    volatility_regime: str
    exit_reason: str
    entry_time: datetime
    exit_time: datetime
    ml_score: float | None = None
    success: bool | None = None
    duration_minutes: int | None = None
    features: dict[str, float] = field(default_factory=dict)
    model_versions: dict[str, str] = field(default_factory=dict)
    is_shadow: bool = False
    fill_source: str = "paper"  # "exchange" when prices and fees are an exchange's reported fills


@dataclass(frozen=True, kw_only=True)
class StoreResult:
    stored: int
    duplicates: tuple[str, ...] = ()

    @property
    def duplicate(self) -> bool:
        return self.stored == 0 and bool(self.duplicates)


@dataclass(frozen=True, kw_only=True)
class SignalContext:
    """What an engine knows about a signal when it asks whether to take it."""

    strategy_type: str
    system_type: str
    confidence_score: float
    market_regime: str
    volatility_regime: str
    symbol: str = ""
    # A model's probability of a net profit that has earned its say: when given, it is the win rate.
    ml_score: float | None = None
    # The trade's planned exits, as fractions of entry price, net of fees: the payoff prior.
    take_profit_pct: float | None = None
    stop_loss_pct: float | None = None


@dataclass(frozen=True, kw_only=True)
class SignalRecommendation:
    should_take_trade: bool
    confidence_adjustment: float
    calibrated_confidence: float
    recommended_position_size: float
    expected_win_rate: float
    expected_pnl_pct: float
    sample_size: int
    transfer_sample_size: float
    reasoning: str
