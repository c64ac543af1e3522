"""The feature schema: order, and refusal of missing, extra, non-finite or non-numeric features."""

import math
from decimal import Decimal

import numpy as np
import pytest

# The schema class is checked on v1 (whose names are fixed for good); v2 has its own tests below.
from learning.ml.schema import FEATURE_SCHEMA_V1 as FEATURE_SCHEMA
from learning.ml.schema import FeatureSchema, FeatureSchemaError

EXPECTED_NAMES = (
    "rsi_14 macd_line_pct macd_signal_pct macd_hist_pct roc_1 roc_4 roc_12 roc_24 stoch_k stoch_d "
    "williams_r adx_14 cci_20 atr_pct bb_pct_b bb_width ema_12_dist ema_26_dist sma_50_dist sma_200_dist "
    "obv_slope volume_ratio realized_vol_24 hour_sin hour_cos weekday_sin weekday_cos side "
    "signal_strength is_profit_scraping"
).split()


def complete_features() -> dict[str, float]:
    return {name: float(index) + 0.5 for index, name in enumerate(FEATURE_SCHEMA.names)}


def test_v1_schema_has_the_agreed_names_in_order():
    assert FEATURE_SCHEMA.version == "v1"
    assert FEATURE_SCHEMA.names == tuple(EXPECTED_NAMES)


def test_vector_follows_schema_order_whatever_the_mapping_order():
    features = complete_features()
    reversed_mapping = dict(reversed(list(features.items())))
    vector = FEATURE_SCHEMA.vector(reversed_mapping)
    assert vector.dtype == np.float64
    np.testing.assert_array_equal(vector, np.arange(30) + 0.5)


def test_numeric_types_from_the_trading_app_are_accepted():
    features = complete_features()
    features.update(side=-1, is_profit_scraping=True, signal_strength=Decimal("0.75"), rsi_14=np.float32(55.0))
    vector = FEATURE_SCHEMA.vector(features)
    assert vector[FEATURE_SCHEMA.names.index("side")] == -1.0
    assert vector[FEATURE_SCHEMA.names.index("is_profit_scraping")] == 1.0
    assert vector[FEATURE_SCHEMA.names.index("signal_strength")] == 0.75


def test_every_offending_feature_is_named_and_nothing_is_filled():
    features = complete_features()
    del features["rsi_14"]
    features["funding_rate"] = 0.01
    features["roc_1"] = math.nan
    features["atr_pct"] = math.inf
    features["side"] = "long"
    features["adx_14"] = None
    with pytest.raises(FeatureSchemaError) as caught:
        FEATURE_SCHEMA.vector(features)
    errors = caught.value.errors
    assert set(errors) == {"rsi_14", "funding_rate", "roc_1", "atr_pct", "side", "adx_14"}
    assert errors["rsi_14"] == "missing"
    assert "not in feature schema v1" in errors["funding_rate"]
    assert "finite" in errors["roc_1"] and "finite" in errors["atr_pct"]
    assert "not a number" in errors["side"] and "not a number" in errors["adx_14"]
    assert isinstance(caught.value, ValueError)
    assert "rsi_14" in str(caught.value)


def test_matrix_stacks_rows_and_names_the_first_bad_row():
    good = complete_features()
    bad = dict(good, stoch_k=math.nan)
    assert FEATURE_SCHEMA.matrix([good, good]).shape == (2, 30)
    assert FEATURE_SCHEMA.matrix([]).shape == (0, 30)
    with pytest.raises(FeatureSchemaError) as caught:
        FEATURE_SCHEMA.matrix([good, bad, bad])
    assert caught.value.errors == {"stoch_k": "row 1: not a finite number (nan)"}


def test_schema_refuses_repeated_names_and_serializes_for_model_versions():
    with pytest.raises(ValueError):
        FeatureSchema("bad", names=("rsi_14", "rsi_14"))
    assert FEATURE_SCHEMA.as_dict() == {"version": "v1", "names": EXPECTED_NAMES}


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"roc_1": math.nan}, {"roc_1"}),  # all floats, one not finite
        ({"atr_pct": -math.inf}, {"atr_pct"}),
        ({"side": "long"}, {"side"}),
    ],
)
def test_a_complete_plain_dict_with_one_bad_value_is_still_refused_naming_it(change, expected):
    features = {**complete_features(), **change}
    with pytest.raises(FeatureSchemaError) as caught:
        FEATURE_SCHEMA.vector(features)
    assert set(caught.value.errors) == expected


def test_a_plain_dict_of_the_right_size_with_a_wrong_name_is_refused_naming_both():
    features = complete_features()
    features["funding_rate"] = features.pop("rsi_14")
    with pytest.raises(FeatureSchemaError) as caught:
        FEATURE_SCHEMA.vector(features)
    assert caught.value.errors["rsi_14"] == "missing" and "funding_rate" in caught.value.errors


def test_v2_holds_v1_and_the_decision_time_groups_each_with_a_range():
    from learning.ml.schema import BASE_V2_FEATURES, FEATURE_SCHEMA_V1, FEATURE_SCHEMA_V2, feature_range
    from learning.recent import RECENT_FEATURES

    assert FEATURE_SCHEMA_V2.version == "v2"
    assert FEATURE_SCHEMA_V2.names[: len(FEATURE_SCHEMA_V1.names)] == FEATURE_SCHEMA_V1.names
    assert set(RECENT_FEATURES) < set(FEATURE_SCHEMA_V2.names) == set(BASE_V2_FEATURES)
    for name in FEATURE_SCHEMA_V2.names[len(FEATURE_SCHEMA_V1.names) :]:
        low, high = feature_range(name)
        assert low < high, name


def test_optional_groups_follow_the_settings(settings):
    from learning.ml.schema import FEATURE_SCHEMA_V2, current_feature_schema, feature_range

    assert current_feature_schema() == FEATURE_SCHEMA_V2
    settings.FEATURES_HIGHER_TIMEFRAMES, settings.FEATURES_CORRELATED_SYMBOLS = ["4h"], ["BTCUSDT"]
    schema = current_feature_schema()
    extra = schema.names[len(FEATURE_SCHEMA_V2.names) :]
    assert "htf_4h_rsi_14" in extra and "corr_btcusdt_roc_1" in extra
    assert all(feature_range(name) is not None for name in extra)
    # Stored with each model, the names say which groups it reads.
    assert schema.as_dict() != FEATURE_SCHEMA_V2.as_dict()


def test_models_are_trained_on_v2():
    from learning.ml import schema

    assert schema.FEATURE_SCHEMA.version == "v2" and schema.current_feature_schema() == schema.FEATURE_SCHEMA_V2
