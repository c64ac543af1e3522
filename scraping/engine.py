"""The profit scraping engine: small targets off rejected support and resistance, on the shared engine loop.

Opportunity rule at the close of candle t (constants in `ScrapingParams`), with ATR = the
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
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pandas as pd
from django.conf import settings

from learning.models import MarketRegime, SystemType
from scraping.levels import LevelHistory, LevelParams, LevelSet
from scraping.services import price_levels_replace
from trading.engine import Bar, Proposal, TickResult, TradingEngine
from trading.marketdata.naming import timeframe_ms
from trading.models import PaperAccount
from trading.selectors import candles_frame

logger = logging.getLogger(__name__)

STRATEGY_TYPE = "level_scrape"


@dataclass(frozen=True, kw_only=True)
class ScrapingParams:
    entry_band_atr: float = 0.6
    touch_atr: float = 0.15
    max_pierce_atr: float = 1.0
    min_wick: float = 0.5
    min_strength: float = 0.65
    very_strong: float = 0.85
    recent: timedelta = timedelta(days=5)
    stop_buffer_atr: float = 0.6
    target_atr: float = 0.8
    next_level_buffer_atr: float = 0.1
    min_net_target: float = 0.0015
    breakeven_fraction: float = 0.8
    max_holding_candles: int = 12
    levels: LevelParams = field(default_factory=LevelParams)


class ProfitScrapingEngine(TradingEngine):
    """Scrapes small profits at price levels; everything but `propose` is the shared loop."""

    system_type = SystemType.PROFIT_SCRAPING.value
    strategy_type = STRATEGY_TYPE

    def __init__(
        self, *, account: PaperAccount, use_learning: bool = True, use_model: bool = True, params: ScrapingParams | None = None
    ):
        super().__init__(account=account, use_learning=use_learning, use_model=use_model)
        self.params = params or ScrapingParams()
        # Derived from candles only (a cache): a fresh engine rebuilds the same from the same candles.
        self._histories: dict[str, LevelHistory] = {}
        self._stored: dict[str, pd.Timestamp] = {}
        self._current: tuple[tuple | None, LevelSet | None] = (None, None)

    def prepare(self, *, symbol: str, timeframe: str, frame: pd.DataFrame) -> None:
        self._histories[symbol] = LevelHistory(frame, timeframe_ns=timeframe_ms(timeframe) * 1_000_000, params=self.params.levels)

    def levels_at(self, bar: Bar) -> LevelSet | None:
        """The levels in force at `bar`, from its prepared frame or, live, from the stored candles."""
        if self._current[0] == (bar.symbol, bar.open_time):
            return self._current[1]
        history = self._histories.get(bar.symbol)
        when = pd.Timestamp(bar.open_time)
        if history is None or not history.covers(when):
            # A live tick prepares nothing: read the window the levels need from the database.
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
            self.prepare(symbol=bar.symbol, timeframe=bar.timeframe, frame=frame)
            history = self._histories[bar.symbol]
        level_set = history.at(when)
        self._current = ((bar.symbol, bar.open_time), level_set)  # propose asks again for the same bar
        return level_set

    def on_candle_close(self, bar: Bar) -> TickResult:
        self._store_levels(bar)
        return super().on_candle_close(bar)

    def _store_levels(self, bar: Bar) -> None:
        """Write the level set once per recompute, as the candle that starts it closes."""
        level_set = self.levels_at(bar)
        if level_set is None or self._stored.get(bar.symbol) == level_set.computed_at:
            return
        self.books.write_later(price_levels_replace, symbol=bar.symbol, timeframe=bar.timeframe, level_set=level_set)
        self._stored[bar.symbol] = level_set.computed_at

    def propose(self, bar: Bar) -> Proposal | None:
        p = self.params
        levels = self.levels_at(bar)
        if levels is None or not len(levels):
            return None
        open_, high, low, close = float(bar.open), float(bar.high), float(bar.low), float(bar.close)
        atr = bar.features["atr_pct"] * close
        candle_range = high - low
        if not atr > 0 or not candle_range > 0:
            return None
        lower_wick = (min(open_, close) - low) / candle_range
        upper_wick = (high - max(open_, close)) / candle_range
        price, strength = levels.price, levels.strength
        usable = (strength >= p.min_strength) & (
            pd.Timestamp(bar.open_time).value - levels.last_test_time <= pd.Timedelta(p.recent).value
        )
        long_ok = (
            usable
            & (price < close)
            & (close - price <= p.entry_band_atr * atr)
            & (low <= price + p.touch_atr * atr)
            & (low >= price - p.max_pierce_atr * atr)
            & (lower_wick >= p.min_wick)
            & ((bar.market_regime != MarketRegime.TRENDING_DOWN) | (strength >= p.very_strong))
        )
        short_ok = (
            usable
            & (price > close)
            & (price - close <= p.entry_band_atr * atr)
            & (high >= price - p.touch_atr * atr)
            & (high <= price + p.max_pierce_atr * atr)
            & (upper_wick >= p.min_wick)
            & ((bar.market_regime != MarketRegime.TRENDING_UP) | (strength >= p.very_strong))
        )
        candidates = np.flatnonzero(long_ok | short_ok)
        if not len(candidates):
            return None
        chosen = candidates[np.argmax(strength[candidates])]  # the first of equals: deterministic
        long = bool(long_ok[chosen])
        level = float(price[chosen])

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
        wick = lower_wick if long else upper_wick
        signal_strength = min(1.0, 0.6 * float(strength[chosen]) + 0.4 * wick)
        return Proposal(
            side="long" if long else "short",
            strength=signal_strength,
            confidence=0.5 + settings.TRADING_CONFIDENCE_SPAN * signal_strength,
            stop_distance_pct=stop_pct,
            target_distance_pct=target_pct,
            trailing_stop_pct=stop_pct,
            breakeven_trigger_pct=p.breakeven_fraction * target_pct,
            max_holding_minutes=p.max_holding_candles * timeframe_ms(bar.timeframe) // 60_000,
        )


# The live tick and the replay command look engines up by name.
ENGINES = {"scraping": ProfitScrapingEngine}
