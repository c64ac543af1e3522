"""The signal dataset: every signal a baseline replay decided, with its features, its plan and its outcome (real or shadow)."""
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from django.db import connections

from learning.ml.schema import TECHNICAL_FEATURES
from trading.marketdata.naming import timeframe_ms
from trading.models import PaperTrade, SignalDecision

TIME_COLUMNS = ("candle_time", "decision_time", "entry_time", "exit_time", "known_time")
# Columns every dataset has, in file order; the engines' extra features (e.g. a scrape's level
# distances) follow them.
BASE_COLUMNS = (
    "decision_id",
    "system",
    "symbol",
    "timeframe",
    *TIME_COLUMNS,
    "taken",
    "is_shadow",
    "side",
    "signal_strength",
    *TECHNICAL_FEATURES,
    "stop_pct",
    "target_pct",
    "trailing_stop_pct",
    "breakeven_trigger_pct",
    "max_holding_minutes",
    "fee_rate",
    "pnl_pct",
    "success",
    "exit_reason",
)


@contextmanager
def sqlite_database(path: Path, alias: str = "research_source"):
    """Read another (evaluation run's) SQLite database through the ORM under `alias` for the duration."""
    template = connections.settings["default"].copy()
    template.update(ENGINE="django.db.backends.sqlite3", NAME=str(path), OPTIONS={}, CONN_MAX_AGE=0, CONN_HEALTH_CHECKS=False)
    connections.settings[alias] = template
    try:
        yield alias
    finally:
        if alias in connections:
            connections[alias].close()
            del connections[alias]
        del connections.settings[alias]


def signal_dataset(*, using: str = "default") -> pd.DataFrame:
    """One row per decision whose trade (real, or shadow when skipped or refused) has closed.

    `decision_time` is the close of the decided candle (when the signal was known);
    `known_time` the close of the candle the trade exited in (when its outcome was). Signals
    whose trade never opened (expired, refused even as a shadow) or is still open are left out:
    they have no outcome to learn from.
    """
    trades = (
        PaperTrade.objects.using(using)
        .filter(status=PaperTrade.Status.CLOSED, decision__isnull=False)
        .select_related("decision", "account")
        .order_by("decision__candle_time", "decision_id")
    )
    rows = []
    for trade in trades.iterator(chunk_size=2000):
        decision: SignalDecision = trade.decision
        step = pd.Timedelta(milliseconds=timeframe_ms(decision.timeframe))
        plan = decision.recommendation.get("plan", {})
        features = decision.features
        rows.append(
            {
                **{name: value for name, value in features.items() if name not in ("is_profit_scraping",)},
                "decision_id": decision.pk,
                "system": trade.account.system_type,
                "symbol": decision.symbol,
                "timeframe": decision.timeframe,
                "candle_time": decision.candle_time,
                "decision_time": decision.candle_time + step,
                "entry_time": trade.entry_time,
                "exit_time": trade.exit_time,
                "known_time": trade.exit_time + step,
                "taken": decision.taken,
                "is_shadow": trade.is_shadow,
                "stop_pct": plan.get("stop_distance_pct"),
                "target_pct": plan.get("target_distance_pct"),
                "trailing_stop_pct": plan.get("trailing_stop_pct"),
                "breakeven_trigger_pct": plan.get("breakeven_trigger_pct"),
                "max_holding_minutes": trade.max_holding_minutes,
                "fee_rate": float(trade.account.fee_rate),
                "pnl_pct": float(trade.pnl_pct),
                "success": bool(trade.net_pnl > 0),
                "exit_reason": trade.exit_reason,
            }
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=list(BASE_COLUMNS))
    extra = [column for column in frame.columns if column not in BASE_COLUMNS]
    return _typed(frame[list(BASE_COLUMNS) + sorted(extra)])


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    for column in TIME_COLUMNS:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["success"] = frame["success"].astype(bool)
    return frame.sort_values(["decision_time", "system", "symbol", "decision_id"], kind="stable").reset_index(drop=True)


def utc64(times) -> np.ndarray:
    """UTC times as naive datetime64[ns], for fast numpy comparisons and searches."""
    index = pd.DatetimeIndex(times)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return index.to_numpy().astype("datetime64[ns]")


def write_dataset(frame: pd.DataFrame, path: Path) -> None:
    """CSV (gzip-compressed when the name ends .gz), times in ISO 8601 UTC."""
    frame.to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%SZ")


def read_dataset(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    missing = [column for column in BASE_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"{path} is not a signal dataset: no column(s) {', '.join(missing)}")
    return _typed(frame)
