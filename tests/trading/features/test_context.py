"""trading.features.context: the plan, side-signed indicators and the optional context groups, all causal."""
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from learning.ml.schema import FEATURE_RANGES_V2, PLAN_FEATURES, SIGNED_FEATURES, correlated_features, feature_range, higher_timeframe_features
from trading.features.builder import build_features
from trading.features.context import context_frame, correlated_frame, higher_timeframe_frame, plan_features, signed_features
from trading.features.indicators import compute_indicators

CUTS = (
    datetime(2022, 3, 14, 0, tzinfo=UTC),  # a 4h and a 1d candle have just closed
    datetime(2022, 3, 14, 2, tzinfo=UTC),  # inside a 4h candle
    datetime(2022, 6, 30, 21, tzinfo=UTC),  # the last hour of a day, before its daily candle closes
    datetime(2023, 1, 9, 13, tzinfo=UTC),
)


def test_plan_features_put_the_exits_in_atrs_and_fees():
    plan = plan_features(stop_distance_pct=0.02, target_distance_pct=0.03, max_holding_minutes=None, atr_pct=0.01, fee_rate=0.001)
    assert plan["plan_stop_atr"] == pytest.approx(2.0) and plan["plan_target_atr"] == pytest.approx(3.0)
    assert plan["plan_stop_fees"] == pytest.approx(0.02 / 0.002) and plan["plan_target_fees"] == pytest.approx(0.03 / 0.002)
    assert plan["plan_payoff_after_fees"] == pytest.approx((0.03 - 0.002) / (0.02 + 0.002))
    assert plan["plan_holding_hours"] == FEATURE_RANGES_V2["plan_holding_hours"][1]  # no limit: the cap
    limited = plan_features(stop_distance_pct=0.01, target_distance_pct=0.001, max_holding_minutes=90, atr_pct=0.01, fee_rate=0.001)
    assert limited["plan_holding_hours"] == 1.5
    assert limited["plan_payoff_after_fees"] < 0  # a target that does not cover the fees pays nothing
    free = plan_features(stop_distance_pct=0.01, target_distance_pct=0.02, max_holding_minutes=None, atr_pct=0.0, fee_rate=0.0)
    for name, value in free.items():
        low, high = FEATURE_RANGES_V2[name]
        assert low <= value <= high, name
    assert set(free) == set(PLAN_FEATURES)


def test_signed_features_mirror_between_long_and_short(btc_frame):
    row = build_features(btc_frame).iloc[5000]
    long, short = signed_features(row, 1.0), signed_features(row, -1.0)
    assert set(long) == set(SIGNED_FEATURES)
    for name in SIGNED_FEATURES:
        assert long[name] == -short[name]
    assert long["signed_rsi_14"] == pytest.approx(row["rsi_14"] - 50.0)
    assert long["signed_roc_12"] == row["roc_12"]


def _assert_same_rows(full: pd.DataFrame, cut: pd.DataFrame):
    assert list(full.columns) == list(cut.columns)
    np.testing.assert_array_equal(full.loc[cut.index].to_numpy(), cut.to_numpy())  # NaN where NaN, else exactly


@pytest.mark.parametrize("cut", CUTS)
def test_context_rows_do_not_change_when_later_candles_are_cut(btc_frame, eth_frame, cut):
    def context(btc, eth):
        return context_frame(eth, timeframe="1h", higher_timeframes=("4h", "1d"), correlated={"BTCUSDT": btc})

    full = context(btc_frame, eth_frame)
    cut_frame = context(btc_frame.loc[:cut], eth_frame.loc[:cut])
    assert len(cut_frame) == len(eth_frame.loc[:cut])
    _assert_same_rows(full, cut_frame)
    assert full.loc[:cut].iloc[-500:].notna().all().all()  # the check has teeth: the groups are filled by then


def test_a_higher_timeframe_row_reads_the_last_closed_candle(btc_frame):
    htf = higher_timeframe_frame(btc_frame, "4h")
    t = datetime(2022, 8, 10, 6, tzinfo=UTC)  # decided at 07:00: the 4h candle 00:00–04:00 is the last closed
    closed = btc_frame.loc[: datetime(2022, 8, 10, 3, tzinfo=UTC)]
    bins = closed[["open", "high", "low", "close", "volume"]].resample("4h").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    expected = compute_indicators(bins).iloc[-1]
    assert bins.index[-1] == datetime(2022, 8, 10, 0, tzinfo=UTC)
    for name, feature in zip(("rsi_14", "roc_1", "atr_pct"), ("htf_4h_rsi_14", "htf_4h_roc_1", "htf_4h_atr_pct")):
        assert htf.at[t, feature] == pytest.approx(expected[name], rel=1e-9)
    # At 03:00 the same bin closes with the hour: decided at 04:00, it is known; at 02:00 it is not.
    assert htf.at[datetime(2022, 8, 10, 3, tzinfo=UTC), "htf_4h_roc_1"] == htf.at[t, "htf_4h_roc_1"]
    assert htf.at[datetime(2022, 8, 10, 2, tzinfo=UTC), "htf_4h_roc_1"] != htf.at[t, "htf_4h_roc_1"]
    assert list(htf.columns) == list(higher_timeframe_features("4h"))


def test_correlated_features_are_the_other_symbols_indicators_at_the_same_candle(btc_frame, eth_frame):
    corr = correlated_frame(eth_frame, symbol="BTCUSDT", other=btc_frame)
    btc = compute_indicators(btc_frame)
    t = datetime(2022, 9, 1, 12, tzinfo=UTC)
    assert corr.at[t, "corr_btcusdt_roc_1"] == btc.at[t, "roc_1"]
    assert list(corr.columns) == list(correlated_features("BTCUSDT"))
    for name in corr.columns:
        low, high = feature_range(name)
        assert corr[name].dropna().between(low, high).all(), name


def test_optional_groups_off_add_no_columns(btc_frame):
    assert context_frame(btc_frame, timeframe="1h", higher_timeframes=(), correlated={}).shape == (len(btc_frame), 0)


def test_bad_group_names_are_refused():
    with pytest.raises(ValueError, match="3h"):
        higher_timeframe_features("3h")
    with pytest.raises(ValueError, match="BTC/USDT"):
        correlated_features("BTC/USDT")
