"""The walk-forward study: it never learns from an outcome that was unknown at a decision, and shuffled labels show no skill."""
import numpy as np
import pandas as pd
import pytest

from operations.research.features import feature_frame
from learning.ml.weights import average_uniqueness
from operations.research.study import StudyConfig, run_study, running_base_rate

pytestmark = pytest.mark.slow

START, END = pd.Timestamp("2022-07-01", tz="UTC"), pd.Timestamp("2024-01-01", tz="UTC")


def config(**overrides) -> StudyConfig:
    return StudyConfig(**{"learner": "logistic", "groups": ("recent", "signal", "plan"), "start": START, "end": END, "min_train": 150, "bootstrap": 50, **overrides})


def test_the_dataset_holds_every_signal_with_its_plan_and_an_outcome_known_after_it(signals):
    assert set(signals["system"]) == {"paper_trading", "profit_scraping"}
    assert (signals["known_time"] > signals["decision_time"]).all()
    assert (signals["entry_time"] >= signals["decision_time"]).all()
    assert signals["is_shadow"].any() and (~signals["is_shadow"]).any()
    assert (signals["success"] == (signals["pnl_pct"] > 0)).all()
    assert signals[["stop_pct", "target_pct", "fee_rate"]].gt(0).all().all()


def test_every_fit_trains_only_on_outcomes_known_an_embargo_before_the_decisions_it_predicts(signals):
    result = run_study(signals, config())
    fitted = [fit for fit in result.fits if fit.train_rows >= 150]
    assert len(fitted) >= 20  # monthly, both systems
    for fit in result.fits:
        assert fit.latest_known_time is None or fit.latest_known_time <= fit.retrain_time - pd.Timedelta(hours=24)
        assert fit.earliest_decision_time >= fit.retrain_time


def test_truncating_the_data_after_t_leaves_every_prediction_before_t_unchanged(signals):
    """What was known at t is the signals decided by t whose outcomes were known by t; nothing later may matter."""
    cut = pd.Timestamp("2023-03-15 12:00", tz="UTC")
    full = run_study(signals, config()).predictions
    truncated_data = signals[(signals["decision_time"] <= cut) & (signals["known_time"] <= cut)]
    truncated = run_study(truncated_data, config(end=cut)).predictions
    key = ["system", "symbol", "decision_time"]
    merged = full.merge(truncated, on=key, suffixes=("_full", "_cut"))
    assert len(merged) == len(truncated) > 500
    # Equal to rounding: predicting a longer batch may sum a dot product in another order (1e-16).
    np.testing.assert_allclose(merged["probability_full"], merged["probability_cut"], rtol=1e-12, atol=0)
    np.testing.assert_array_equal(merged["base_rate_full"], merged["base_rate_cut"])
    # The test has teeth: the full data holds outcomes the cut lacks, known after t.
    assert (signals["known_time"] > cut).sum() > len(merged) / 2


def test_recent_record_features_read_only_outcomes_that_exited_before_the_decided_candle(signals):
    recent = feature_frame(signals, ("recent",))
    for position in np.random.default_rng(0).choice(len(signals), 40, replace=False):
        row = signals.iloc[position]
        earlier = signals[(signals["system"] == row["system"]) & (signals["exit_time"] < row["candle_time"])]
        assert recent.iloc[position]["recent_system_count"] == min(len(earlier), 50)
        later = earlier.sort_values(["exit_time", "entry_time"]).tail(20)
        if len(later):
            assert recent.iloc[position]["recent_system_win_20"] == pytest.approx(later["success"].mean())


def test_shuffled_labels_give_no_skill(signals):
    result = run_study(signals, config(learner="logistic", groups=("technical", "signal", "signed", "plan", "recent"), shuffle_seed=7))
    for system, scores in result.scores.iterrows():
        assert abs(scores["auc"] - 0.5) < 3 * scores["auc_se"] + 0.01, system
        assert scores["prob_lift"] < 3 * scores["prob_lift_se"], system
        assert scores["brier_skill"] < 0.01, system


def test_average_uniqueness_by_hand():
    hour = pd.Timedelta(hours=1)
    t0 = pd.Timestamp("2022-01-01", tz="UTC")
    entry = pd.Series([t0, t0 + hour, t0, t0 + 10 * hour])
    exit_ = pd.Series([t0 + hour, t0 + 2 * hour, t0 + hour, t0 + 10 * hour])
    symbol = pd.Series(["BTC", "BTC", "ETH", "BTC"])
    # BTC hours 0,1,2 hold trades {0}, {0,1}, {1}: trade 0 = (1 + 1/2)/2, trade 1 = (1/2 + 1)/2; ETH and the late one stand alone.
    raw = np.array([0.75, 0.75, 1.0, 1.0])
    np.testing.assert_allclose(average_uniqueness(entry.to_numpy(), exit_.to_numpy(), symbol.to_numpy()), raw / raw.mean())
    # Aware datetimes, as the store gives them, weigh the same.
    np.testing.assert_allclose(average_uniqueness(list(entry.dt.to_pydatetime()), list(exit_.dt.to_pydatetime()), list(symbol)), raw / raw.mean())


def test_running_base_rate_counts_only_outcomes_known_by_each_decision():
    known = np.array(["2022-01-01T01", "2022-01-01T02", "2022-01-01T03"], dtype="datetime64[ns]")
    success = np.array([True, False, False])
    decided = np.array(["2022-01-01T00", "2022-01-01T01", "2022-01-01T02", "2022-01-02"], dtype="datetime64[ns]")
    np.testing.assert_allclose(running_base_rate(known, success, decided, prior=0.4), [0.4, 1.0, 0.5, 1 / 3])
