"""Sample weights for overlapping trade outcomes: average uniqueness (López de Prado, AFML ch. 4)."""
from collections.abc import Sequence

import numpy as np

_HOUR_NS = 3_600 * 10**9


def average_uniqueness(entry_times, exit_times, symbols: Sequence[str], systems: Sequence[str] | None = None) -> np.ndarray:
    """Each outcome's mean over its hours of 1 / (outcomes of the same symbol open then), scaled to mean 1.

    Outcomes on one symbol that overlap in time share the same price moves, so they are not
    independent examples; weighting by uniqueness keeps a burst of overlapping trades from
    counting as many. With `systems`, only outcomes of the same system count as overlapping: each
    system's model learns from its own outcomes, and a burst of the other system's short trades
    says nothing about how independent its labels are. Times are anything numpy reads as
    datetime64 (aware datetimes as UTC).
    """
    entry, exit_ = _hours(entry_times), _hours(exit_times)
    weights = np.ones(len(entry))
    if len(entry) == 0:
        return weights
    first = entry - entry.min()
    last = np.maximum(exit_ - entry.min(), first)
    groups = np.asarray(symbols, dtype=object)
    if systems is not None:
        groups = np.asarray(systems, dtype=object) + "|" + groups
    for value in np.unique(groups):
        rows = np.flatnonzero(groups == value)
        span = last[rows].max() + 2
        concurrency = np.zeros(span, dtype=np.float64)
        np.add.at(concurrency, first[rows], 1.0)
        np.add.at(concurrency, last[rows] + 1, -1.0)
        inverse = np.zeros(span + 1)
        inverse[1:] = np.cumsum(1.0 / np.maximum(np.cumsum(concurrency), 1.0))
        weights[rows] = (inverse[last[rows] + 1] - inverse[first[rows]]) / (last[rows] - first[rows] + 1)
    return weights / weights.mean()


def _hours(times) -> np.ndarray:
    """Whole hours since the epoch (floored), from datetimes, pandas timestamps or datetime64 (naive ones read as UTC)."""
    if isinstance(times, np.ndarray) and times.dtype.kind == "M":
        return np.floor_divide(times.astype("datetime64[ns]").view(np.int64), _HOUR_NS)
    import pandas as pd  # ~1 s to import: only where weights are computed

    nanoseconds = pd.DatetimeIndex(pd.to_datetime(list(times), utc=True)).as_unit("ns").asi8
    return np.floor_divide(nanoseconds, _HOUR_NS)
