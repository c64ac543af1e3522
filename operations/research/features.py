"""The study's feature groups by name, computed from the signal dataset with schema v2's own definitions."""
from collections.abc import Callable

import numpy as np
import pandas as pd

from learning.ml.schema import PLAN_FEATURES, SIGNED_SOURCES, TECHNICAL_FEATURES
from learning.recent import recent_record_frame
from trading.features.context import plan_features


def _technical(data: pd.DataFrame) -> pd.DataFrame:
    return data[list(TECHNICAL_FEATURES)]


def _signal(data: pd.DataFrame) -> pd.DataFrame:
    return data[["side", "signal_strength"]]


def _signed(data: pd.DataFrame) -> pd.DataFrame:
    # trading.features.context.signed_features, over every row at once.
    return pd.DataFrame({name: data["side"] * (data[source] - centre) for name, (source, centre) in SIGNED_SOURCES.items()})


def _plan(data: pd.DataFrame) -> pd.DataFrame:
    rows = [
        plan_features(
            stop_distance_pct=stop, target_distance_pct=target, max_holding_minutes=None if pd.isna(hold) else int(hold), atr_pct=atr, fee_rate=fee
        )
        for stop, target, hold, atr, fee in data[["stop_pct", "target_pct", "max_holding_minutes", "atr_pct", "fee_rate"]].itertuples(index=False)
    ]
    return pd.DataFrame(rows, index=data.index, columns=list(PLAN_FEATURES))


def _geometry(data: pd.DataFrame) -> pd.DataFrame:
    """Only where the plan puts the exits (seven numbers): enough to tell a small-target scrape from a wide trade."""
    fee = data["fee_rate"]
    return pd.DataFrame(
        {
            "stop_pct": data["stop_pct"],
            "target_pct": data["target_pct"],
            "log_target_stop": np.log(data["target_pct"].clip(lower=1e-9) / data["stop_pct"].clip(lower=1e-9)),
            "target_net": data["target_pct"] - 2 * fee,
            "stop_net": data["stop_pct"] + 2 * fee,
            "payoff_after_fees": (data["target_pct"] - 2 * fee) / (data["stop_pct"] + 2 * fee),
            "atr_pct": data["atr_pct"],
        }
    )


def _recent(data: pd.DataFrame) -> pd.DataFrame:
    """learning.recent's record as the engines will read it: outcomes that exited before the decided candle."""
    outcomes = data[["system", "symbol", "entry_time", "exit_time", "pnl_pct", "success"]].rename(columns={"system": "system_type"})
    decisions = pd.DataFrame({"system_type": data["system"], "symbol": data["symbol"], "time": data["candle_time"]}, index=data.index)
    return recent_record_frame(outcomes, decisions)


def _system(data: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"is_profit_scraping": (data["system"] == "profit_scraping").astype(float)})


def _context(data: pd.DataFrame) -> pd.DataFrame:
    """The optional higher-timeframe and cross-asset columns the export added (htf_*, corr_*), if any."""
    return data[[column for column in data.columns if column.startswith(("htf_", "corr_"))]]


FEATURE_GROUPS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "technical": _technical,
    "signal": _signal,
    "signed": _signed,
    "plan": _plan,
    "geometry": _geometry,
    "recent": _recent,
    "system": _system,
    "context": _context,
}


def feature_frame(data: pd.DataFrame, groups: tuple[str, ...]) -> pd.DataFrame:
    unknown = [name for name in groups if name not in FEATURE_GROUPS]
    if unknown:
        raise ValueError(f"unknown feature group(s) {', '.join(unknown)}; known: {', '.join(FEATURE_GROUPS)}")
    frame = pd.concat([FEATURE_GROUPS[name](data) for name in groups], axis=1)
    return frame.loc[:, ~frame.columns.duplicated()]


def feature_matrix(data: pd.DataFrame, groups: tuple[str, ...]) -> np.ndarray:
    """The named groups' columns as one float matrix; a value that is not finite (a gap in context) reads as 0."""
    matrix = feature_frame(data, groups).to_numpy(dtype=np.float64)
    return np.where(np.isfinite(matrix), matrix, 0.0)
