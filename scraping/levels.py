"""Support and resistance levels from confirmed pivots, clustered by ATR, scored, and strengthened by magnets.

How a level set is made (all constants are fields of `LevelParams`):

- Schedule. Levels are recomputed once per `recompute_every` candles, on boundaries aligned to
  the epoch (00:00 UTC daily for 24 hourly candles), from the candles opening in
  (boundary − window, boundary]. Between boundaries the last set is used. Because the schedule
  and the window are fixed in time, not in rows, a frame that starts elsewhere (a live worker's
  shorter history) computes the same set as a replay over years.
- Pivots. Candle i is a pivot high when its high is the highest of candles i−k..i+k
  (k = `pivot_span`), a pivot low likewise. That is known only at the close of candle i+k, so a
  set whose last candle is r uses pivots i ≤ r−k only.
- Tolerance. `tol = cluster_atr × mean true range over the window` (a plain mean, so the value
  depends on the window alone, not on where a recursive ATR was seeded).
- Clusters. All pivot prices, sorted; a new cluster starts where the gap to the previous price
  exceeds `tol`, or where the cluster would grow wider than `max_cluster_tols × tol`. A
  level's price is the mean of its pivots.
- Tests (touches). A candle tests a level when its range comes within `touch_atr × mean TR`
  of it and its body (open to close) stays on one side; a run of consecutive such candles is
  one test. A candle whose body spans the level is a break.
- Bounces. A test at candle j bounced when, within the next `bounce_candles` candles (up to r),
  price moved `bounce_atr × mean TR` away from the level on the side the test came from (the
  test candle's open). A test is decided once it bounced or its follow-up window has passed;
  bounce_rate = bounces / decided tests (0 with none decided).
- Strength in [0, 1]:
      tests_score  = 1 − exp(−tests / 3)                       (3 tests → 0.63, 6 → 0.86)
      bounce_score = (bounces + 1) / (decided + 2)             (Laplace: thin evidence → ½)
      held_score   = (tests + 1) / (tests + breaks + 2)         (approaches that held, not crossed)
      recency      = 0.5 ** (candles since last test / recency_half_life)
      strength     = min(1, 0.3·tests_score + 0.3·bounce_score + 0.25·held_score + 0.15·recency
                            + magnet_bonus × number of magnets within magnet_atr × mean TR)
- Magnets. Round numbers (multiples of 10^(⌊log10 price⌋ − 1): 1,000 at 20,000, 100 at 1,500),
  the previous UTC day's and ISO week's high and low, and the 38.2 / 50 / 61.8 % retracements of
  the swing over the last `fib_lookback` candles. A magnet only strengthens a level found from
  pivots; it never makes one on its own.
- Kind. Support when the level is below the close of the set's last candle, else resistance:
  a broken resistance becomes support, as traders read it.
Levels tested fewer than `min_touches` times are dropped.
"""
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

FIB_RATIOS = (0.382, 0.5, 0.618)


@dataclass(frozen=True, kw_only=True)
class LevelParams:
    pivot_span: int = 5
    window: timedelta = timedelta(days=30)
    recompute_every: int = 24
    cluster_atr: float = 0.5
    max_cluster_tols: float = 3.0
    touch_atr: float = 0.25
    bounce_atr: float = 1.5
    bounce_candles: int = 12
    min_touches: int = 2
    recency_half_life: float = 72.0
    magnet_atr: float = 0.5
    magnet_bonus: float = 0.05
    fib_lookback: int = 168


@dataclass(frozen=True, kw_only=True)
class LevelSet:
    """The levels in force from one recompute; arrays are parallel, one entry per level, by price."""

    computed_at: pd.Timestamp  # open time of the last candle used
    tolerance: float  # mean true range over the window: the unit every distance above is in
    price: np.ndarray
    is_support: np.ndarray
    touches: np.ndarray
    bounces: np.ndarray
    bounce_rate: np.ndarray
    last_test_time: np.ndarray  # int64 ns since the epoch (UTC)
    last_test_row: np.ndarray  # frame row of the last test (for recency at later candles)
    strength: np.ndarray
    magnets: list[list[dict]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.price)

    def rows(self) -> list[dict]:
        """The levels as plain dicts (floats and UTC datetimes), for storage and display."""
        return [
            {
                "price": float(self.price[i]),
                "kind": "support" if self.is_support[i] else "resistance",
                "touches": int(self.touches[i]),
                "bounces": int(self.bounces[i]),
                "bounce_rate": float(self.bounce_rate[i]),
                "last_test_time": pd.Timestamp(int(self.last_test_time[i]), tz="UTC").to_pydatetime(),
                "strength": float(self.strength[i]),
                "magnets": self.magnets[i],
            }
            for i in range(len(self))
        ]


def _true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    previous_close = np.concatenate(([np.nan], close[:-1]))
    # The first candle has no previous close: its range alone (np.fmax ignores the NaN).
    return np.fmax(high - low, np.fmax(np.abs(high - previous_close), np.abs(low - previous_close)))


def _pivots(values: np.ndarray, span: int, *, highs: bool) -> np.ndarray:
    """Boolean mask of pivot rows: the extreme of the 2·span+1 candles centred on them."""
    mask = np.zeros(len(values), dtype=bool)
    if len(values) < 2 * span + 1:
        return mask
    windows = sliding_window_view(values, 2 * span + 1)
    extreme = windows.max(axis=1) if highs else windows.min(axis=1)
    mask[span : len(values) - span] = values[span : len(values) - span] == extreme
    return mask


def _clusters(prices: np.ndarray, tol: float, max_width: float) -> list[np.ndarray]:
    ordered = np.sort(prices)
    groups, start = [], 0
    for i in range(1, len(ordered) + 1):
        if i == len(ordered) or ordered[i] - ordered[i - 1] > tol or ordered[i] - ordered[start] > max_width:
            groups.append(ordered[start:i])
            start = i
    return groups


def _round_step(price: float) -> float:
    return 10.0 ** (np.floor(np.log10(price)) - 1)


class LevelHistory:
    """The level sets of one candle history, computed on demand per recompute boundary.

    Built once per frame (vectorised pivots and true ranges); `at(time)` answers with the set
    in force at a candle, computed only from candles up to the last boundary at or before it.
    """

    def __init__(self, frame: pd.DataFrame, *, timeframe_ns: int, params: LevelParams | None = None):
        self.params = params or LevelParams()
        index = frame.index
        if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
            raise ValueError("candle frame must be indexed by a timezone-aware DatetimeIndex of open times")
        # Open times as int64 nanoseconds since the epoch (UTC): the arithmetic below stays in integers.
        self.times = index.tz_convert("UTC").as_unit("ns").asi8
        self.open, self.high, self.low, self.close = (frame[name].to_numpy(dtype="float64") for name in ("open", "high", "low", "close"))
        self.true_range = _true_range(self.high, self.low, self.close)
        self.pivot_high = _pivots(self.high, self.params.pivot_span, highs=True)
        self.pivot_low = _pivots(self.low, self.params.pivot_span, highs=False)
        self.period = int(timeframe_ns) * self.params.recompute_every
        self.window = pd.Timedelta(self.params.window).value
        self._cache: dict[int, LevelSet | None] = {}

    def covers(self, time: datetime | pd.Timestamp) -> bool:
        """Whether the history reaches `time` (a candle after its last row needs a newer frame)."""
        return len(self.times) > 0 and self.times[0] <= pd.Timestamp(time).value <= self.times[-1]

    def boundary(self, time: datetime | pd.Timestamp) -> int:
        """The last recompute boundary at or before `time` (epoch-aligned), in ns since the epoch."""
        moment = pd.Timestamp(time).as_unit("ns").value
        return moment // self.period * self.period

    def at(self, time: datetime | pd.Timestamp) -> LevelSet | None:
        """The level set in force at the candle opening at `time`; None with too little history."""
        boundary = self.boundary(time)
        if boundary not in self._cache:
            # Only the latest set is ever asked for again as candles advance; keep memory flat.
            self._cache = {boundary: self._compute(boundary)}
        return self._cache[boundary]

    def _compute(self, boundary: int) -> LevelSet | None:
        p = self.params
        last = int(np.searchsorted(self.times, boundary, side="right")) - 1
        first = int(np.searchsorted(self.times, boundary - self.window, side="right"))
        if self.times[0] >= boundary - self.window or last - first + 1 < 4 * p.pivot_span + p.bounce_candles:
            return None  # the window (and the close before it) is not covered: a partial one would differ
        rows = slice(first, last + 1)
        high, low, open_ = self.high[rows], self.low[rows], self.open[rows]
        unit = float(self.true_range[rows].mean())
        if not unit > 0:
            return None

        span = p.pivot_span
        usable = np.zeros(last - first + 1, dtype=bool)
        usable[span : last - first + 1 - span] = True  # pivot window inside the set's window, confirmed by `last`
        pivots = np.concatenate((high[self.pivot_high[rows] & usable], low[self.pivot_low[rows] & usable]))
        if len(pivots) == 0:
            return None
        tol = p.cluster_atr * unit
        prices = np.array([group.mean() for group in _clusters(pivots, tol, p.max_cluster_tols * tol)])

        # Levels × candles. A candle tests a level when its range reaches within touch_tol and its
        # body stays on one side; a body across the level is a break, and the level did not hold.
        touch_tol = p.touch_atr * unit
        close = self.close[rows]
        near = (low[None, :] <= prices[:, None] + touch_tol) & (high[None, :] >= prices[:, None] - touch_tol)
        crossed = (open_[None, :] - prices[:, None]) * (close[None, :] - prices[:, None]) < 0
        held = near & ~crossed
        starts = held & ~np.concatenate((np.zeros((len(prices), 1), dtype=bool), held[:, :-1]), axis=1)
        touches = starts.sum(axis=1)
        breaks = crossed.sum(axis=1)

        # Bounces: the best move away within the next bounce_candles candles that have closed.
        n = p.bounce_candles
        padded_high = np.concatenate((high[1:], np.full(n, -np.inf)))
        padded_low = np.concatenate((low[1:], np.full(n, np.inf)))
        future_high = sliding_window_view(padded_high, n).max(axis=1)
        future_low = sliding_window_view(padded_low, n).min(axis=1)
        from_above = open_[None, :] >= prices[:, None]
        distance = p.bounce_atr * unit
        bounced = starts & np.where(
            from_above, future_high[None, :] >= prices[:, None] + distance, future_low[None, :] <= prices[:, None] - distance
        )
        follow_up_over = np.arange(first, last + 1) + n <= last
        decided = starts & (bounced | follow_up_over[None, :])
        bounces, decided_count = bounced.sum(axis=1), decided.sum(axis=1)
        bounce_rate = np.divide(bounces, decided_count, out=np.zeros(len(prices)), where=decided_count > 0)

        # The last test of each level (argmax on the reversed row finds the last True).
        width = last - first + 1
        last_near = width - 1 - np.argmax(held[:, ::-1], axis=1)
        keep = touches >= p.min_touches
        recency = 0.5 ** ((width - 1 - last_near) / p.recency_half_life)
        magnets = self._magnets(prices, first, last, p.magnet_atr * unit)
        strength = np.minimum(
            1.0,
            0.3 * (1 - np.exp(-touches / 3.0))
            + 0.3 * (bounces + 1) / (decided_count + 2)
            + 0.25 * (touches + 1) / (touches + breaks + 2)
            + 0.15 * recency
            + p.magnet_bonus * np.array([len(found) for found in magnets]),
        )
        return LevelSet(
            computed_at=pd.Timestamp(self.times[last], tz="UTC"),
            tolerance=unit,
            price=prices[keep],
            is_support=prices[keep] < self.close[last],
            touches=touches[keep],
            bounces=bounces[keep],
            bounce_rate=bounce_rate[keep],
            last_test_time=self.times[first + last_near[keep]],
            last_test_row=first + last_near[keep],
            strength=strength[keep],
            magnets=[found for found, kept in zip(magnets, keep) if kept],
        )

    def _magnets(self, prices: np.ndarray, first: int, last: int, tol: float) -> list[list[dict]]:
        """Per level, the magnets within `tol`: round numbers, previous day/week high/low, Fibonacci."""
        candidates: list[tuple[str, float]] = []
        now = pd.Timestamp(self.times[last], tz="UTC")
        times = self.times[first : last + 1]
        for name, start in (("day", now.floor("D") - pd.Timedelta(days=1)), ("week", now.floor("D") - pd.Timedelta(days=now.day_of_week + 7))):
            end = start + (pd.Timedelta(days=1) if name == "day" else pd.Timedelta(days=7))
            inside = (times >= start.value) & (times < end.value)
            if inside.any():
                candidates.append((f"previous_{name}_high", float(self.high[first : last + 1][inside].max())))
                candidates.append((f"previous_{name}_low", float(self.low[first : last + 1][inside].min())))
        swing = slice(max(first, last - self.params.fib_lookback + 1), last + 1)
        swing_high, swing_low = self.high[swing].max(), self.low[swing].min()
        rising = np.argmax(self.high[swing]) > np.argmin(self.low[swing])
        for ratio in FIB_RATIOS:
            # A retracement runs back from the swing's end toward its start.
            level = swing_high - ratio * (swing_high - swing_low) if rising else swing_low + ratio * (swing_high - swing_low)
            candidates.append((f"fibonacci_{ratio:.3f}", float(level)))

        found: list[list[dict]] = []
        for price in prices:
            step = _round_step(price)
            nearest_round = round(price / step) * step
            near = [{"kind": "round_number", "price": float(nearest_round)}] if abs(price - nearest_round) <= tol else []
            near += [{"kind": kind, "price": level} for kind, level in candidates if abs(price - level) <= tol]
            found.append(near)
        return found
