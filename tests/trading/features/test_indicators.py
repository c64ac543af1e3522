"""Indicator values cross-checked against independent pandas computations and by hand on real candles."""
import math

import numpy as np
import pandas as pd
import pytest
import talib

from trading.features.indicators import TECHNICAL_FEATURES, compute_indicators

WARM = 300  # compare where recursive indicators no longer depend on their seed


@pytest.fixture(scope="module")
def features(btc):
    return compute_indicators(btc)


def wilder(values: np.ndarray, period: int, first: int) -> np.ndarray:
    """Wilder's smoothing: the mean of the first `period` values from index `first`, then recursive."""
    out = np.full(len(values), np.nan)
    out[first + period - 1] = values[first : first + period].mean()
    for index in range(first + period, len(values)):
        out[index] = (out[index - 1] * (period - 1) + values[index]) / period
    return out


def test_rsi_matches_wilders_definition(btc, features):
    change = btc["close"].diff().to_numpy()
    gains, losses = np.clip(change, 0, None), np.clip(-change, 0, None)
    average_gain, average_loss = wilder(gains, 14, 1), wilder(losses, 14, 1)
    expected = 100 - 100 / (1 + average_gain / average_loss)
    np.testing.assert_allclose(features["rsi_14"].to_numpy()[14:], expected[14:], rtol=1e-9)


def test_atr_pct_matches_wilders_true_range(btc, features):
    previous_close = btc["close"].shift()
    true_range = pd.concat(
        [btc["high"] - btc["low"], (btc["high"] - previous_close).abs(), (btc["low"] - previous_close).abs()], axis=1
    ).max(axis=1, skipna=False)
    expected = wilder(true_range.to_numpy(), 14, 1) / btc["close"].to_numpy()
    np.testing.assert_allclose(features["atr_pct"].to_numpy()[14:], expected[14:], rtol=1e-9)


def test_bollinger_matches_pandas_rolling_population_std(btc, features):
    mean = btc["close"].rolling(20).mean()
    deviation = btc["close"].rolling(20).std(ddof=0)
    upper, lower = mean + 2 * deviation, mean - 2 * deviation
    # TA-Lib keeps running sums of squares: agreement is to rounding of the variance, not exact.
    np.testing.assert_allclose(features["bb_pct_b"][19:], ((btc["close"] - lower) / (upper - lower))[19:], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(features["bb_width"][19:], ((upper - lower) / mean)[19:], rtol=1e-6)


def test_macd_and_moving_average_distances_match_pandas(btc, features):
    close = btc["close"]
    ema = {span: close.ewm(span=span, adjust=False).mean() for span in (12, 26)}
    macd = ema[12] - ema[26]
    signal = macd.ewm(span=9, adjust=False).mean()
    # pandas seeds an EMA with the first value, TA-Lib with an SMA: compare once both have forgotten it.
    np.testing.assert_allclose(features["macd_line_pct"][WARM:], (macd / close)[WARM:], rtol=1e-8)
    np.testing.assert_allclose(features["macd_hist_pct"][WARM:], ((macd - signal) / close)[WARM:], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(features["ema_26_dist"][WARM:], (close / ema[26] - 1)[WARM:], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(features["sma_200_dist"][199:], (close / close.rolling(200).mean() - 1)[199:], rtol=1e-8, atol=1e-12)


def test_obv_slope_is_obv_change_over_window_volume(btc, features):
    obv = pd.Series(talib.OBV(btc["close"].to_numpy(), btc["volume"].to_numpy()))
    expected = (obv - obv.shift(24)) / btc["volume"].reset_index(drop=True).rolling(24).sum()
    np.testing.assert_allclose(features["obv_slope"].to_numpy()[24:], expected.to_numpy()[24:], rtol=1e-8, atol=1e-9)


def test_stochastic_williams_and_realized_vol_match_pandas(btc, features):
    highest, lowest = btc["high"].rolling(14).max(), btc["low"].rolling(14).min()
    fast_k = 100 * (btc["close"] - lowest) / (highest - lowest)
    slow_k = fast_k.rolling(3).mean()
    np.testing.assert_allclose(features["stoch_k"][WARM:], slow_k[WARM:], rtol=1e-8)
    np.testing.assert_allclose(features["stoch_d"][WARM:], slow_k.rolling(3).mean()[WARM:], rtol=1e-8)
    np.testing.assert_allclose(features["williams_r"][13:], (-100 * (highest - btc["close"]) / (highest - lowest))[13:], rtol=1e-9)
    realized = np.log(btc["close"]).diff().rolling(24).std()
    np.testing.assert_allclose(features["realized_vol_24"][24:], realized[24:], rtol=1e-9)


def test_values_checked_by_hand(btc, features):
    # 2022-01-01 01:00 closed at 46766.78 after 46650.01; 06:00 UTC is a quarter of the day.
    row = features.loc["2022-01-01 01:00"]
    assert row["roc_1"] == pytest.approx(46766.78 / 46650.01 - 1, rel=1e-12)
    six = features.loc["2022-01-01 06:00"]
    assert (six["hour_sin"], six["hour_cos"]) == (pytest.approx(1.0), pytest.approx(0.0, abs=1e-12))
    # 2022-01-01 was a Saturday (weekday 5).
    assert six["weekday_sin"] == pytest.approx(math.sin(2 * math.pi * 5 / 7))
    day = btc.loc["2022-01-01"]
    assert features.loc["2022-01-01 23:00", "volume_ratio"] == pytest.approx(day["volume"].iloc[-1] / day["volume"].mean(), rel=1e-12)


def test_columns_are_the_technical_features_in_order(features):
    assert tuple(features.columns) == TECHNICAL_FEATURES
    assert (features.dtypes == "float64").all()
