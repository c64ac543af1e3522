"""build_features: causal (row t never changes when later candles arrive), finite once ready, scale-free."""
import numpy as np
import pandas as pd
import pytest

from learning.ml.schema import FEATURE_SCHEMA_V1
from trading.features.builder import HISTORY_CANDLES, WARMUP_CANDLES, build_features, feature_dict
from trading.features.indicators import TECHNICAL_FEATURES

CHECKED_ROWS = (0, 150, WARMUP_CANDLES - 1, WARMUP_CANDLES, 1000, 5000, 9999, 14321, 17519)


@pytest.fixture(scope="module")
def btc_features(btc):
    return build_features(btc)


@pytest.fixture(scope="module")
def eth_features(eth):
    return build_features(eth)


def test_technical_names_are_the_start_of_the_shared_schema(btc_features):
    assert TECHNICAL_FEATURES == FEATURE_SCHEMA_V1.names[:27]
    assert list(btc_features.columns) == [*FEATURE_SCHEMA_V1.names[:27], "market_regime", "volatility_regime", "ready"]


@pytest.mark.parametrize("row", CHECKED_ROWS)
def test_row_t_is_identical_whether_or_not_later_candles_exist(btc, btc_features, row):
    prefix = build_features(btc.iloc[: row + 1])
    # Exact equality (NaN equal to NaN), regimes and readiness included.
    pd.testing.assert_series_equal(prefix.iloc[row], btc_features.iloc[row], check_exact=True)


def test_a_live_window_of_history_candles_gives_the_replay_values(btc, btc_features):
    # A tick that loads only the last HISTORY_CANDLES candles sees what a replay over all history sees.
    for row in (HISTORY_CANDLES + 500, 9000, 17519):
        window = build_features(btc.iloc[row + 1 - HISTORY_CANDLES : row + 1]).iloc[-1]
        full = btc_features.iloc[row]
        np.testing.assert_allclose(window[list(TECHNICAL_FEATURES)].astype(float), full[list(TECHNICAL_FEATURES)].astype(float), rtol=1e-7, atol=1e-10)
        assert (window["market_regime"], window["volatility_regime"], window["ready"]) == (full["market_regime"], full["volatility_regime"], True)


@pytest.mark.parametrize("fixture", ["btc_features", "eth_features"])
def test_warm_up_rows_are_not_ready_and_every_ready_row_is_finite(request, fixture):
    features = request.getfixturevalue(fixture)
    assert not features["ready"].iloc[:WARMUP_CANDLES].any()
    assert features["ready"].iloc[WARMUP_CANDLES:].all()
    ready = features.loc[features["ready"], list(TECHNICAL_FEATURES)].to_numpy()
    assert np.isfinite(ready).all()
    assert set(features.loc[features["ready"], "market_regime"]) == {"trending_up", "trending_down", "ranging"}
    assert set(features.loc[features["ready"], "volatility_regime"]) == {"low", "medium", "high"}


def test_prices_times_1000_give_the_same_features(btc, btc_features):
    scaled = btc.copy()
    scaled[["open", "high", "low", "close"]] *= 1000
    rescaled = build_features(scaled)
    np.testing.assert_allclose(
        rescaled[list(TECHNICAL_FEATURES)].to_numpy(), btc_features[list(TECHNICAL_FEATURES)].to_numpy(), rtol=1e-7, atol=1e-10
    )
    agree = (rescaled[["market_regime", "volatility_regime", "ready"]] == btc_features[["market_regime", "volatility_regime", "ready"]]).mean()
    assert (agree > 0.999).all()  # a value sitting exactly on a threshold may tip either way


def test_btc_and_eth_feature_distributions_are_comparable(btc_features, eth_features):
    btc_ready = btc_features.loc[btc_features["ready"], list(TECHNICAL_FEATURES)]
    eth_ready = eth_features.loc[eth_features["ready"], list(TECHNICAL_FEATURES)]
    btc_spread = btc_ready.quantile(0.75) - btc_ready.quantile(0.25)
    eth_spread = eth_ready.quantile(0.75) - eth_ready.quantile(0.25)
    # Scale-free features of two markets sit in the same place with similar spread (ETH is livelier).
    assert ((btc_ready.median() - eth_ready.median()).abs() <= 0.5 * btc_spread).all()
    assert ((eth_spread / btc_spread).between(0.5, 2.5)).all()


def test_feature_dict_gives_floats_the_schema_accepts(btc_features):
    features = feature_dict(btc_features.iloc[5000])
    assert list(features) == list(TECHNICAL_FEATURES)
    assert all(type(value) is float for value in features.values())
    vector = FEATURE_SCHEMA_V1.vector({**features, "side": 1, "signal_strength": 0.7, "is_profit_scraping": 0})
    assert vector.shape == (30,)
    with pytest.raises(ValueError, match="features not finite .*sma_200_dist"):
        feature_dict(btc_features.iloc[100])
