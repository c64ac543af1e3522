"""Feature rows for every candle of a history: the 27 technical features, regimes and readiness."""
import math

import pandas as pd

from learning.models import MarketRegime, VolatilityRegime
from trading.features.indicators import TECHNICAL_FEATURES, compute_indicators
from trading.features.regimes import market_regime, volatility_regime

# Candles of history before a row may be traded: SMA-200 needs 200, and by 300 the recursive
# indicators (EMA, MACD, Wilder's RSI/ATR/ADX) have forgotten their seed to about 1e-9.
WARMUP_CANDLES = 300
# Candles a live tick should load so its last row equals what a replay over all history computes
# (the volatility regime ranks ATR% over 720 candles; ATR itself needs 14 more).
HISTORY_CANDLES = 1000


def build_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Per candle: TECHNICAL_FEATURES in schema order, `market_regime`, `volatility_regime`, `ready`.

    `frame` is an OHLCV frame as `candles_frame` returns it. A row is `ready` once WARMUP_CANDLES
    candles precede it and all its features are finite; rows that are not ready must never be
    traded. Row t depends only on rows up to t.
    """
    features = compute_indicators(frame)
    features["market_regime"] = market_regime(adx=features["adx_14"], close=frame["close"].astype("float64"))
    features["volatility_regime"] = volatility_regime(atr_pct=features["atr_pct"])
    enough_history = pd.RangeIndex(len(features)) >= WARMUP_CANDLES
    regimes_known = (features["market_regime"] != MarketRegime.UNKNOWN) & (features["volatility_regime"] != VolatilityRegime.UNKNOWN)
    features["ready"] = enough_history & regimes_known.to_numpy() & features[list(TECHNICAL_FEATURES)].notna().all(axis=1).to_numpy()
    return features


def feature_dict(row: pd.Series) -> dict[str, float]:
    """One row's technical features as plain floats, as the learning store keeps them.

    Raises ValueError naming the features that are not finite (a row that is not ready).
    """
    values = {name: float(row[name]) for name in TECHNICAL_FEATURES}
    bad = [name for name, value in values.items() if not math.isfinite(value)]
    if bad:
        raise ValueError(f"features not finite (not enough history?): {', '.join(bad)}")
    return values
