"""Support and resistance levels from confirmed pivots, clustered by ATR, scored, and strengthened by magnets.

How a level set is made (all constants are fields of `LevelParams`, from the SCRAPING_LEVEL_* settings):

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
from datetime import UTC, datetime, timedelta
from typing import Self

import numpy as np
import pandas as pd
from django.conf import settings
from numpy.lib.stride_tricks import sliding_window_view

FIB_RATIOS = (0.382, 0.5, 0.618)
DAY_NS = 86_400 * 10**9
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, kw_only=True)
class LevelParams:
    """How levels are found and scored (the module docstring names each); `from_settings` reads the configured ones."""

    pivot_span: int
    window: timedelta
    recompute_every: int
    cluster_atr: float
    max_cluster_tols: float
    touch_atr: float
    bounce_atr: float
    bounce_candles: int
    min_touches: int
    recency_half_life: float
    magnet_atr: float
    magnet_bonus: float
    fib_lookback: int

    @classmethod
    def from_settings(cls) -> Self:
        """The SCRAPING_LEVEL_* settings (tradelearn/settings/base.py, .env.example)."""
        return cls(
            pivot_span=settings.SCRAPING_LEVEL_PIVOT_SPAN,
            window=timedelta(days=settings.SCRAPING_LEVEL_WINDOW_DAYS),
            recompute_every=settings.SCRAPING_LEVEL_RECOMPUTE_EVERY,
            cluster_atr=settings.SCRAPING_LEVEL_CLUSTER_ATR,
            max_cluster_tols=settings.SCRAPING_LEVEL_MAX_CLUSTER_TOLS,
            touch_atr=settings.SCRAPING_LEVEL_TOUCH_ATR,
            bounce_atr=settings.SCRAPING_LEVEL_BOUNCE_ATR,
            bounce_candles=settings.SCRAPING_LEVEL_BOUNCE_CANDLES,
            min_touches=settings.SCRAPING_LEVEL_MIN_TOUCHES,
            recency_half_life=settings.SCRAPING_LEVEL_RECENCY_HALF_LIFE,
            magnet_atr=settings.SCRAPING_LEVEL_MAGNET_ATR,
            magnet_bonus=settings.SCRAPING_LEVEL_MAGNET_BONUS,
            fib_lookback=settings.SCRAPING_LEVEL_FIB_LOOKBACK,
        )


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
        columns = (self.price, self.is_support, self.touches, self.bounces, self.bounce_rate, self.last_test_time, self.strength)
        return [
            {
                "price": price,
                "kind": "support" if is_support else "resistance",
                "touches": touches,
                "bounces": bounces,
                "bounce_rate": bounce_rate,
                "last_test_time": utc_moment(last_test_time),
                "strength": strength,
                "magnets": magnets,
            }
            for (price, is_support, touches, bounces, bounce_rate, last_test_time, strength), magnets in zip(
                zip(*(column.tolist() for column in columns)), self.magnets
            )
        ]


def nanoseconds(moment: datetime) -> int:
    """A UTC-aware moment in nanoseconds since the epoch, to the microsecond (a datetime's precision)."""
    return (moment - EPOCH) // MICROSECOND * 1000


def utc_moment(time_ns: int) -> datetime:
    """Nanoseconds since the epoch as a UTC datetime, to the microsecond."""
    return EPOCH + time_ns // 1000 * MICROSECOND


def _true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    previous_close = np.concatenate(([np.nan], close[:-1]))
    # The first candle has no previous close: its range alone (np.fmax ignores the NaN).
    return np.fmax(high - low, np.fmax(np.abs(high - previous_close), np.abs(low - previous_close)))


def _ahead(values: np.ndarray, n: int, extreme: np.ufunc, empty: float) -> np.ndarray:
    """Row i, column k ≤ n: the extreme of values[i+1 : i+1+k], `empty` where there is none."""
    windows = sliding_window_view(np.concatenate((values[1:], np.full(n, empty))), n)  # row i: values[i+1 : i+1+n]
    return np.concatenate((np.full((len(values), 1), empty), extreme.accumulate(windows, axis=1)), axis=1)


def _pivots(values: np.ndarray, span: int, *, highs: bool) -> np.ndarray:
    """Boolean mask of pivot rows: the extreme of the 2·span+1 candles centred on them."""
    mask = np.zeros(len(values), dtype=bool)
    if len(values) < 2 * span + 1:
        return mask
    windows = sliding_window_view(values, 2 * span + 1)
    extreme = windows.max(axis=1) if highs else windows.min(axis=1)
    mask[span : len(values) - span] = values[span : len(values) - span] == extreme
    return mask


def _cluster_means(prices: np.ndarray, tol: float, max_width: float) -> np.ndarray:
    """The mean price of each cluster of `prices`, lowest first (see the module docstring)."""
    ordered = np.sort(prices)
    values = ordered.tolist()
    starts = [0]
    for i in range(1, len(values)):
        if values[i] - values[i - 1] > tol or values[i] - values[starts[-1]] > max_width:
            starts.append(i)
    sizes = np.diff([*starts, len(values)])
    sums = np.add.reduceat(ordered, starts)
    # Sums of three or more prices as ndarray.mean adds them (reduceat associates them differently).
    for cluster in np.flatnonzero(sizes > 2).tolist():
        sums[cluster] = np.add.reduce(ordered[starts[cluster] : starts[cluster] + sizes[cluster]])
    return sums / sizes


def _round_steps(prices: np.ndarray) -> np.ndarray:
    """Per price, the step of its round numbers: 10^(⌊log10 price⌋ − 1)."""
    # The powers one by one in scalar arithmetic: numpy's vectorised power can differ in the last bit.
    return np.array([10.0**exponent for exponent in (np.floor(np.log10(prices)) - 1).tolist()])


class LevelHistory:
    """The level sets of one candle history, computed on demand per recompute boundary.

    Built once per frame (vectorised pivots, true ranges and the extremes of the candles after
    each); `at(time)` answers with the set in force at a candle, computed only from candles up
    to the last boundary at or before it.
    """

    def __init__(self, frame: pd.DataFrame, *, timeframe_ns: int, params: LevelParams | None = None):
        self.params = params or LevelParams.from_settings()
        index = frame.index
        if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
            raise ValueError("candle frame must be indexed by a timezone-aware DatetimeIndex of open times")
        # Open times as int64 nanoseconds since the epoch (UTC): the arithmetic below stays in integers.
        self.times = index.tz_convert("UTC").as_unit("ns").asi8
        self.open, self.high, self.low, self.close = (frame[name].to_numpy(dtype="float64") for name in ("open", "high", "low", "close"))
        self.true_range = _true_range(self.high, self.low, self.close)
        self.body_low, self.body_high = np.minimum(self.open, self.close), np.maximum(self.open, self.close)
        self.pivot_high = _pivots(self.high, self.params.pivot_span, highs=True)
        self.pivot_low = _pivots(self.low, self.params.pivot_span, highs=False)
        self.next_high = _ahead(self.high, self.params.bounce_candles, np.maximum, -np.inf)
        self.next_low = _ahead(self.low, self.params.bounce_candles, np.minimum, np.inf)
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
        prices = _cluster_means(pivots, tol, p.max_cluster_tols * tol)

        # Levels × candles. A candle tests a level when its range reaches within touch_tol and its
        # body stays on one side; a body across the level is a break, and the level did not hold.
        touch_tol = p.touch_atr * unit
        level = prices[:, None]
        near = (low <= level + touch_tol) & (high >= level - touch_tol)
        crossed = (self.body_low[rows] < level) & (level < self.body_high[rows])
        held = near & ~crossed
        starts = held.copy()
        starts[:, 1:] &= ~held[:, :-1]
        width = last - first + 1
        tested, when = np.divmod(np.flatnonzero(starts), width)  # the level and the window row of every test
        touches = np.bincount(tested, minlength=len(prices))
        breaks = np.count_nonzero(crossed, axis=1)

        # Bounces, per test: the best move away within the next bounce_candles candles that have closed.
        n = p.bounce_candles
        tests, closed_after = first + when, np.minimum(n, last - first - when)  # frame rows; candles closed after each up to `last`
        future_high, future_low = self.next_high[tests, closed_after], self.next_low[tests, closed_after]
        test_price = prices[tested]
        distance = p.bounce_atr * unit
        bounced = np.where(open_[when] >= test_price, future_high >= test_price + distance, future_low <= test_price - distance)
        decided = bounced | (tests + n <= last)
        bounces = np.bincount(tested[bounced], minlength=len(prices))
        decided_count = np.bincount(tested[decided], minlength=len(prices))

        # The last test of each level (argmax on the reversed row finds the last True).
        last_near = width - 1 - np.argmax(held[:, ::-1], axis=1)

        # Levels tested too rarely are dropped; strength and magnets are only needed for the rest.
        keep = touches >= p.min_touches
        prices, touches, breaks, bounces, decided_count, last_near = (
            values[keep] for values in (prices, touches, breaks, bounces, decided_count, last_near)
        )
        bounce_rate = np.divide(bounces, decided_count, out=np.zeros(len(prices)), where=decided_count > 0)
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
            price=prices,
            is_support=prices < self.close[last],
            touches=touches,
            bounces=bounces,
            bounce_rate=bounce_rate,
            last_test_time=self.times[first + last_near],
            last_test_row=first + last_near,
            strength=strength,
            magnets=magnets,
        )

    def _magnets(self, prices: np.ndarray, first: int, last: int, tol: float) -> list[list[dict]]:
        """Per level, the magnets within `tol`: round numbers, previous day/week high/low, Fibonacci."""
        steps = _round_steps(prices)
        nearest_round = np.round(prices / steps) * steps
        is_round = np.abs(prices - nearest_round) <= tol
        found = [
            [{"kind": "round_number", "price": price}] if near else [] for price, near in zip(nearest_round.tolist(), is_round.tolist())
        ]
        candidates = self._magnet_candidates(first, last)
        near = np.abs(prices[:, None] - np.array([level for _, level in candidates])) <= tol
        for row, column in zip(*np.nonzero(near)):  # row by row, each in candidate order
            kind, level = candidates[column]
            found[row].append({"kind": kind, "price": level})
        return found

    def _magnet_candidates(self, first: int, last: int) -> list[tuple[str, float]]:
        """The previous UTC day's and ISO week's high and low, and the retracements of the last swing."""
        candidates: list[tuple[str, float]] = []
        now = int(self.times[last])
        today = now // DAY_NS * DAY_NS
        monday = today - (now // DAY_NS + 3) % 7 * DAY_NS  # 1970-01-01 was a Thursday
        times = self.times[first : last + 1]
        for name, start, end in (("day", today - DAY_NS, today), ("week", monday - 7 * DAY_NS, monday)):
            begin, stop = (first + np.searchsorted(times, (start, end))).tolist()
            if begin < stop:
                candidates.append((f"previous_{name}_high", float(self.high[begin:stop].max())))
                candidates.append((f"previous_{name}_low", float(self.low[begin:stop].min())))
        swing = slice(max(first, last - self.params.fib_lookback + 1), last + 1)
        highs, lows = self.high[swing], self.low[swing]
        swing_high, swing_low, rising = float(highs.max()), float(lows.min()), highs.argmax() > lows.argmin()
        for ratio in FIB_RATIOS:
            # A retracement runs back from the swing's end toward its start.
            level = swing_high - ratio * (swing_high - swing_low) if rising else swing_low + ratio * (swing_high - swing_low)
            candidates.append((f"fibonacci_{ratio:.3f}", level))
        return candidates
