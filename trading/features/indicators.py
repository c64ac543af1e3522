"""Technical indicators over a whole candle history, vectorised and scale-free (ratios, not prices).

Every value at row t uses only rows up to t (TA-Lib and pandas rolling windows run forward
from the first row), so a history's features never change when later candles arrive. Rows
are taken as consecutive candles; the builder decides when enough history has passed.
"""
import numpy as np
import pandas as pd
import talib

from learning.ml.schema import TECHNICAL_FEATURES  # the names and order the models expect

RSI_PERIOD = 14
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
ROC_HORIZONS = (1, 4, 12, 24)
STOCH_PERIOD, STOCH_SMOOTH_K, STOCH_SMOOTH_D = 14, 3, 3
WILLIAMS_PERIOD = 14
ADX_PERIOD = 14
CCI_PERIOD = 20
ATR_PERIOD = 14
BOLLINGER_PERIOD, BOLLINGER_DEVIATIONS = 20, 2.0
EMA_PERIODS = (12, 26)
SMA_PERIODS = (50, 200)
# OBV slope, volume ratio and realized volatility look back one day of hourly candles.
VOLUME_WINDOW = 24
REALIZED_VOL_WINDOW = 24


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    return np.ascontiguousarray(frame[name].to_numpy(dtype="float64"))


def compute_indicators(frame: pd.DataFrame) -> pd.DataFrame:
    """The technical features of every row of an OHLCV frame (UTC DatetimeIndex of open times).

    Columns are TECHNICAL_FEATURES in order; early rows are NaN until each indicator has seen
    enough candles. Oscillators keep their usual 0–100 (Williams %R: −100–0) scales; anything
    priced is divided by the close.
    """
    open_time = frame.index
    if not isinstance(open_time, pd.DatetimeIndex) or open_time.tz is None:
        raise ValueError("candle frame must be indexed by a timezone-aware DatetimeIndex of open times")
    high, low, close, volume = (_column(frame, name) for name in ("high", "low", "close", "volume"))
    features: dict[str, np.ndarray] = {}

    features["rsi_14"] = talib.RSI(close, timeperiod=RSI_PERIOD)
    macd, macd_signal, macd_hist = talib.MACD(close, fastperiod=MACD_FAST, slowperiod=MACD_SLOW, signalperiod=MACD_SIGNAL)
    features["macd_line_pct"] = macd / close
    features["macd_signal_pct"] = macd_signal / close
    features["macd_hist_pct"] = macd_hist / close
    for horizon in ROC_HORIZONS:
        previous = np.full_like(close, np.nan)
        previous[horizon:] = close[:-horizon]
        features[f"roc_{horizon}"] = close / previous - 1.0
    stoch_k, stoch_d = talib.STOCH(
        high, low, close,
        fastk_period=STOCH_PERIOD, slowk_period=STOCH_SMOOTH_K, slowk_matype=talib.MA_Type.SMA,
        slowd_period=STOCH_SMOOTH_D, slowd_matype=talib.MA_Type.SMA,
    )  # fmt: skip
    features["stoch_k"], features["stoch_d"] = stoch_k, stoch_d
    features["williams_r"] = talib.WILLR(high, low, close, timeperiod=WILLIAMS_PERIOD)
    features["adx_14"] = talib.ADX(high, low, close, timeperiod=ADX_PERIOD)
    features["cci_20"] = talib.CCI(high, low, close, timeperiod=CCI_PERIOD)
    features["atr_pct"] = talib.ATR(high, low, close, timeperiod=ATR_PERIOD) / close
    upper, middle, lower = talib.BBANDS(
        close, timeperiod=BOLLINGER_PERIOD, nbdevup=BOLLINGER_DEVIATIONS, nbdevdn=BOLLINGER_DEVIATIONS, matype=talib.MA_Type.SMA
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        # A flat window has zero band width: %B is undefined there and stays NaN (not ready).
        features["bb_pct_b"] = (close - lower) / (upper - lower)
    features["bb_width"] = (upper - lower) / middle
    for period in EMA_PERIODS:
        features[f"ema_{period}_dist"] = close / talib.EMA(close, timeperiod=period) - 1.0
    for period in SMA_PERIODS:
        features[f"sma_{period}_dist"] = close / talib.SMA(close, timeperiod=period) - 1.0

    volume_series = pd.Series(volume)
    rolling_volume = volume_series.rolling(VOLUME_WINDOW, min_periods=VOLUME_WINDOW).sum().to_numpy()
    # OBV's change over the window is the signed volume summed over it; dividing by the window's
    # volume gives a slope in [-1, 1] that does not depend on where the history (OBV's zero) starts.
    signed_volume = pd.Series(np.sign(np.diff(close, prepend=np.nan)) * volume)
    obv_change = signed_volume.rolling(VOLUME_WINDOW, min_periods=VOLUME_WINDOW).sum().to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        features["obv_slope"] = obv_change / rolling_volume
        features["volume_ratio"] = volume / (rolling_volume / VOLUME_WINDOW)
    log_returns = pd.Series(np.log(close)).diff()
    features["realized_vol_24"] = log_returns.rolling(REALIZED_VOL_WINDOW, min_periods=REALIZED_VOL_WINDOW).std().to_numpy()

    hour = (open_time.hour.to_numpy() + open_time.minute.to_numpy() / 60.0) * (2 * np.pi / 24)
    weekday = open_time.day_of_week.to_numpy() * (2 * np.pi / 7)
    features["hour_sin"], features["hour_cos"] = np.sin(hour), np.cos(hour)
    features["weekday_sin"], features["weekday_cos"] = np.sin(weekday), np.cos(weekday)

    result = pd.DataFrame({name: features[name] for name in TECHNICAL_FEATURES}, index=frame.index)
    return result.replace([np.inf, -np.inf], np.nan)
