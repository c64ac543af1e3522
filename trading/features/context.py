"""Schema v2's decision-time features beyond the candle: the trade's plan, side-signed indicators, and the optional context groups.

The plan and the side are known when a signal is judged; the optional groups (higher-timeframe
indicators of the same symbol, another symbol's indicators) come from candles closed by then:
a row t uses only candles that opened at or before t, and a higher-timeframe candle only once
the last hourly candle inside it has closed.
"""
from collections.abc import Mapping

import numpy as np
import pandas as pd

from learning.ml.schema import (
    CORRELATED_INDICATORS,
    HIGHER_TIMEFRAME_INDICATORS,
    PLAN_ATR_CAP,
    PLAN_FEES_CAP,
    PLAN_HOLDING_CAP_HOURS,
    PLAN_PAYOFF_CAP,
    SIGNED_SOURCES,
    correlated_features,
    higher_timeframe_features,
)
from trading.features.indicators import compute_indicators
from trading.marketdata.naming import timeframe_ms

# A round trip's fees below this are treated as this, so "distance in fees" stays finite on a fee-free account.
_MIN_ROUND_TRIP_FEE = 1e-6


def plan_features(
    *, stop_distance_pct: float, target_distance_pct: float, max_holding_minutes: int | None, atr_pct: float, fee_rate: float
) -> dict[str, float]:
    """The plan of a trade as features: exits in ATRs and in round-trip fees, payoff after fees, holding limit."""
    round_trip = max(2.0 * fee_rate, _MIN_ROUND_TRIP_FEE)
    atr = max(atr_pct, 1e-12)
    payoff = (target_distance_pct - 2.0 * fee_rate) / (stop_distance_pct + 2.0 * fee_rate) if stop_distance_pct + 2.0 * fee_rate > 0 else PLAN_PAYOFF_CAP
    holding = PLAN_HOLDING_CAP_HOURS if max_holding_minutes is None else min(max_holding_minutes / 60.0, PLAN_HOLDING_CAP_HOURS)
    return {
        "plan_stop_atr": min(stop_distance_pct / atr, PLAN_ATR_CAP),
        "plan_target_atr": min(target_distance_pct / atr, PLAN_ATR_CAP),
        "plan_stop_fees": min(stop_distance_pct / round_trip, PLAN_FEES_CAP),
        "plan_target_fees": min(target_distance_pct / round_trip, PLAN_FEES_CAP),
        "plan_payoff_after_fees": min(payoff, PLAN_PAYOFF_CAP),
        "plan_holding_hours": holding,
    }


def signed_features(features: Mapping[str, float], side: float) -> dict[str, float]:
    """Directional indicators times the side (+1 long, −1 short), centred on their neutral value."""
    return {name: side * (features[source] - centre) for name, (source, centre) in SIGNED_SOURCES.items()}


def higher_timeframe_frame(frame: pd.DataFrame, timeframe: str, *, base_timeframe: str = "1h") -> pd.DataFrame:
    """Per row of `frame` (candles of `base_timeframe`), the indicators of the latest closed `timeframe` candle.

    The higher-timeframe candles are resampled from `frame` (bins aligned to UTC midnight). Row t
    sees a bin once t's candle closes at or after the bin's end, so never a bin still forming.
    """
    names = higher_timeframe_features(timeframe)
    bin_length = pd.Timedelta(milliseconds=timeframe_ms(timeframe))
    base_length = pd.Timedelta(milliseconds=timeframe_ms(base_timeframe))
    if frame.empty:
        return pd.DataFrame(index=frame.index, columns=list(names), dtype="float64")
    ohlcv = frame[["open", "high", "low", "close", "volume"]].astype("float64")
    bins = ohlcv.resample(bin_length, origin="epoch", label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    bins = bins.dropna(subset=["close"])  # a bin without any candle (a gap) is no candle at all
    indicators = compute_indicators(bins)[list(HIGHER_TIMEFRAME_INDICATORS)]
    indicators.columns = list(names)
    # Known from the bin's end; a row is decided at its own candle's close.
    indicators.index = indicators.index + bin_length
    decided_at = frame.index + base_length
    positions = indicators.index.searchsorted(decided_at, side="right") - 1
    values = np.full((len(frame), len(names)), np.nan)
    known = positions >= 0
    values[known] = indicators.to_numpy()[positions[known]]
    return pd.DataFrame(values, index=frame.index, columns=list(names))


def correlated_frame(frame: pd.DataFrame, *, symbol: str, other: pd.DataFrame) -> pd.DataFrame:
    """Per row of `frame`, indicators of `symbol` (whose candles are `other`) at the same candle; NaN where it has none.

    Both symbols' candle t close together, so row t reads the other's row t and nothing later.
    """
    names = correlated_features(symbol)
    indicators = compute_indicators(other)[list(CORRELATED_INDICATORS)] if not other.empty else None
    if indicators is None:
        return pd.DataFrame(index=frame.index, columns=list(names), dtype="float64")
    aligned = indicators.reindex(frame.index)
    aligned.columns = list(names)
    return aligned


def context_frame(
    frame: pd.DataFrame, *, timeframe: str, higher_timeframes: tuple[str, ...], correlated: Mapping[str, pd.DataFrame]
) -> pd.DataFrame:
    """The optional groups switched on, for every row of `frame`: one column per feature (none when all are off)."""
    parts = [higher_timeframe_frame(frame, higher, base_timeframe=timeframe) for higher in higher_timeframes]
    parts += [correlated_frame(frame, symbol=symbol, other=other) for symbol, other in correlated.items()]
    return pd.concat(parts, axis=1) if parts else pd.DataFrame(index=frame.index)
