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
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cached_property

import numpy as np
import pandas as pd
from django.conf import settings

from learning.ml.schema import current_feature_schema
from learning.types import SignalContext
from trading import execution
from trading.books import Books, DatabaseBooks
from trading.features.builder import build_features
from trading.features.context import context_frame, plan_features, signed_features
from trading.features.indicators import TECHNICAL_FEATURES
from trading.marketdata.naming import timeframe_ms
from trading.models import PaperAccount, PaperTrade, SignalDecision
from trading.services.trades import TradeNotOpen, TradeOpenRequest, trade_quiet_range
from trading.signals import STRATEGY_TYPE, combined_confidence, technical_scores, technical_signal

logger = logging.getLogger(__name__)


def _decimal(value: float | None) -> Decimal | None:
    # repr gives the shortest string that round-trips, so a price read as 36787.42 stays exactly that.
    return None if value is None else Decimal(repr(value))


def _decimal_price(column: int) -> cached_property:
    """A Bar's price in `column` of its prices, as a Decimal converted when first read."""
    return cached_property(lambda bar: _decimal(bar.prices[column]))


class Bar:
    """One closed candle as the engine sees it, with the features computed up to its close.

    A view of one row of its BarSource. The Decimal prices, the feature dicts and the technical
    scores are read from the source when first asked for: most candles only need the floats of
    `prices` (to see that no trade is near an exit) and `ready`, so they cost next to nothing.
    """

    def __init__(self, source: "BarSource", row: int):
        self._source, self._row = source, row
        self.symbol, self.timeframe = source.symbol, source.timeframe
        self.open_time: datetime = source.moments[row]
        self.prices: tuple[float, float, float, float] = source.prices[row]  # open, high, low, close
        self.ready: bool = source.ready[row]  # enough history for features; never trade a candle that is not
        self.market_regime: str = source.market_regimes[row]
        self.volatility_regime: str = source.volatility_regimes[row]

    open = _decimal_price(0)
    high = _decimal_price(1)
    low = _decimal_price(2)
    close = _decimal_price(3)

    @cached_property
    def features(self) -> dict[str, float] | None:
        """The technical features (and the optional context groups switched on) by name; None while there is too little history."""
        return self._source.features(self._row)

    @cached_property
    def previous_features(self) -> dict[str, float] | None:
        return self._source.features(self._row - 1)

    @property
    def technical_score(self) -> float | None:
        """signals.technical_scores of this candle; None while there is too little history."""
        return self._source.technical_score(self._row)

    @property
    def previous_technical_score(self) -> float | None:
        return self._source.technical_score(self._row - 1)


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


@dataclass(slots=True)
class TickResult:
    opened: int = 0
    closed: int = 0  # real trades closed
    outcomes: int = 0  # outcomes handed to learning: real and shadow closes
    decided: int = 0


class BarSource:
    """The bars of one symbol's candle history, features computed once over the whole frame (causally).

    With schema v2's optional groups switched on (settings FEATURES_HIGHER_TIMEFRAMES and
    FEATURES_CORRELATED_SYMBOLS), each bar's features also hold them; `correlated` gives the
    candles of the correlated symbols, over the same time span as `frame` at least.
    """

    def __init__(self, *, symbol: str, timeframe: str, frame: pd.DataFrame, correlated: Mapping[str, pd.DataFrame] | None = None):
        features = build_features(frame)
        wanted = settings.FEATURES_CORRELATED_SYMBOLS
        missing = [name for name in wanted if name not in (correlated or {})]
        if missing:
            raise ValueError(f"FEATURES_CORRELATED_SYMBOLS names {', '.join(missing)}, but no candles of it were given for {symbol}")
        context = context_frame(
            frame, timeframe=timeframe, higher_timeframes=tuple(settings.FEATURES_HIGHER_TIMEFRAMES),
            correlated={name: correlated[name] for name in wanted},
        )  # fmt: skip
        self.feature_names: tuple[str, ...] = TECHNICAL_FEATURES + tuple(context.columns)
        self.symbol, self.timeframe = symbol, timeframe
        self.times = frame.index
        # Per row, as plain Python values: a bar reads one of each, and a list hands them out fastest.
        self.moments: list[datetime] = list(frame.index.to_pydatetime())  # the open times, as datetimes
        self.prices: list[tuple[float, float, float, float]] = list(zip(*frame[["open", "high", "low", "close"]].to_numpy().T.tolist()))
        # A row is ready once every feature, the optional groups' too, is known.
        self.ready: list[bool] = (features["ready"].to_numpy() & context.notna().all(axis=1).to_numpy()).tolist()
        self.market_regimes: list[str] = features["market_regime"].tolist()
        self.volatility_regimes: list[str] = features["volatility_regime"].tolist()
        # The same prices and times as arrays, for searches over many rows at once (`first_outside`).
        self.time_ns: np.ndarray = frame.index.tz_convert("UTC").as_unit("ns").asi8
        self.lows, self.highs = (np.array([prices[column] for prices in self.prices], dtype=np.float64) for column in (2, 1))
        self._matrix = np.hstack([features[list(TECHNICAL_FEATURES)].to_numpy(), context.to_numpy(dtype=np.float64)])

    def __len__(self) -> int:
        return len(self.moments)

    def bar(self, row: int) -> Bar:
        return Bar(self, row)

    def row_at(self, moment: datetime) -> int:
        """The first row opening at or after `moment` (len(self) if none)."""
        return int(np.searchsorted(self.time_ns, _nanoseconds(moment)))

    def first_outside(self, *, low_above: float, high_below: float, start: int, stop: int) -> int:
        """The first row in [start, stop) whose low is at or below `low_above` or whose high is at or above `high_below`; `stop` if none.

        Looks in windows that grow fourfold, so a trade that exits soon costs a few dozen rows, not the rest of the history.
        """
        size = 32
        while start < stop:
            end = min(start + size, stop)
            hits = np.flatnonzero((self.lows[start:end] <= low_above) | (self.highs[start:end] >= high_below))
            if len(hits):
                return start + int(hits[0])
            start, size = end, size * 4
        return stop

    def signal_rows(self) -> np.ndarray:
        """The rows on which `technical_signal` fires, found over the whole history at once (its rule on the score columns)."""
        scores = np.asarray(self._scores, dtype=np.float64)  # NaN where not ready, so every comparison below is False there
        threshold = settings.TRADING_SIGNAL_THRESHOLD
        beyond = np.abs(scores) >= threshold
        previous = np.concatenate(([np.nan], scores[:-1]))
        # As technical_signal: not while the score stays beyond the threshold on the same side as the candle before.
        still = (np.abs(previous) >= threshold) & ((previous > 0) == (scores > 0))
        return np.flatnonzero(beyond & ~still)

    def features(self, row: int) -> dict[str, float] | None:
        """Row `row`'s technical features by name; None while there is too little history."""
        if row < 0 or not self.ready[row]:
            return None
        return dict(zip(self.feature_names, self._matrix[row].tolist()))

    def technical_score(self, row: int) -> float | None:
        """Row `row`'s technical score; None while there is too little history."""
        if row < 0 or not self.ready[row]:
            return None
        return self._scores[row]

    @cached_property
    def _scores(self) -> list[float]:
        # Computed on first use, over the whole history: the paper strategy reads one per candle, others none.
        ready = np.flatnonzero(self.ready)
        scores = np.full(len(self.ready), np.nan)
        scores[ready] = technical_scores({name: self._matrix[ready, i] for i, name in enumerate(TECHNICAL_FEATURES)})
        return scores.tolist()


# How far the float bounds of a quiet range are moved inwards, relative to the price: a float
# carries a price to about 1e-16, so a candle this calls quiet is quiet by the Decimal rule too.
_QUIET_MARGIN = 1e-9


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _nanoseconds(moment: datetime) -> int:
    """A UTC-aware moment in ns since the epoch, in integers (pandas' Timestamp costs ~50 µs a call)."""
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


class _WatchedTrade:
    """An open trade and, in floats for a quick first look, the candles that leave it untouched (trade_quiet_range).

    Only a candle outside that range gets the exact Decimal exit check; it decides every exit.
    `wake`, once a replay has looked (`TradingEngine.next_row`), is the first row of its BarSource
    after the trade's last check that is not quiet: the candles before it need no visit.
    """

    __slots__ = ("trade", "low_above", "high_below", "until", "wake")

    def __init__(self, trade: PaperTrade, quiet: execution.QuietRange):
        self.trade = trade
        low, high = float(quiet.low_above), float(quiet.high_below)
        self.low_above = max(low * (1 - _QUIET_MARGIN), low * (1 + _QUIET_MARGIN))
        self.high_below = min(high * (1 - _QUIET_MARGIN), high * (1 + _QUIET_MARGIN))
        self.until = quiet.until
        self.wake: int | None = None

    def leaves_alone(self, bar: Bar) -> bool:
        _, high, low, _ = bar.prices
        return low > self.low_above and high < self.high_below and (self.until is None or bar.open_time < self.until)


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

    def keep_books(self, books: Books) -> None:
        """Keep the account's books in `books` from now on (a replay keeps them in memory), reading its state there."""
        self.books = books
        self._open: dict[str, list[_WatchedTrade]] = defaultdict(list)
        for trade in books.open_trades():
            self._open[trade.symbol].append(self._watch(trade))
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
        signal = technical_signal(bar.technical_score, bar.previous_technical_score)
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

    # -- where a replay need look --------------------------------------------------------------
    def busy_rows(self, source: BarSource, rows: range) -> np.ndarray:
        """The rows of `source` in `rows` (sorted) on which `on_candle_close` may do more than fill and exit: where `propose` may propose.

        Found over the whole history at once, before a replay; a replay visits these rows, the
        fills and the exits (`next_row`) and skips the candles between, on which
        `on_candle_close` would do nothing. An engine whose `propose` is its own gets every
        ready row unless it says better: always right, if slower.
        """
        candidates = source.signal_rows() if type(self).propose is TradingEngine.propose else np.flatnonzero(source.ready)
        return candidates[(candidates >= rows.start) & (candidates < rows.stop)]

    def next_row(self, source: BarSource, row: int) -> int:
        """After `on_candle_close` on row `row` of `source`: the next row on which it will fill or may exit (len(source): none).

        A pending decision fills on the next row; an open trade needs a look on the first row
        that leaves its quiet range (by the same float bounds `_manage_exits` reads), or reaches its time exit.
        """
        if self._pending[source.symbol]:
            return row + 1
        wake = len(source)
        for watched in self._open[source.symbol]:
            if watched.wake is None or watched.wake <= row:
                start = max(row + 1, source.row_at(watched.trade.entry_time))
                # Its time exit is due on the first row opening at or after `until`, however quiet the prices.
                stop = len(source) if watched.until is None else max(start, source.row_at(watched.until))
                watched.wake = source.first_outside(low_above=watched.low_above, high_below=watched.high_below, start=start, stop=stop)
            wake = min(wake, watched.wake)
        return wake

    # -- the loop ----------------------------------------------------------------------------
    def on_candle_close(self, bar: Bar) -> TickResult:
        result = TickResult()
        result.opened = self._fill_pending(bar)
        result.closed, result.outcomes = self._manage_exits(bar)
        result.decided = self._decide(bar)
        return result

    def open_trades(self, symbol: str) -> list[PaperTrade]:
        return [watched.trade for watched in self._open[symbol]]

    def _watch(self, trade: PaperTrade) -> _WatchedTrade:
        return _WatchedTrade(trade, trade_quiet_range(trade=trade, account=self.account))

    def _fill_pending(self, bar: Bar) -> int:
        decisions = self._pending[bar.symbol]
        if not decisions:
            return 0
        self._pending[bar.symbol] = []
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
                self._open[bar.symbol].append(self._watch(trade))
                opened += not trade.is_shadow
        return opened

    def _open_trade(self, decision: SignalDecision, bar: Bar, *, shadow: bool) -> PaperTrade | None:
        plan = decision.recommendation["plan"]
        sign = 1 if decision.side == "long" else -1
        entry = bar.open
        request = TradeOpenRequest(
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
        result = self.books.open_trade(request)
        if result.trade is None:
            self.books.set_reason(decision, f"{'shadow ' if shadow else ''}not opened: {result.detail}")
        return result.trade

    def _manage_exits(self, bar: Bar) -> tuple[int, int]:
        watching = self._open[bar.symbol]
        if not watching:
            return 0, 0
        still_open, closed, outcomes = [], 0, 0
        for watched in watching:
            trade = watched.trade
            if trade.entry_time > bar.open_time or watched.leaves_alone(bar):
                still_open.append(watched)
                continue
            try:
                exited = self.books.manage_exit(trade, bar)
            except TradeNotOpen:
                logger.info("%s was closed elsewhere (manual close?); dropping it", trade)
                continue
            if exited is None:
                still_open.append(self._watch(trade))  # the candle may have moved its best price, and so its stop
                continue
            closed += not trade.is_shadow
            outcomes += 1
        self._open[bar.symbol] = still_open
        return closed, outcomes

    def _decide(self, bar: Bar) -> int:
        if not bar.ready:
            logger.debug("%s %s: too little history for features; nothing decided", bar.symbol, bar.open_time)
            return 0
        if self.account.is_paused:
            return 0
        proposal = self.propose(bar)
        if proposal is None:
            return 0

        side = 1.0 if proposal.side == "long" else -1.0
        fee = float(self.account.fee_rate)
        # Schema v2: what is known at this decision beyond the candle. The plan is the proposal's;
        # the recent record counts the outcomes that exited before this candle.
        features = {
            **bar.features,
            "side": side,
            "signal_strength": proposal.strength,
            "is_profit_scraping": 1.0 if self.system_type == "profit_scraping" else 0.0,
            **dict(proposal.extra_features),
            **self.books.recent_record(system_type=self.system_type, symbol=bar.symbol, at=bar.open_time),
            **plan_features(
                stop_distance_pct=proposal.stop_distance_pct,
                target_distance_pct=proposal.target_distance_pct,
                max_holding_minutes=proposal.max_holding_minutes,
                atr_pct=bar.features["atr_pct"],
                fee_rate=fee,
            ),
            **signed_features(bar.features, side),
        }
        model_probability, model_versions, model_note = None, {}, None
        if self.use_model:
            prediction = self.books.predict({name: features[name] for name in current_feature_schema().names})
            if prediction.model_probabilities:
                model_probability = prediction.probability
                model_versions = {kind: version for kind, version in prediction.versions.items() if version}
        # The probability is always recorded (it is how the model's skill is measured), but it
        # decides only while that skill beats the running base rate (the honesty guard).
        deciding_probability = model_probability
        if model_probability is not None and settings.LEARNING_MODEL_GUARD:
            skill = self.books.model_skill(self.system_type)
            if skill.trusted:
                model_note = f"Model trusted: {skill.reason}; its probability {model_probability:.1%} is the win rate."
            else:
                deciding_probability = None
                model_note = f"Model has no say: {skill.reason}; deciding on the learned statistics alone."
        confidence = combined_confidence(proposal.confidence, deciding_probability)
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
                    ml_score=deciding_probability,
                    # Planned exits net of both fees: the payoff the learner starts from.
                    take_profit_pct=max(proposal.target_distance_pct - 2 * fee, 1e-6),
                    stop_loss_pct=proposal.stop_distance_pct + 2 * fee,
                )
            )
            taken, recommendation = advice.should_take_trade, asdict(advice)
            plan["size"] = advice.recommended_position_size
            if model_note:
                recommendation["reasoning"] = f"{model_note} {recommendation['reasoning']}"
            recommendation["model_trusted"] = deciding_probability is not None
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
