"""The profit scraping engine: small targets off rejected support and resistance, on the shared engine loop.

Opportunity rule at the close of candle t (`ScrapingParams`, from the SCRAPING_* settings), with ATR = the
candle's `atr_pct` × close and the levels in force at t (`scraping.levels`, candles ≤ t only):

- Long off a support level L below the close (short off a resistance above it, mirrored):
  the close is within `entry_band_atr` × ATR of L; the candle's low reached within
  `touch_atr` × ATR of L but pierced it by at most `max_pierce_atr` × ATR; its lower wick is at
  least `min_wick` of its range (the rejection); L's strength is at least `min_strength` and
  it was last tested within `recent`; and the market is not trending down, unless L's
  strength reaches `very_strong`. When several levels qualify the strongest wins.
- Stop: `stop_buffer_atr` × ATR beyond the lower of L and the wick. Target: `target_atr` × ATR,
  cut to stop `next_level_buffer_atr` × ATR short of the next level in the way; skipped when
  what is left after both fees and both slippages is below `min_net_target`. The stop moves to
  breakeven after `breakeven_fraction` of the target, trails at the initial stop distance, and
  the trade leaves after `max_holding_candles` candles.
- Strength (the `signal_strength` feature) = 0.6 × level strength + 0.4 × wick fraction; the raw
  confidence is 0.5 + TRADING_CONFIDENCE_SPAN × strength, as for the paper engine's signal.

Filling, exits, accounting, decisions, shadows and learning are `TradingEngine`'s.
"""
import logging
from collections import defaultdict
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Self

import numpy as np
import pandas as pd
from django.conf import settings

from learning.models import MarketRegime, SystemType
from scraping.levels import MICROSECOND, LevelHistory, LevelParams, LevelSet, nanoseconds, utc_moment
from scraping.services import price_levels_replace
from trading.engine import Bar, BarSource, Proposal, TickResult, TradingEngine
from trading.features.builder import build_features
from trading.marketdata.naming import timeframe_ms
from trading.models import PaperAccount
from trading.selectors import candles_frame

logger = logging.getLogger(__name__)

STRATEGY_TYPE = "level_scrape"


@dataclass(frozen=True, kw_only=True)
class ScrapingParams:
    """The opportunity rule's tuning (the module docstring names each); `from_settings` reads the configured one."""

    entry_band_atr: float
    touch_atr: float
    max_pierce_atr: float
    min_wick: float
    min_strength: float
    very_strong: float
    recent: timedelta
    stop_buffer_atr: float
    target_atr: float
    next_level_buffer_atr: float
    min_net_target: float
    breakeven_fraction: float
    max_holding_candles: int
    levels: LevelParams

    @classmethod
    def from_settings(cls) -> Self:
        """The SCRAPING_* settings (tradelearn/settings/base.py, .env.example)."""
        return cls(
            entry_band_atr=settings.SCRAPING_ENTRY_BAND_ATR,
            touch_atr=settings.SCRAPING_TOUCH_ATR,
            max_pierce_atr=settings.SCRAPING_MAX_PIERCE_ATR,
            min_wick=settings.SCRAPING_MIN_WICK,
            min_strength=settings.SCRAPING_MIN_STRENGTH,
            very_strong=settings.SCRAPING_VERY_STRONG,
            recent=timedelta(hours=settings.SCRAPING_RECENT_HOURS),
            stop_buffer_atr=settings.SCRAPING_STOP_BUFFER_ATR,
            target_atr=settings.SCRAPING_TARGET_ATR,
            next_level_buffer_atr=settings.SCRAPING_NEXT_LEVEL_BUFFER_ATR,
            min_net_target=settings.SCRAPING_MIN_NET_TARGET,
            breakeven_fraction=settings.SCRAPING_BREAKEVEN_FRACTION,
            max_holding_candles=settings.SCRAPING_MAX_HOLDING_CANDLES,
            levels=LevelParams.from_settings(),
        )


@dataclass(frozen=True, kw_only=True)
class Candles:
    """Closed candles as the opportunity rule reads them: parallel arrays, one entry per candle."""

    time: np.ndarray  # open times, int64 ns since the epoch (UTC)
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    atr: np.ndarray  # in price: atr_pct × close
    trending_up: np.ndarray
    trending_down: np.ndarray

    @classmethod
    def of_frame(cls, frame: pd.DataFrame) -> Self:
        """A whole candle history, its features built as `BarSource` builds its bars' (row t from rows ≤ t)."""
        features = build_features(frame)
        open_, high, low, close = (frame[name].to_numpy(dtype="float64") for name in ("open", "high", "low", "close"))
        regime = features["market_regime"].to_numpy()
        return cls(
            time=frame.index.tz_convert("UTC").as_unit("ns").asi8,
            open=open_,
            high=high,
            low=low,
            close=close,
            atr=features["atr_pct"].to_numpy(dtype="float64") * close,
            trending_up=regime == MarketRegime.TRENDING_UP,
            trending_down=regime == MarketRegime.TRENDING_DOWN,
        )

    @classmethod
    def of_bar(cls, bar: Bar) -> Self:
        """The one candle a live tick closes (its features must be ready)."""
        open_, high, low, close = bar.prices
        return cls(
            time=np.array([nanoseconds(bar.open_time)]),
            open=np.array([open_]),
            high=np.array([high]),
            low=np.array([low]),
            close=np.array([close]),
            atr=np.array([bar.features["atr_pct"] * close]),
            trending_up=np.array([bar.market_regime == MarketRegime.TRENDING_UP]),
            trending_down=np.array([bar.market_regime == MarketRegime.TRENDING_DOWN]),
        )

    def __len__(self) -> int:
        return len(self.time)

    def between(self, start: int, end: int) -> Self:
        """The candles opening in [start, end) (ns since the epoch)."""
        rows = slice(*np.searchsorted(self.time, (start, end)))
        return type(self)(**{item.name: getattr(self, item.name)[rows] for item in fields(self)})


@dataclass(frozen=True, kw_only=True)
class Opportunities:
    """Per candle of a run: the level the rule picked (−1: none), whether to go long off it, and the wick on that side."""

    level: list[int]
    long: list[bool]
    wick: list[float]


def find_opportunities(levels: LevelSet, candles: Candles, p: ScrapingParams) -> Opportunities:
    """Which level, if any, the opportunity rule (module docstring) picks at each of `candles` under `levels`.

    Candles down, levels across: a candle's row reads that candle and the levels only, so the
    candles a level set is in force for are evaluated at once, and a live candle alone is a run of one.
    """
    price, strength = levels.price, levels.strength
    open_, high, low, close, atr = (values[:, None] for values in (candles.open, candles.high, candles.low, candles.close, candles.atr))
    candle_range = high - low
    with np.errstate(divide="ignore", invalid="ignore"):  # a candle without range is ruled out below
        lower_wick = (np.minimum(open_, close) - low) / candle_range
        upper_wick = (high - np.maximum(open_, close)) / candle_range
    usable = (
        (atr > 0)
        & (candle_range > 0)
        & (strength >= p.min_strength)
        & (candles.time[:, None] - levels.last_test_time <= pd.Timedelta(p.recent).value)
    )
    long_ok = (
        usable
        & (price < close)
        & (close - price <= p.entry_band_atr * atr)
        & (low <= price + p.touch_atr * atr)
        & (low >= price - p.max_pierce_atr * atr)
        & (lower_wick >= p.min_wick)
        & (~candles.trending_down[:, None] | (strength >= p.very_strong))
    )
    short_ok = (
        usable
        & (price > close)
        & (price - close <= p.entry_band_atr * atr)
        & (high >= price - p.touch_atr * atr)
        & (high <= price + p.max_pierce_atr * atr)
        & (upper_wick >= p.min_wick)
        & (~candles.trending_up[:, None] | (strength >= p.very_strong))
    )
    qualified = long_ok | short_ok
    # The strongest wins, the first of equals: deterministic.
    chosen = np.argmax(np.where(qualified, strength, -np.inf), axis=1)
    rows = np.arange(len(candles))
    long = long_ok[rows, chosen]
    return Opportunities(
        level=np.where(qualified[rows, chosen], chosen, -1).tolist(),
        long=long.tolist(),
        wick=np.where(long, lower_wick[:, 0], upper_wick[:, 0]).tolist(),
    )


@dataclass(kw_only=True)
class _LevelSpan:
    """A level set and the candle open times [start, end) it is in force for, with what the rule found there."""

    start: datetime
    end: datetime
    levels: LevelSet | None
    rows: dict[datetime, int]  # open time → row of `candles`
    candles: Candles | None  # prepared: the span's candles; live: the bar alone, read once the rule needs it
    opportunities: Opportunities | None = None  # found when first asked for
    stored: bool = False  # handed to `_store_levels`

    @classmethod
    def of_bar(cls, bar: Bar, levels: LevelSet | None) -> Self:
        """Live: the levels at one bar, the rule to read the bar itself."""
        return cls(start=bar.open_time, end=bar.open_time + MICROSECOND, levels=levels, rows={bar.open_time: 0}, candles=None)


class ProfitScrapingEngine(TradingEngine):
    """Scrapes small profits at price levels; everything but `propose` is the shared loop."""

    system_type = SystemType.PROFIT_SCRAPING.value
    strategy_type = STRATEGY_TYPE

    def __init__(
        self, *, account: PaperAccount, use_learning: bool = True, use_model: bool = True, params: ScrapingParams | None = None
    ):
        super().__init__(account=account, use_learning=use_learning, use_model=use_model)
        self.params = params or ScrapingParams.from_settings()
        # Derived from candles only (a cache): a fresh engine rebuilds the same from the same candles.
        self._histories: dict[str, LevelHistory] = {}
        self._candles: dict[str, Candles] = {}
        self._spans: dict[str, _LevelSpan] = {}
        # Spans a replay's `busy_rows` found ahead, by the open time of the first candle it visits in each.
        self._found: dict[str, dict[datetime, _LevelSpan]] = {}
        self._stored: dict[str, pd.Timestamp] = {}
        self._unwritten: dict[tuple[str, str], list[LevelSet]] = defaultdict(list)

    def prepare(self, *, symbol: str, timeframe: str, frame: pd.DataFrame) -> None:
        """Levels and the rule's candles for a whole history: the rule then runs once per level set, not per candle."""
        self.prepare_levels(symbol=symbol, timeframe=timeframe, frame=frame)
        self._candles[symbol] = Candles.of_frame(frame)

    def prepare_levels(self, *, symbol: str, timeframe: str, frame: pd.DataFrame) -> None:
        """Only the levels' candles: what a live tick loads, its rule reading the bar it closes."""
        self._histories[symbol] = LevelHistory(frame, timeframe_ns=timeframe_ms(timeframe) * 1_000_000, params=self.params.levels)
        self._candles.pop(symbol, None)
        self._spans.pop(symbol, None)
        self._found.pop(symbol, None)

    def levels_at(self, bar: Bar) -> LevelSet | None:
        """The levels in force at `bar`, from its prepared frame or, live, from the stored candles."""
        return self._span(bar).levels

    def busy_rows(self, source: BarSource, rows: range) -> np.ndarray:
        """The first row in `rows` of each level span (its set is stored as that candle closes) and the rows the rule picks a level on.

        Each span's levels and opportunities are found here, in time order, and kept for the
        candles of the replay that read them; without `prepare`, every row.
        """
        candles = self._candles.get(source.symbol)
        if candles is None or not len(rows):
            return np.arange(rows.start, rows.stop)
        history = self._histories[source.symbol]
        boundaries = candles.time[rows.start : rows.stop] // history.period
        firsts = rows.start + np.flatnonzero(np.concatenate(([True], boundaries[1:] != boundaries[:-1])))
        found, busy = {}, [firsts]
        for first in firsts.tolist():
            bar = source.bar(first)
            span = found[bar.open_time] = self._new_span(bar)
            if span.levels is not None and len(span.levels):
                span.opportunities = find_opportunities(span.levels, span.candles, self.params)
                offset = first - span.rows[bar.open_time]  # the source row of the span's first candle
                busy.append(offset + np.flatnonzero(np.asarray(span.opportunities.level) >= 0))
        self._found[source.symbol] = found
        picked = np.unique(np.concatenate(busy))
        return picked[(picked >= rows.start) & (picked < rows.stop)]

    def _span(self, bar: Bar) -> _LevelSpan:
        span = self._spans.get(bar.symbol)
        if span is not None and span.start <= bar.open_time < span.end:
            return span
        span = self._found.get(bar.symbol, {}).pop(bar.open_time, None) or self._new_span(bar)
        self._spans[bar.symbol] = span
        return span

    def _new_span(self, bar: Bar) -> _LevelSpan:
        """The level span `bar` falls in: its levels, and its prepared candles (live: the bar alone)."""
        history = self._histories.get(bar.symbol)
        if history is None or not history.covers(bar.open_time):
            history = self._read_history(bar)
            if history is None:
                return _LevelSpan.of_bar(bar, None)
        candles = self._candles.get(bar.symbol)
        if candles is None:
            span = _LevelSpan.of_bar(bar, history.at(bar.open_time))
        else:
            # Every prepared candle the set is in force for: up to the next recompute, or the frame's end.
            start = history.boundary(bar.open_time)
            candles = candles.between(start, start + history.period)
            span = _LevelSpan(
                start=utc_moment(start),
                end=utc_moment(int(candles.time[-1])) + MICROSECOND,
                levels=history.at(bar.open_time),
                rows={utc_moment(time): row for row, time in enumerate(candles.time.tolist())},
                candles=candles,
            )
        return span

    def _read_history(self, bar: Bar) -> LevelHistory | None:
        """A live tick prepares nothing: read the window the levels need from the database."""
        levels = self.params.levels
        step = timedelta(milliseconds=timeframe_ms(bar.timeframe))
        frame = candles_frame(
            symbol=bar.symbol,
            timeframe=bar.timeframe,
            exchange=settings.TRADING_EXCHANGE,
            start=bar.open_time - levels.window - step * (levels.recompute_every + 1),
            end=bar.open_time,
        )
        if frame.empty:
            return None
        self.prepare_levels(symbol=bar.symbol, timeframe=bar.timeframe, frame=frame)
        return self._histories[bar.symbol]

    def on_candle_close(self, bar: Bar) -> TickResult:
        self._store_levels(bar)
        return super().on_candle_close(bar)

    def _store_levels(self, bar: Bar) -> None:
        """Write the level set once per recompute, as the candle that starts it closes."""
        span = self._span(bar)
        if span.stored:
            return
        span.stored, level_set = True, span.levels
        if level_set is None or self._stored.get(bar.symbol) == level_set.computed_at:
            return
        self._stored[bar.symbol] = level_set.computed_at
        waiting = bool(self._unwritten)
        self._unwritten[bar.symbol, bar.timeframe].append(level_set)
        if not waiting:
            # Live books write at once; a replay's when they write the rest, every set since then together.
            self.books.write_later(self._write_levels)

    def _write_levels(self) -> None:
        unwritten, self._unwritten = self._unwritten, defaultdict(list)
        for (symbol, timeframe), level_sets in unwritten.items():
            price_levels_replace(symbol=symbol, timeframe=timeframe, level_sets=level_sets)

    def propose(self, bar: Bar) -> Proposal | None:
        span = self._span(bar)
        if span.levels is None or not len(span.levels):
            return None
        if span.opportunities is None:
            if span.candles is None:
                span.candles = Candles.of_bar(bar)
            span.opportunities = find_opportunities(span.levels, span.candles, self.params)
        row = span.rows[bar.open_time]
        if span.opportunities.level[row] < 0:
            return None
        return self._proposal(span, row, bar.timeframe)

    def _proposal(self, span: _LevelSpan, row: int, timeframe: str) -> Proposal | None:
        """The trade off the level the rule picked at `row`: stop and target, unless costs leave too little."""
        p = self.params
        levels, found = span.levels, span.opportunities
        chosen, long = found.level[row], found.long[row]
        close, high, low, atr = (float(values[row]) for values in (span.candles.close, span.candles.high, span.candles.low, span.candles.atr))
        price, level = levels.price, float(levels.price[chosen])
        if long:
            stop_price = min(level, low) - p.stop_buffer_atr * atr
            ahead = price[price > close]
            room = float(ahead.min()) - close if len(ahead) else np.inf
        else:
            stop_price = max(level, high) + p.stop_buffer_atr * atr
            ahead = price[price < close]
            room = close - float(ahead.max()) if len(ahead) else np.inf
        target = min(p.target_atr * atr, room - p.next_level_buffer_atr * atr)
        target_pct = target / close
        round_trip_cost = 2 * float(self.account.fee_rate + self.account.slippage_rate)
        if target_pct - round_trip_cost < p.min_net_target:
            return None
        stop_pct = abs(close - stop_price) / close
        signal_strength = min(1.0, 0.6 * float(levels.strength[chosen]) + 0.4 * found.wick[row])
        return Proposal(
            side="long" if long else "short",
            strength=signal_strength,
            confidence=0.5 + settings.TRADING_CONFIDENCE_SPAN * signal_strength,
            stop_distance_pct=stop_pct,
            target_distance_pct=target_pct,
            trailing_stop_pct=stop_pct,
            breakeven_trigger_pct=p.breakeven_fraction * target_pct,
            max_holding_minutes=p.max_holding_candles * timeframe_ms(timeframe) // 60_000,
        )

