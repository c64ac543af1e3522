"""Regimes follow their documented rules exactly and use only the past."""
import numpy as np
import pandas as pd
import talib

from trading.features import regimes
from trading.features.indicators import compute_indicators


def test_market_regime_follows_adx_and_the_moving_average_slope(btc):
    adx = pd.Series(talib.ADX(btc["high"].to_numpy(), btc["low"].to_numpy(), btc["close"].to_numpy(), 14), index=btc.index)
    regime = regimes.market_regime(adx=adx, close=btc["close"])
    slope = btc["close"].rolling(50).mean().diff(10)
    known = adx.notna() & slope.notna()
    trending = adx >= 25
    assert (regime[known & trending & (slope > 0)] == "trending_up").all()
    assert (regime[known & trending & (slope < 0)] == "trending_down").all()
    assert (regime[known & ~trending] == "ranging").all()
    assert (regime[~known] == "unknown").all()


def test_volatility_regime_is_the_trailing_atr_percentile(btc):
    atr_pct = compute_indicators(btc)["atr_pct"]
    regime = regimes.volatility_regime(atr_pct=atr_pct)
    for row in (400, 3000, 17519):
        window = atr_pct.iloc[max(0, row - 719) : row + 1].dropna()
        rank = (window < window.iloc[-1]).sum() + ((window == window.iloc[-1]).sum() + 1) / 2
        percentile = rank / len(window)
        expected = "low" if percentile < 1 / 3 else "high" if percentile > 2 / 3 else "medium"
        assert regime.iloc[row] == expected
    shares = regime[regime != "unknown"].value_counts(normalize=True)
    assert np.all(shares.between(0.2, 0.45))
