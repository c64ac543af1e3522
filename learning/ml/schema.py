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
    if type(value) is float:  # what JSON gives, checked without the abstract-class look-ups below
        return None if math.isfinite(value) else f"not a finite number ({value})"
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

# The signal being judged: +1 long / -1 short, its technical score in [0, 1], and which engine
# produced it, so both systems' trades train one model.
SIGNAL_FEATURES = ("side", "signal_strength", "is_profit_scraping")

FEATURE_SCHEMA_V1 = FeatureSchema("v1", names=TECHNICAL_FEATURES + SIGNAL_FEATURES)

# -- v2: what the strategy knows at decision time beyond the candle ----------------------------

# The trade's plan, known when the decision is made: exits in ATRs and in round-trip fees, the
# payoff it offers after fees, and how long it may be held.
PLAN_FEATURES = (
    "plan_stop_atr",
    "plan_target_atr",
    "plan_stop_fees",
    "plan_target_fees",
    "plan_payoff_after_fees",
    "plan_holding_hours",
)
# Directional indicators multiplied by the side (centred first where their neutral value is not
# 0), so "the move is with the trade" reads the same for a long and a short.
SIGNED_SOURCES: dict[str, tuple[str, float]] = {
    "signed_roc_1": ("roc_1", 0.0),
    "signed_roc_4": ("roc_4", 0.0),
    "signed_roc_12": ("roc_12", 0.0),
    "signed_roc_24": ("roc_24", 0.0),
    "signed_macd_line_pct": ("macd_line_pct", 0.0),
    "signed_macd_hist_pct": ("macd_hist_pct", 0.0),
    "signed_ema_12_dist": ("ema_12_dist", 0.0),
    "signed_ema_26_dist": ("ema_26_dist", 0.0),
    "signed_sma_50_dist": ("sma_50_dist", 0.0),
    "signed_sma_200_dist": ("sma_200_dist", 0.0),
    "signed_obv_slope": ("obv_slope", 0.0),
    "signed_rsi_14": ("rsi_14", 50.0),
    "signed_stoch_k": ("stoch_k", 50.0),
    "signed_williams_r": ("williams_r", -50.0),
    "signed_cci_20": ("cci_20", 0.0),
    "signed_bb_pct_b": ("bb_pct_b", 0.5),
}
SIGNED_FEATURES = tuple(SIGNED_SOURCES)

# Optional groups (off by default; settings FEATURES_HIGHER_TIMEFRAMES, FEATURES_CORRELATED_SYMBOLS),
# after FreqAI's include_timeframes and include_corr_pairlist. Each is computed only from candles
# closed by the decision: a higher-timeframe candle counts once its last hourly candle has closed.
HIGHER_TIMEFRAME_INDICATORS = ("rsi_14", "roc_1", "roc_4", "atr_pct", "ema_12_dist", "ema_26_dist", "bb_pct_b")
CORRELATED_INDICATORS = ("roc_1", "roc_4", "roc_24", "realized_vol_24", "sma_50_dist")
HIGHER_TIMEFRAMES = ("2h", "4h", "8h", "12h", "1d")
# Valid ranges of the indicators the optional groups carry (returns and distances: a fraction of price).
INDICATOR_RANGES: dict[str, tuple[float, float]] = {
    "rsi_14": (0.0, 100.0), "roc_1": (-1.0, 10.0), "roc_4": (-1.0, 10.0), "roc_24": (-1.0, 10.0),
    "atr_pct": (0.0, 1.0), "ema_12_dist": (-1.0, 10.0), "ema_26_dist": (-1.0, 10.0), "sma_50_dist": (-1.0, 10.0),
    "bb_pct_b": (-50.0, 50.0), "realized_vol_24": (0.0, 1.0),
}  # fmt: skip


# Valid ranges of v1's features (a value outside is impossible, and the API refuses it, naming the
# feature). Returns, distances and MACD are fractions of price; oscillators their textbook scales.
FEATURE_RANGES_V1: dict[str, tuple[float, float]] = {
    **{name: INDICATOR_RANGES[name] for name in ("rsi_14", "roc_1", "roc_4", "roc_24", "atr_pct", "ema_12_dist", "ema_26_dist", "sma_50_dist", "bb_pct_b", "realized_vol_24")},
    "macd_line_pct": (-1.0, 1.0), "macd_signal_pct": (-1.0, 1.0), "macd_hist_pct": (-1.0, 1.0),
    "roc_12": (-1.0, 10.0), "sma_200_dist": (-1.0, 10.0),
    "stoch_k": (0.0, 100.0), "stoch_d": (0.0, 100.0), "williams_r": (-100.0, 0.0), "adx_14": (0.0, 100.0),
    # CCI over 20 candles cannot pass ±666.7 (one outlier among 20); bounded a little wider.
    "cci_20": (-1000.0, 1000.0),
    "bb_width": (0.0, 10.0),
    # OBV's change over a day's volume, and the candle's volume over the day's mean (24 when it holds all of it).
    "obv_slope": (-1.0, 1.0), "volume_ratio": (0.0, 24.0),
    "hour_sin": (-1.0, 1.0), "hour_cos": (-1.0, 1.0), "weekday_sin": (-1.0, 1.0), "weekday_cos": (-1.0, 1.0),
    "side": (-1.0, 1.0), "signal_strength": (0.0, 1.0), "is_profit_scraping": (0.0, 1.0),
}  # fmt: skip
# Features that take only these values: +1 long / −1 short, and a 0/1 flag.
FEATURE_VALUES: dict[str, frozenset[float]] = {"side": frozenset({-1.0, 1.0}), "is_profit_scraping": frozenset({0.0, 1.0})}


def higher_timeframe_features(timeframe: str) -> tuple[str, ...]:
    if timeframe not in HIGHER_TIMEFRAMES:
        raise ValueError(f"higher timeframe {timeframe!r} is not one of {', '.join(HIGHER_TIMEFRAMES)}")
    return tuple(f"htf_{timeframe}_{name}" for name in HIGHER_TIMEFRAME_INDICATORS)


def correlated_features(symbol: str) -> tuple[str, ...]:
    if not symbol or not symbol.isalnum():
        raise ValueError(f"correlated symbol {symbol!r} must be a plain symbol name such as BTCUSDT")
    return tuple(f"corr_{symbol.lower()}_{name}" for name in CORRELATED_INDICATORS)


def _recent_features() -> tuple[str, ...]:
    from learning.recent import RECENT_FEATURES  # learning.recent imports pandas; keep this module light

    return RECENT_FEATURES


BASE_V2_FEATURES = TECHNICAL_FEATURES + SIGNAL_FEATURES + _recent_features() + PLAN_FEATURES + SIGNED_FEATURES


def feature_schema_v2(*, higher_timeframes: tuple[str, ...] = (), correlated_symbols: tuple[str, ...] = ()) -> FeatureSchema:
    """Schema v2 with the optional groups asked for; the names (stored with each model) say which."""
    names = BASE_V2_FEATURES
    for timeframe in higher_timeframes:
        names += higher_timeframe_features(timeframe)
    for symbol in correlated_symbols:
        names += correlated_features(symbol)
    return FeatureSchema("v2", names=names)


def current_feature_schema() -> FeatureSchema:
    """The schema the engines build and new models learn: v2, with the optional groups the settings switch on."""
    from django.conf import settings

    key = (tuple(settings.FEATURES_HIGHER_TIMEFRAMES), tuple(settings.FEATURES_CORRELATED_SYMBOLS))
    schema = _schemas.get(key)
    if schema is None:
        schema = _schemas[key] = feature_schema_v2(higher_timeframes=key[0], correlated_symbols=key[1])
    return schema


_schemas: dict[tuple, FeatureSchema] = {}

FEATURE_SCHEMA_V2 = feature_schema_v2()


def _feature_ranges() -> dict[str, tuple[float, float]]:
    """Each v2 feature beyond v1's, with the closed range a valid value lies in (documented, and checked by tests)."""
    from learning.recent import RECENT_FEATURE_RANGES

    ranges = dict(RECENT_FEATURE_RANGES)
    ranges.update(
        plan_stop_atr=(0.0, PLAN_ATR_CAP),
        plan_target_atr=(0.0, PLAN_ATR_CAP),
        plan_stop_fees=(0.0, PLAN_FEES_CAP),
        plan_target_fees=(0.0, PLAN_FEES_CAP),
        # (target − fees) / (stop + fees): −1 when the target only pays the fees back at zero distance.
        plan_payoff_after_fees=(-1.0, PLAN_PAYOFF_CAP),
        plan_holding_hours=(0.0, PLAN_HOLDING_CAP_HOURS),
    )
    # A side-signed indicator spans its source's range mirrored about the centre.
    signed_spans = {
        "roc_1": 1.0, "roc_4": 2.0, "roc_12": 5.0, "roc_24": 5.0,  # returns: a fraction of price
        "macd_line_pct": 1.0, "macd_hist_pct": 1.0,
        "ema_12_dist": 5.0, "ema_26_dist": 5.0, "sma_50_dist": 10.0, "sma_200_dist": 10.0,
        "obv_slope": 1.0, "rsi_14": 50.0, "stoch_k": 50.0, "williams_r": 50.0, "cci_20": 1000.0, "bb_pct_b": 50.0,
    }  # fmt: skip
    for name, (source, _) in SIGNED_SOURCES.items():
        ranges[name] = (-signed_spans[source], signed_spans[source])
    for timeframe in HIGHER_TIMEFRAMES:
        for name, feature in zip(HIGHER_TIMEFRAME_INDICATORS, higher_timeframe_features(timeframe)):
            ranges[feature] = INDICATOR_RANGES[name]
    return ranges


# Caps that keep the plan features bounded: a plan beyond them says "very wide" no less clearly.
PLAN_ATR_CAP = 50.0
PLAN_FEES_CAP = 1000.0
PLAN_PAYOFF_CAP = 100.0
PLAN_HOLDING_CAP_HOURS = 720.0  # also the value of a plan without a holding limit

FEATURE_RANGES_V2 = _feature_ranges()


def feature_range(name: str) -> tuple[float, float] | None:
    """The documented valid range of a feature of v1 or v2 (correlated-symbol features included), else None."""
    if name in FEATURE_RANGES_V1:
        return FEATURE_RANGES_V1[name]
    if name in FEATURE_RANGES_V2:
        return FEATURE_RANGES_V2[name]
    if name.startswith("corr_"):
        indicator = next((i for i in CORRELATED_INDICATORS if name.endswith("_" + i)), None)
        if indicator is not None:
            return INDICATOR_RANGES[indicator]
    return None


# A documented feature's (allowed values, range), looked up once: every prediction request checks each.
_KNOWN_LIMITS: dict[str, tuple[frozenset[float] | None, tuple[float, float] | None]] = {}


def _limits(name) -> tuple[frozenset[float] | None, tuple[float, float] | None]:
    limits = _KNOWN_LIMITS.get(name)
    if limits is None:
        limits = (FEATURE_VALUES.get(name), feature_range(name))
        if limits != (None, None):  # only documented names are kept, so a caller's made-up names cannot grow it
            _KNOWN_LIMITS[name] = limits
    return limits


def feature_value_errors(features: Mapping) -> dict[str, str]:
    """Each feature whose value is impossible (not a number, not finite, outside its documented range or
    values), with why; features with no documented range are only checked to be finite numbers."""
    errors = {}
    for name, value in features.items():
        if (message := _feature_error(value)) is not None:
            errors[str(name)] = message
            continue
        allowed, bounds = _limits(name)
        if allowed is not None and float(value) not in allowed:
            errors[name] = f"{value!r} is not one of {', '.join(f'{v:g}' for v in sorted(allowed))}"
        elif bounds is not None and not bounds[0] <= value <= bounds[1]:
            errors[name] = f"{value!r} is outside its valid range [{bounds[0]:g}, {bounds[1]:g}]"
    return errors


# The schema the models this code trains read, without the optional groups. Versions stored with another
# (v1) still load for inspection and are refused for decisions, saying why (learning.services.versions).
FEATURE_SCHEMA = FEATURE_SCHEMA_V2  # without the optional groups; current_feature_schema() has those switched on
