"""The trading engine: one closed candle at a time, fill → exits → signal → decision, learning from every close.

On the close of candle t the engine (1) fills the decisions made on candle t−1 at t's open,
(2) manages the exits of open trades against t's high and low, (3) builds the signal from
t's closed features, asks the models and the learning service, and records a decision, to
be filled at the open of t+1. A skipped signal is still followed, as a shadow trade with the
same fill rules, so the learner keeps seeing what it declines.

The engine's view of open trades and pending decisions is loaded from its books when it is
created and kept in step by its own writes, so a fresh engine on any worker acts exactly like
one that ran all along. The same code runs in replay and live; only the clock differs, and
where the books are kept until written (trading.books: at once live, in bulk in a replay).
"""
import logging
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import pandas as pd
from django.conf import settings

from learning.types import SignalContext
from learning.ml.schema import FEATURE_SCHEMA
from trading import execution
from trading.books import DatabaseBooks
from trading.features.builder import build_features
from trading.features.indicators import TECHNICAL_FEATURES
from trading.marketdata.naming import timeframe_ms
from trading.models import PaperAccount, PaperTrade, SignalDecision
from trading.services.trades import TradeNotOpen
from trading.signals import STRATEGY_TYPE, combined_confidence, technical_signal

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Bar:
    """One closed candle as the engine sees it, with the features computed up to its close."""

    symbol: str
    timeframe: str
    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    features: dict[str, float] | None  # None while there is too little history
    previous_features: dict[str, float] | None
    market_regime: str
    volatility_regime: str


@dataclass(frozen=True, kw_only=True)
class Proposal:
    """A trade the strategy would like to make, before the models and learning have their say."""

    side: str
    strength: float
    confidence: float
    stop_distance_pct: float
    target_distance_pct: float
    trailing_stop_pct: float | None = None
    breakeven_trigger_pct: float | None = None
    max_holding_minutes: int | None = None
    extra_features: tuple[tuple[str, float], ...] = ()


@dataclass
class TickResult:
    opened: int = 0
    closed: int = 0  # real trades closed
    outcomes: int = 0  # outcomes handed to learning: real and shadow closes
    decided: int = 0


class BarSource:
    """The bars of one symbol's candle history, features computed once over the whole frame (causally)."""

    def __init__(self, *, symbol: str, timeframe: str, frame: pd.DataFrame):
        features = build_features(frame)
        self.symbol, self.timeframe = symbol, timeframe
        self.times = frame.index
        self.moments: list[datetime] = list(frame.index.to_pydatetime())  # the open times, as datetimes
        self._ready = features["ready"].to_numpy()
        self._matrix = features[list(TECHNICAL_FEATURES)].to_numpy()
        self._market = features["market_regime"].to_numpy()
        self._volatility = features["volatility_regime"].to_numpy()
        self._prices = frame[["open", "high", "low", "close"]].to_numpy()
        self._last: tuple[int, dict[str, float] | None] = (-2, None)

    def _features(self, row: int) -> dict[str, float] | None:
        if row < 0 or not self._ready[row]:
            return None
        if self._last[0] == row:  # bars are asked for in order: row's features were row+1's previous ones
            return self._last[1]
        return dict(zip(TECHNICAL_FEATURES, self._matrix[row].tolist()))

    def bar(self, row: int) -> Bar:
        # repr gives the shortest string that round-trips, so a price read as 36787.42 stays exactly that.
        open_, high, low, close = (Decimal(repr(value)) for value in self._prices[row].tolist())
        previous_features = self._features(row - 1)
        features = self._features(row)
        self._last = (row, features)
        return Bar(
            symbol=self.symbol,
            timeframe=self.timeframe,
            open_time=self.moments[row],
            open=open_,
            high=high,
            low=low,
            close=close,
            features=features,
            previous_features=previous_features,
            market_regime=self._market[row],
            volatility_regime=self._volatility[row],
        )


def _decimal(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(repr(value))


class TradingEngine:
    """The loop shared by both systems; a subclass supplies `propose` (its strategy)."""

    system_type = "paper_trading"
    strategy_type = STRATEGY_TYPE

    def __init__(self, *, account: PaperAccount, use_learning: bool = True, use_model: bool = True):
        if account.system_type != self.system_type:
            raise ValueError(f"{type(self).__name__} trades {self.system_type} accounts, not {account.system_type}.")
        self.account = account
        self.use_learning = use_learning
        self.use_model = use_model and use_learning
        self.keep_books(DatabaseBooks(account))

    def keep_books(self, books: DatabaseBooks) -> None:
        """Keep the account's books in `books` from now on (a replay keeps them in memory), reading its state there."""
        self.books = books
        self._open: dict[str, list[PaperTrade]] = defaultdict(list)
        for trade in books.open_trades():
            self._open[trade.symbol].append(trade)
        self._pending: dict[str, list[SignalDecision]] = defaultdict(list)
        for decision in books.pending_decisions():
            self._pending[decision.symbol].append(decision)

    # -- the strategy ------------------------------------------------------------------------
    def prepare(self, *, symbol: str, timeframe: str, frame: pd.DataFrame) -> None:
        """Take a symbol's whole candle frame before a run, to precompute what `propose` reads, vectorised.

        The replay calls it once per symbol; a live tick does not, so an engine must also work
        without it. The frame may reach past the candle being decided: whatever `propose` reads
        at candle t must come from rows up to t only. The paper strategy needs nothing beyond `Bar`.
        """

    def propose(self, bar: Bar) -> Proposal | None:
        signal = technical_signal(bar.features, bar.previous_features)
        if signal is None:
            return None
        atr_pct = bar.features["atr_pct"]
        return Proposal(
            side=signal.side,
            strength=signal.strength,
            confidence=signal.confidence,
            stop_distance_pct=settings.TRADING_STOP_ATR_MULTIPLE * atr_pct,
            target_distance_pct=settings.TRADING_TARGET_ATR_MULTIPLE * atr_pct,
        )

    # -- the loop ----------------------------------------------------------------------------
    def on_candle_close(self, bar: Bar) -> TickResult:
        result = TickResult()
        result.opened = self._fill_pending(bar)
        result.closed, result.outcomes = self._manage_exits(bar)
        result.decided = self._decide(bar)
        return result

    def open_trades(self, symbol: str) -> list[PaperTrade]:
        return list(self._open[symbol])

    def _fill_pending(self, bar: Bar) -> int:
        decisions, self._pending[bar.symbol] = self._pending[bar.symbol], []
        if not decisions:
            return 0
        previous_candle = bar.open_time - timedelta(milliseconds=timeframe_ms(bar.timeframe))
        opened = 0
        for decision in decisions:
            if decision.candle_time != previous_candle:
                # The candle after the decision never arrived (a gap): its moment has passed.
                self.books.set_reason(decision, f"expired: no {bar.timeframe} candle followed {decision.candle_time:%Y-%m-%d %H:%M}")
                continue
            trade = self._open_trade(decision, bar, shadow=not decision.taken)
            if trade is None and decision.taken:
                trade = self._open_trade(decision, bar, shadow=True)
            if trade is not None:
                self._open[bar.symbol].append(trade)
                opened += not trade.is_shadow
        return opened

    def _open_trade(self, decision: SignalDecision, bar: Bar, *, shadow: bool) -> PaperTrade | None:
        plan = decision.recommendation["plan"]
        sign = 1 if decision.side == "long" else -1
        entry = bar.open
        result = self.books.open_trade(
            decision=decision,
            symbol=bar.symbol,
            timeframe=bar.timeframe,
            side=decision.side,
            strategy_type=decision.strategy_type,
            fill_time=bar.open_time,
            fill_price=entry,
            size_fraction=Decimal(repr(plan["size"] if not shadow else settings.TRADING_BASELINE_POSITION_SIZE)),
            stop_loss_price=(entry * (1 - sign * Decimal(repr(plan["stop_distance_pct"])))).quantize(execution.PRICE_QUANTUM),
            take_profit_price=(entry * (1 + sign * Decimal(repr(plan["target_distance_pct"])))).quantize(execution.PRICE_QUANTUM),
            signal_features=decision.features,
            signal_confidence=decision.combined_confidence,
            market_regime=decision.market_regime,
            volatility_regime=decision.volatility_regime,
            ml_score=decision.model_probability,
            model_versions=decision.model_versions,
            trailing_stop_pct=_decimal(plan.get("trailing_stop_pct")),
            breakeven_trigger_pct=_decimal(plan.get("breakeven_trigger_pct")),
            max_holding_minutes=plan.get("max_holding_minutes"),
            is_shadow=shadow,
        )
        if result.trade is None:
            self.books.set_reason(decision, f"{'shadow ' if shadow else ''}not opened: {result.detail}")
        return result.trade

    def _manage_exits(self, bar: Bar) -> tuple[int, int]:
        still_open, closed, outcomes = [], 0, 0
        for trade in self._open[bar.symbol]:
            if trade.entry_time > bar.open_time:
                still_open.append(trade)
                continue
            try:
                exited = self.books.manage_exit(trade, bar)
            except TradeNotOpen:
                logger.info("%s was closed elsewhere (manual close?); dropping it", trade)
                continue
            if exited is None:
                still_open.append(trade)
                continue
            closed += not trade.is_shadow
            outcomes += 1
        self._open[bar.symbol] = still_open
        return closed, outcomes

    def _decide(self, bar: Bar) -> int:
        if bar.features is None:
            logger.debug("%s %s: too little history for features; nothing decided", bar.symbol, bar.open_time)
            return 0
        if self.account.is_paused:
            return 0
        proposal = self.propose(bar)
        if proposal is None:
            return 0

        features = {
            **bar.features,
            "side": 1.0 if proposal.side == "long" else -1.0,
            "signal_strength": proposal.strength,
            "is_profit_scraping": 1.0 if self.system_type == "profit_scraping" else 0.0,
            **dict(proposal.extra_features),
        }
        model_probability, model_versions = None, {}
        if self.use_model:
            prediction = self.books.predict({name: features[name] for name in FEATURE_SCHEMA.names})
            if prediction.model_probabilities:
                model_probability = prediction.probability
                model_versions = {kind: version for kind, version in prediction.versions.items() if version}
        confidence = combined_confidence(proposal.confidence, model_probability)
        fee = float(self.account.fee_rate)
        plan = {
            "stop_distance_pct": proposal.stop_distance_pct,
            "target_distance_pct": proposal.target_distance_pct,
            "trailing_stop_pct": proposal.trailing_stop_pct,
            "breakeven_trigger_pct": proposal.breakeven_trigger_pct,
            "max_holding_minutes": proposal.max_holding_minutes,
            "size": settings.TRADING_BASELINE_POSITION_SIZE,
        }
        if self.use_learning:
            advice = self.books.recommend(
                SignalContext(
                    strategy_type=self.strategy_type,
                    system_type=self.system_type,
                    confidence_score=confidence,
                    market_regime=bar.market_regime,
                    volatility_regime=bar.volatility_regime,
                    symbol=bar.symbol,
                    ml_score=model_probability,
                    # Planned exits net of both fees: the payoff the learner starts from.
                    take_profit_pct=max(proposal.target_distance_pct - 2 * fee, 1e-6),
                    stop_loss_pct=proposal.stop_distance_pct + 2 * fee,
                )
            )
            taken, recommendation = advice.should_take_trade, asdict(advice)
            plan["size"] = advice.recommended_position_size
        else:
            taken, recommendation = True, {"reasoning": "baseline: technical signals only, fixed size"}
        recommendation["plan"] = plan
        decision = SignalDecision(
            account=self.account,
            symbol=bar.symbol,
            timeframe=bar.timeframe,
            candle_time=bar.open_time,
            strategy_type=self.strategy_type,
            side=proposal.side,
            features=features,
            technical_score=proposal.confidence,
            model_probability=model_probability,
            combined_confidence=confidence,
            model_versions=model_versions,
            recommendation=recommendation,
            market_regime=bar.market_regime,
            volatility_regime=bar.volatility_regime,
            taken=taken,
        )
        self.books.record_decision(decision)
        self._pending[bar.symbol].append(decision)
        return 1
