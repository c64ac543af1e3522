"""The strategy's own recent record as features at a decision time: rolling windows over its outcomes.

For a decision of system S on symbol X at time `at`, over the outcomes (real and shadow) that
exited strictly before `at`, in exit order:

- scope "system": every outcome of S (all symbols); scope "symbol": the outcomes of S on X;
- per scope: mean net P&L (`pnl_pct`, a fraction after fees) and win rate of the last 20 and the
  last 50 outcomes, how many outcomes the longest window holds, and the hours since the latest
  signal (entry time) among the outcomes of the longest window.

`at` is the open time of the candle being decided on. Exit times are the open times of the
candles the exits happened in, so "exited before `at`" means "exited in an earlier candle": an
exit during the decision candle itself is left out, whatever order symbols and systems are
processed in within that candle, so a replay, a live worker and the research dataset agree.

"Exit order" is by (exit time, entry time, symbol, P&L, success): a key that needs no id, so an
outcome sorts the same before it is stored (a replay's memory) and after; outcomes equal in all
of these are interchangeable in every figure.

Two forms that give exactly the same numbers: `recent_record` for one live decision, and
`recent_record_frame` for a whole dataset at once. Exactness is by construction: P&L is summed
in integer units of 1e-10 (the precision the learning store keeps) and times in integer
microseconds, and each figure is a single float division in both forms.
"""

# pandas (~1 s) is imported by the vectorised form only: the feature schema imports this module,
# and every command (even `manage.py check`) imports the schema.
from __future__ import annotations

import bisect
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

if TYPE_CHECKING:
    import pandas as pd

RECENT_WINDOWS = (20, 50)
RECENT_SCOPES = ("system", "symbol")
# Hours since the latest signal are capped here, and take this value when there is no outcome yet:
# a month without a known outcome says "quiet" as well as a year does, and keeps the range bounded.
RECENT_HOURS_CAP = 720.0
# Neutral values while a scope has no outcome yet; `recent_<scope>_count` = 0 says that they are.
EMPTY_PNL, EMPTY_WIN_RATE = 0.0, 0.5

_PNL_UNITS = 10_000_000_000  # pnl_pct is stored with 10 decimal places
_PNL_SCALE = 1e10
_US_PER_HOUR = 3.6e9
_LONGEST = max(RECENT_WINDOWS)


def _names(scope: str) -> tuple[str, ...]:
    return (
        *(f"recent_{scope}_pnl_{n}" for n in RECENT_WINDOWS),
        *(f"recent_{scope}_win_{n}" for n in RECENT_WINDOWS),
        f"recent_{scope}_count",
        f"recent_{scope}_hours_since_signal",
    )


RECENT_FEATURES: tuple[str, ...] = tuple(name for scope in RECENT_SCOPES for name in _names(scope))

# Each feature's valid range, inclusive (pnl: a net return can lose at most the position, with
# leverage a few times it; it is a mean of fractions, so ±10 is far outside anything sane).
RECENT_FEATURE_RANGES: dict[str, tuple[float, float]] = {}
for _scope in RECENT_SCOPES:
    for _n in RECENT_WINDOWS:
        RECENT_FEATURE_RANGES[f"recent_{_scope}_pnl_{_n}"] = (-10.0, 10.0)
        RECENT_FEATURE_RANGES[f"recent_{_scope}_win_{_n}"] = (0.0, 1.0)
    RECENT_FEATURE_RANGES[f"recent_{_scope}_count"] = (0.0, float(_LONGEST))
    RECENT_FEATURE_RANGES[f"recent_{_scope}_hours_since_signal"] = (0.0, RECENT_HOURS_CAP)


@dataclass(frozen=True, kw_only=True, slots=True)
class RecentOutcome:
    """What the recent record needs of one outcome (a TrainingRecord, real or shadow)."""

    system_type: str
    symbol: str
    entry_time: datetime
    exit_time: datetime
    pnl_pct: float  # net of fees, a fraction
    success: bool


def pnl_units(pnl_pct) -> int:
    """A net P&L fraction in integer units of 1e-10, rounded half to even (as np.rint does)."""
    return round(float(pnl_pct) * _PNL_SCALE)


def _microseconds(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


_EPOCH_DATETIME = datetime(1970, 1, 1, tzinfo=UTC)


def window_entry(*, exit_time: datetime, entry_time: datetime, symbol: str, pnl_units: int, success: bool) -> list:
    """One outcome as a rolling window in the learning store keeps it (JSON): sorting these lists is exit order."""
    return [_microseconds(exit_time - _EPOCH_DATETIME), _microseconds(entry_time - _EPOCH_DATETIME), symbol, pnl_units, success]


def window_time(microseconds: int) -> datetime:
    """A window entry's exit or entry time as a UTC datetime."""
    return _EPOCH_DATETIME + timedelta(microseconds=microseconds)


def window_outcomes(system_type: str, window: Iterable[list]) -> list[RecentOutcome]:
    """A stored rolling window's entries as outcomes, in the window's (exit) order."""
    return [_window_outcome(system_type, *entry) for entry in window]


@functools.lru_cache(maxsize=1 << 16)
def _window_outcome(system_type: str, exit_us: int, entry_us: int, symbol: str, units: int, success: bool) -> RecentOutcome:
    # An outcome stays in a window for its next hundred outcomes and is read at every decision and
    # fold meanwhile: made once, not each time (its two datetimes and a frozen dataclass cost ~2 µs).
    return RecentOutcome(
        system_type=system_type,
        symbol=symbol,
        exit_time=window_time(exit_us),
        entry_time=window_time(entry_us),
        pnl_pct=units / _PNL_SCALE,
        success=success,
    )


def exit_order(outcome: RecentOutcome) -> tuple:
    """The sort key of exit order (see the module's docstring)."""
    return (outcome.exit_time, outcome.entry_time, outcome.symbol, pnl_units(outcome.pnl_pct), outcome.success)


def entry_of(outcome: RecentOutcome) -> list:
    """An outcome as a window entry (window_entry)."""
    return window_entry(
        exit_time=outcome.exit_time, entry_time=outcome.entry_time, symbol=outcome.symbol, pnl_units=pnl_units(outcome.pnl_pct), success=outcome.success
    )


def window_figures(window: list[list]) -> list[float]:
    """Mean net P&L of the last 20 and 50, win rate of the last 20 and 50, and how many of 50 there are.

    `window` holds one scope's entries (window_entry) in exit order, the ones known at the time asked about.
    """
    values: list[float] = []
    for n in RECENT_WINDOWS:
        last = window[-n:]
        values.append(float(sum(entry[3] for entry in last)) / (len(last) * _PNL_SCALE) if last else EMPTY_PNL)
    for n in RECENT_WINDOWS:
        last = window[-n:]
        values.append(sum(1 for entry in last if entry[4]) / len(last) if last else EMPTY_WIN_RATE)
    values.append(float(min(len(window), _LONGEST)))
    return values


def exited_before(window: list[list], at: datetime) -> int:
    """How many of a window's entries (in exit order) exited strictly before `at`."""
    return _exited_before(window, _microseconds(at - _EPOCH_DATETIME))


def _exited_before(window: list[list], at_us: int) -> int:
    return bisect.bisect_left(window, [at_us])  # [at_us] sorts before every entry that exited at at_us


def _scope_values(window: list[list], at_us: int) -> list[float]:
    """One scope's features from its entries in exit order: those that exited before `at_us` are read."""
    known = window[: _exited_before(window, at_us)]
    values = window_figures(known)
    if known:
        latest_entry_us = max(entry[1] for entry in known[-_LONGEST:])
        values.append(min((at_us - latest_entry_us) / _US_PER_HOUR, RECENT_HOURS_CAP))
    else:
        values.append(RECENT_HOURS_CAP)
    return values


def recent_record(outcomes: Iterable[RecentOutcome], *, system_type: str, symbol: str, at: datetime) -> dict[str, float]:
    """The recent-record features of one decision: system `system_type`, symbol `symbol`, at `at`.

    `outcomes` (each outcome once) may hold anything, other systems and outcomes after `at`
    included: only the outcomes of the system that exited strictly before `at` are read.
    """
    of_system = [o for o in outcomes if o.system_type == system_type]
    return recent_record_of_windows(
        system_outcomes=of_system, symbol_outcomes=[o for o in of_system if o.symbol == symbol], at=at
    )


def recent_record_of_windows(*, system_outcomes: Iterable[RecentOutcome], symbol_outcomes: Iterable[RecentOutcome], at: datetime) -> dict[str, float]:
    """The recent-record features from each scope's outcomes: those of the system, and those of the system on the symbol.

    Each scope's outcomes that exited strictly before `at` are read in exit order. Every figure reads only a scope's last 50 of them, so the last 50 of each
    scope that exited before `at` (the learning store's rolling windows) are all it needs.
    """
    return recent_record_of_entries(
        system_window=sorted(map(entry_of, system_outcomes)), symbol_window=sorted(map(entry_of, symbol_outcomes)), at=at
    )


def recent_record_of_entries(*, system_window: list[list], symbol_window: list[list], at: datetime) -> dict[str, float]:
    """recent_record_of_windows of two rolling windows as the learning store keeps them (entries in exit order)."""
    at_us = _microseconds(at - _EPOCH_DATETIME)
    return dict(zip(RECENT_FEATURES, _scope_values(system_window, at_us) + _scope_values(symbol_window, at_us)))


# -- the vectorised form ------------------------------------------------------------------------

def _epoch_microseconds(times: pd.Series) -> np.ndarray:
    import pandas as pd

    times = pd.to_datetime(times, utc=True)
    return ((times - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta(microseconds=1)).to_numpy(dtype=np.int64)


def _group_keys(frame: pd.DataFrame, scope: str) -> pd.Series:
    if scope == "system":
        return frame["system_type"].astype(str)
    return frame["system_type"].astype(str) + "\x1f" + frame["symbol"].astype(str)


def recent_record_frame(outcomes: pd.DataFrame, decisions: pd.DataFrame) -> pd.DataFrame:
    """The recent-record features of many decisions at once; equal, number for number, to `recent_record`.

    `outcomes`: columns system_type, symbol, entry_time, exit_time, pnl_pct, success (shadow
    included), in any order: they are put in exit order.
    `decisions`: columns system_type, symbol, time (the `at` of each decision).
    Returns RECENT_FEATURES as float64 columns, indexed like `decisions`.
    """
    import pandas as pd

    missing = [c for c in ("system_type", "symbol", "entry_time", "exit_time", "pnl_pct", "success") if c not in outcomes]
    missing += [f"decisions.{c}" for c in ("system_type", "symbol", "time") if c not in decisions]
    if missing:
        raise ValueError(f"recent_record_frame: missing columns {', '.join(missing)}")
    exits = _epoch_microseconds(outcomes["exit_time"])
    entries = _epoch_microseconds(outcomes["entry_time"])
    pnl = np.rint(outcomes["pnl_pct"].astype("float64").to_numpy() * _PNL_SCALE).astype(np.int64)
    wins = outcomes["success"].astype(bool).to_numpy().astype(np.int64)
    symbol_rank, _ = pd.factorize(outcomes["symbol"].astype(str), sort=True)
    order = np.lexsort((wins, pnl, symbol_rank, entries, exits))  # exit order: the last key sorts first
    outcomes, exits, entries, pnl, wins = outcomes.iloc[order], exits[order], entries[order], pnl[order], wins[order]
    at = _epoch_microseconds(decisions["time"])

    columns: list[np.ndarray] = []
    for scope in RECENT_SCOPES:
        result = np.empty((len(decisions), 2 * len(RECENT_WINDOWS) + 2), dtype=np.float64)
        outcome_groups = pd.Series(np.arange(len(outcomes)), index=_group_keys(outcomes, scope).to_numpy()).groupby(level=0).indices
        decision_keys = _group_keys(decisions, scope).to_numpy()
        for key, rows in pd.Series(np.arange(len(decisions))).groupby(decision_keys).indices.items():
            members = outcome_groups.get(key, np.empty(0, dtype=np.int64))
            members = np.sort(members)  # back in exit order
            result[rows] = _scope_block(exits[members], entries[members], pnl[members], wins[members], at[rows])
        columns.append(result)
    return pd.DataFrame(np.hstack(columns), index=decisions.index, columns=list(RECENT_FEATURES))


def _scope_block(exits: np.ndarray, entries: np.ndarray, pnl: np.ndarray, wins: np.ndarray, at: np.ndarray) -> np.ndarray:
    """One group's features for its decisions at times `at`, from its outcomes in exit order."""
    known = np.searchsorted(exits, at, side="left")  # outcomes that exited strictly before each decision
    cum_pnl = np.concatenate(([0], np.cumsum(pnl)))
    cum_wins = np.concatenate(([0], np.cumsum(wins)))
    block = np.empty((len(at), 2 * len(RECENT_WINDOWS) + 2), dtype=np.float64)
    for column, n in enumerate(RECENT_WINDOWS):
        start = np.maximum(known - n, 0)
        count = (known - start).astype(np.float64)
        has = known > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            block[:, column] = np.where(has, (cum_pnl[known] - cum_pnl[start]).astype(np.float64) / (count * _PNL_SCALE), EMPTY_PNL)
            block[:, len(RECENT_WINDOWS) + column] = np.where(has, (cum_wins[known] - cum_wins[start]) / count, EMPTY_WIN_RATE)
    block[:, -2] = np.minimum(known, _LONGEST).astype(np.float64)
    # latest_entry[i]: the latest entry among outcomes i-49..i, a sliding maximum over the longest window.
    padded = np.concatenate((np.full(_LONGEST - 1, np.iinfo(np.int64).min), entries))
    latest_entry = sliding_window_view(padded, _LONGEST).max(axis=1) if len(entries) else entries
    hours = np.full(len(at), RECENT_HOURS_CAP)
    has = known > 0
    hours[has] = np.minimum((at[has] - latest_entry[known[has] - 1]).astype(np.float64) / _US_PER_HOUR, RECENT_HOURS_CAP)
    block[:, -1] = hours
    return block
