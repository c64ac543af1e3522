"""Market and volatility regimes, classified causally from trend strength, slope and ATR% rank.

The thresholds are conventional values fixed here, not tuned to any data set:
- market: a trend needs ADX ≥ 25 (Wilder's threshold for a trending market); its direction is
  the sign of the 50-candle SMA's change over the last 10 candles. Otherwise the market ranges.
- volatility: today's ATR as a fraction of price, ranked among the last 720 candles (30 days of
  hourly candles) including itself; the lowest third is low, the highest third high.
"""
import numpy as np
import pandas as pd
import talib

from learning.models import MarketRegime, VolatilityRegime

ADX_PERIOD = 14
ADX_TREND_THRESHOLD = 25.0
TREND_MA_PERIOD = 50
TREND_SLOPE_CANDLES = 10
VOLATILITY_RANK_WINDOW = 720
# Rank only once a third of the window is there; before that the regime is unknown.
VOLATILITY_RANK_MIN_CANDLES = 240
LOW_VOLATILITY_BELOW = 1 / 3
HIGH_VOLATILITY_ABOVE = 2 / 3


def market_regime(*, adx: pd.Series, close: pd.Series) -> pd.Series:
    """trending_up / trending_down / ranging per row (unknown while ADX or the slope is undefined)."""
    trend_ma = pd.Series(talib.SMA(close.to_numpy(dtype="float64"), timeperiod=TREND_MA_PERIOD), index=close.index)
    slope = trend_ma - trend_ma.shift(TREND_SLOPE_CANDLES)
    trending = adx >= ADX_TREND_THRESHOLD
    regime = np.select(
        [adx.isna() | slope.isna(), trending & (slope > 0), trending & (slope < 0)],
        [MarketRegime.UNKNOWN.value, MarketRegime.TRENDING_UP.value, MarketRegime.TRENDING_DOWN.value],
        default=MarketRegime.RANGING.value,
    )
    return pd.Series(regime, index=close.index, name="market_regime")


def volatility_regime(*, atr_pct: pd.Series) -> pd.Series:
    """low / medium / high per row by ATR% percentile in its trailing window (unknown before it fills)."""
    rank = atr_pct.rolling(VOLATILITY_RANK_WINDOW, min_periods=VOLATILITY_RANK_MIN_CANDLES).rank(pct=True)
    regime = np.select(
        [rank.isna(), rank < LOW_VOLATILITY_BELOW, rank > HIGH_VOLATILITY_ABOVE],
        [VolatilityRegime.UNKNOWN.value, VolatilityRegime.LOW.value, VolatilityRegime.HIGH.value],
        default=VolatilityRegime.MEDIUM.value,
    )
    return pd.Series(regime, index=atr_pct.index, name="volatility_regime")
