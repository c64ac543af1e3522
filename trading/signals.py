"""The technical signal: direction and strength from RSI, MACD, momentum and trend, on closed candles.

Each component is scaled by the candle's ATR% so the signal means the same on every symbol,
squashed into [-1, 1], and averaged. A signal fires when the score crosses its threshold
(not on every candle it stays beyond it), so one move gives one entry.
"""
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from django.conf import settings

STRATEGY_TYPE = "trend_momentum"


@dataclass(frozen=True, kw_only=True)
class TechnicalSignal:
    side: str  # "long" | "short"
    strength: float  # |score| in [0, 1]
    confidence: float  # the raw confidence handed to learning, in [0.5, 1]


def _tanh(values: np.ndarray) -> np.ndarray:
    # libm's tanh, one value at a time: numpy's own (SIMD) tanh differs from it in the last bits
    # of many values, and a score must come out the same however it is computed.
    return np.fromiter(map(math.tanh, values.tolist()), float, len(values))


def technical_scores(features: Mapping[str, np.ndarray]) -> np.ndarray:
    """The signed score in [-1, 1] of each candle, from its features' columns: positive leans long, negative short.

    Computed over a whole history at once (one candle is a history of one).
    """
    atr = np.maximum(features["atr_pct"], 1e-6)
    components = (
        (features["rsi_14"] - 50.0) / 50.0,
        _tanh(features["macd_hist_pct"] / (0.1 * atr)),
        _tanh(features["roc_12"] / (math.sqrt(12) * atr)),
        _tanh(features["sma_50_dist"] / (5 * atr)),
    )
    # Python's sum, candle by candle: it compensates the rounding of each addition, numpy's does not.
    totals = np.array([sum(parts) for parts in zip(*(component.tolist() for component in components))])
    return totals / len(components)


def technical_signal(score: float, previous: float | None) -> TechnicalSignal | None:
    """The signal of a candle whose score is `score`, or None; `previous` is the prior candle's score (None: no features)."""
    threshold = settings.TRADING_SIGNAL_THRESHOLD
    if abs(score) < threshold:
        return None
    if previous is not None and abs(previous) >= threshold and (previous > 0) == (score > 0):
        return None  # still beyond the threshold since an earlier candle: that move was signalled already
    strength = min(1.0, abs(score))
    return TechnicalSignal(
        side="long" if score > 0 else "short",
        strength=strength,
        # A raw prior, not a promise: calibration against outcomes corrects it as trades close.
        confidence=0.5 + settings.TRADING_CONFIDENCE_SPAN * strength,
    )


def combined_confidence(technical: float, model_probability: float | None) -> float:
    """The seed's blend of technical confidence and model probability (weights from settings)."""
    if model_probability is None:
        return technical
    weight = settings.TRADING_MODEL_WEIGHT
    return (1.0 - weight) * technical + weight * model_probability
