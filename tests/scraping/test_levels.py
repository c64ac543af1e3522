"""Price levels on real BTC candles: the zones 2022 respected, and no level that depends on a later candle."""
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from scraping.levels import LevelHistory, LevelParams

HOUR_NS = 3_600_000_000_000


def history(frame, params=None) -> LevelHistory:
    return LevelHistory(frame, timeframe_ns=HOUR_NS, params=params)


@pytest.fixture(scope="module")
def btc_2022_levels(btc_frame):
    levels = history(btc_frame)
    sets = [levels.at(day) for day in pd.date_range("2022-01-01", "2022-12-31", freq="D", tz="UTC")]
    return [level_set for level_set in sets if level_set is not None]


def strong_levels_near(level_sets, zone: float, *, within=0.02, min_strength=0.85, min_touches=5) -> list[float]:
    return [
        float(level_set.price[i])
        for level_set in level_sets
        for i in range(len(level_set))
        if abs(level_set.price[i] / zone - 1) <= within
        and level_set.strength[i] >= min_strength
        and level_set.touches[i] >= min_touches
    ]


@pytest.mark.parametrize("zone", [20_000, 30_000, 40_000])
def test_strong_levels_in_2022_include_the_zones_btc_respected(btc_2022_levels, zone):
    # 40k held Jan–Apr, 30k was the May–June floor, 20k the June–October range: each must show
    # up as a strong, often-tested level at some point in the year.
    assert len(btc_2022_levels) > 330
    assert strong_levels_near(btc_2022_levels, zone)


def test_a_price_the_market_cut_through_is_not_a_strong_level(btc_2022_levels):
    # BTC passed 35k on the way down in May 2022 without pausing; nothing strong formed there.
    assert not strong_levels_near(btc_2022_levels, 35_000)


def test_levels_are_described_in_full(btc_frame, btc_2022_levels):
    level_set = btc_2022_levels[200]
    assert len(level_set) >= 5
    assert np.all((level_set.strength >= 0) & (level_set.strength <= 1))
    assert np.all(level_set.bounces <= level_set.touches) and np.all(level_set.touches >= LevelParams.from_settings().min_touches)
    assert np.all((level_set.bounce_rate >= 0) & (level_set.bounce_rate <= 1))
    assert np.all(level_set.last_test_time <= level_set.computed_at.value)
    last_close = btc_frame.loc[level_set.computed_at, "close"]
    for row in level_set.rows():
        assert (row["kind"] == "support") == (row["price"] < last_close)
        assert row["last_test_time"].tzinfo is not None
    magnet_kinds = {magnet["kind"] for level_set in btc_2022_levels for magnets in level_set.magnets for magnet in magnets}
    assert {"round_number", "previous_day_high", "previous_week_low", "fibonacci_0.618"} <= magnet_kinds


def assert_same_levels(first, second):
    assert first is not None and second is not None
    assert first.computed_at == second.computed_at and first.tolerance == second.tolerance
    for name in ("price", "is_support", "touches", "bounces", "bounce_rate", "last_test_time", "strength"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name), err_msg=name)
    assert first.magnets == second.magnets


@pytest.mark.parametrize(
    "moment",
    ["2022-03-14T00:00", "2022-05-10T13:00", "2022-06-18T23:00", "2022-11-09T07:00", "2023-06-01T00:00"],
)
def test_levels_at_t_equal_levels_from_history_truncated_at_t(btc_frame, moment):
    at = datetime.fromisoformat(moment).replace(tzinfo=UTC)
    full = history(btc_frame).at(at)
    truncated = history(btc_frame[btc_frame.index <= at]).at(at)
    assert_same_levels(full, truncated)
    # A worker that loaded only the last few weeks (a live tick) computes the same set too.
    recent = history(btc_frame[(btc_frame.index > at - timedelta(days=32)) & (btc_frame.index <= at)]).at(at)
    assert_same_levels(full, recent)


def test_a_pivot_counts_only_once_confirmed(btc_frame):
    # Raising every high after t would make new pivots before t if unconfirmed ones leaked in.
    at = datetime(2022, 7, 20, 0, tzinfo=UTC)
    altered = btc_frame.copy()
    later = altered.index > at
    altered.loc[later, "high"] *= 1.5
    assert_same_levels(history(btc_frame).at(at), history(altered).at(at))


def test_between_recomputes_the_last_set_stays_in_force(btc_frame):
    levels = history(btc_frame)
    midnight = datetime(2022, 8, 3, tzinfo=UTC)
    in_force = levels.at(midnight)
    assert in_force.computed_at == pd.Timestamp(midnight)
    for hour in (1, 12, 23):
        assert levels.at(midnight + timedelta(hours=hour)) is in_force
    assert levels.at(midnight + timedelta(hours=24)).computed_at == pd.Timestamp(midnight + timedelta(hours=24))


def test_too_little_history_gives_no_levels(btc_frame):
    first = btc_frame.index[0]
    assert history(btc_frame).at(first + timedelta(days=10)) is None
