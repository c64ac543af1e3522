"""The versioned feature schema shared by the trading feature builder and every model."""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from numbers import Real

import numpy as np


class FeatureSchemaError(ValueError):
    """Features that do not match the schema; `.errors` maps each offending feature to why."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        details = "; ".join(f"{name}: {message}" for name, message in errors.items())
        super().__init__(f"features do not match the schema ({details})")


def _feature_error(value) -> str | None:
    # bool is a Real; 0/1 flags such as is_profit_scraping may arrive as True/False and mean 1/0.
    if not isinstance(value, (Real, Decimal)):
        return f"not a number ({type(value).__name__})"
    if not math.isfinite(value):
        return f"not a finite number ({value})"
    return None


@dataclass(frozen=True)
class FeatureSchema:
    """Names and order of the features a model reads; the version is stored with each model."""

    version: str
    names: tuple[str, ...]

    def __post_init__(self):
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"feature schema {self.version} repeats a feature name")

    def _row_errors(self, features: Mapping) -> dict[str, str]:
        errors = {name: "missing" for name in self.names if name not in features}
        known = set(self.names)
        for name, value in features.items():
            if name not in known:
                errors[str(name)] = f"not in feature schema {self.version}"
            elif (message := _feature_error(value)) is not None:
                errors[name] = message
        return errors

    def vector(self, features: Mapping[str, float]) -> np.ndarray:
        """One trade's features as a float64 vector in schema order; never fills a gap."""
        if type(features) is dict and len(features) == len(self.names):
            # The common case, a plain dict of the schema's names holding floats and ints, skips the
            # per-value checks (most of a prediction's time); anything else gets them all.
            try:
                values = [features[name] for name in self.names]
            except KeyError:
                values = None
            if values is not None and all(type(value) is float or type(value) is int for value in values):
                vector = np.array(values, dtype=np.float64)
                if np.isfinite(vector).all():
                    return vector
        errors = self._row_errors(features)
        if errors:
            raise FeatureSchemaError(errors)
        return np.array([float(features[name]) for name in self.names], dtype=np.float64)

    def matrix(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        """Many trades' features as an (n_rows, n_features) float64 matrix in schema order."""
        errors: dict[str, str] = {}
        for row_index, features in enumerate(rows):
            for name, message in self._row_errors(features).items():
                # Name every offending feature once, with the first row where it went wrong.
                errors.setdefault(name, f"row {row_index}: {message}")
        if errors:
            raise FeatureSchemaError(errors)
        return np.array(
            [[float(features[name]) for name in self.names] for features in rows],
            dtype=np.float64,
        ).reshape(len(rows), len(self.names))

    def as_dict(self) -> dict:
        """JSON-ready form stored with each model version."""
        return {"version": self.version, "names": list(self.names)}


# Technical indicators the trading app computes from closed candles, in schema order.
TECHNICAL_FEATURES = (
    "rsi_14",
    "macd_line_pct",
    "macd_signal_pct",
    "macd_hist_pct",
    "roc_1",
    "roc_4",
    "roc_12",
    "roc_24",
    "stoch_k",
    "stoch_d",
    "williams_r",
    "adx_14",
    "cci_20",
    "atr_pct",
    "bb_pct_b",
    "bb_width",
    "ema_12_dist",
    "ema_26_dist",
    "sma_50_dist",
    "sma_200_dist",
    "obv_slope",
    "volume_ratio",
    "realized_vol_24",
    "hour_sin",
    "hour_cos",
    "weekday_sin",
    "weekday_cos",
)

FEATURE_SCHEMA = FeatureSchema(
    "v1",
    names=TECHNICAL_FEATURES
    + (
        # The signal being judged: +1 long / -1 short, its technical score in [0, 1], and which
        # engine produced it, so both systems' trades train one model.
        "side",
        "signal_strength",
        "is_profit_scraping",
    ),
)
