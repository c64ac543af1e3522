"""Batch model: time-ordered split, calibration, evaluation, importance and an exact fast path."""

import math

import numpy as np
import pytest

from learning.ml.batch import (
    PERMUTATION_REPEATS,
    SYSTEM_COLUMN,
    SystemSplitModel,
    _permuted_block,
    _permuted_linear_scores,
    _permuted_tree_scores,
    batch_model_from_state,
    evaluate,
    train_batch_model,
)
from learning.ml.metrics import log_loss as metrics_log_loss
from learning.ml.metrics import roc_auc as metrics_roc_auc
from learning.ml.schema import FEATURE_SCHEMA
from learning.ml.serialization import dump_estimator, load_estimator
from tests.learning.ml.synthetic import synthetic_trades


@pytest.fixture(scope="module")
def trades():
    return synthetic_trades(1500, seed=21)


@pytest.fixture(scope="module")
def hgb_result(trades):
    X, y, times = trades
    return train_batch_model(X, y, times, kind="hgb")


def test_newer_trades_validate_and_older_ones_train_even_when_given_out_of_order(trades):
    X, y, times = trades
    shuffled = np.random.default_rng(0).permutation(len(y))
    result = train_batch_model(X[shuffled], y[shuffled], times[shuffled], kind="logistic")
    validation_times = times[shuffled][result.validation_rows]
    training_mask = np.ones(len(y), dtype=bool)
    training_mask[result.validation_rows] = False
    assert validation_times.min() > times[shuffled][training_mask].max()
    assert result.validation_start > result.train_end
    assert result.validation_end == times.max() and result.train_start == times.min()
    assert (result.train_size, result.validation_size) == (1200, 300)
    # Validation rows come in time order: the window is a contiguous, unshuffled stretch.
    assert np.all(np.diff(validation_times) > 0)


def test_trades_closing_at_the_same_time_never_straddle_the_split(trades):
    X, y, _ = trades
    hourly_in_pairs = np.repeat(np.arange(len(y) // 2), 2).astype(float)
    result = train_batch_model(X, y, hourly_in_pairs[: len(y)], validation_fraction=0.2003, kind="logistic")
    training_mask = np.ones(len(y), dtype=bool)
    training_mask[result.validation_rows] = False
    assert hourly_in_pairs[result.validation_rows].min() > hourly_in_pairs[training_mask].max()


@pytest.mark.parametrize("kind", ["hgb", "logistic"])
def test_batch_model_learns_and_reports_validation_metrics(kind, trades, hgb_result):
    X, y, times = trades
    result = hgb_result if kind == "hgb" else train_batch_model(X, y, times, kind=kind)
    assert result.metrics["log_loss"] < math.log(2) - 0.03
    assert result.metrics["roc_auc"] > 0.65
    assert set(result.metrics) >= {"log_loss", "brier", "accuracy", "roc_auc", "ece"}


def test_feature_importance_ranks_the_features_that_drive_outcomes_first(hgb_result):
    importance = hgb_result.feature_importance
    assert list(importance) == list(FEATURE_SCHEMA.names)
    ranked = sorted(importance, key=importance.get, reverse=True)
    assert {"roc_4", "atr_pct"} <= set(ranked[:3])
    assert importance["roc_4"] > 10 * abs(importance["weekday_sin"])


@pytest.mark.parametrize("kind", ["hgb", "logistic"])
@pytest.mark.parametrize("calibration", ["sigmoid", "isotonic"])
def test_fast_path_equals_sklearn(kind, calibration, trades):
    X, y, times = trades
    model = train_batch_model(X, y, times, kind=kind, calibration=calibration).model
    rows = X[:300].copy()
    if kind == "hgb":
        rows[:10, :5] = np.nan  # missing values follow each split's learned default direction
    fast = np.array([model.predict_one(row) for row in rows])
    np.testing.assert_allclose(fast, model.predict_proba(rows)[:, 1], rtol=0, atol=1e-9)


def test_evaluate_scores_a_champion_on_the_challengers_window(trades, hgb_result):
    X, y, times = trades
    champion = train_batch_model(X[:1000], y[:1000], times[:1000], kind="logistic").model
    window = hgb_result.validation_rows
    scores = evaluate(champion, X[window], y[window])
    assert scores["n"] == hgb_result.validation_size
    probabilities = champion.predict_proba(X[window])[:, 1]
    likelihood = np.where(y[window] == 1, probabilities, 1 - probabilities)
    assert scores["log_loss"] == pytest.approx(-np.mean(np.log(likelihood)))


def test_training_is_deterministic(trades, hgb_result):
    X, y, times = trades
    again = train_batch_model(X, y, times, kind="hgb")
    np.testing.assert_array_equal(again.model.predict_proba(X[:200]), hgb_result.model.predict_proba(X[:200]))
    assert again.metrics == hgb_result.metrics and again.feature_importance == hgb_result.feature_importance


def test_too_few_trades_or_a_single_class_is_refused(trades):
    X, y, times = trades
    with pytest.raises(ValueError, match="at least 70 are needed"):
        train_batch_model(X[:60], y[:60], times[:60])
    with pytest.raises(ValueError, match="only wins"):
        train_batch_model(X[:200], np.ones(200, dtype=int), times[:200])
    with pytest.raises(ValueError, match="unknown batch model kind"):
        train_batch_model(X, y, times, kind="forest")


def _permuted_scores(model, X, permutations):
    """What the shortcuts must equal: every permuted copy of X scored by the whole model."""
    return [[model.raw_scores(_permuted_block(X, column, [values])) for values in permuted] for column, permuted in enumerate(permutations)]


def _permutations(validation):
    rng = np.random.default_rng(5)
    return [[rng.permutation(validation[:, column]) for _ in range(PERMUTATION_REPEATS)] for column in range(validation.shape[1])]


def test_permuted_copies_scored_only_by_the_trees_that_split_on_them_score_as_the_whole_model(trades, hgb_result):
    X, y, _ = trades
    validation = X[hgb_result.validation_rows]
    permutations = _permutations(validation)
    shortcut = _permuted_tree_scores(hgb_result.model.estimator, validation, permutations)
    whole = _permuted_scores(hgb_result.model, validation, permutations)
    unused = [column for column in range(X.shape[1]) if all(np.array_equal(scores, hgb_result.model.raw_scores(validation)) for scores in whole[column])]
    assert len(unused) < X.shape[1] - 5  # most columns do move the scores when shuffled
    for column in range(X.shape[1]):
        for fast, full in zip(shortcut[column], whole[column]):
            np.testing.assert_allclose(fast, full, rtol=0, atol=1e-12)


def test_permuted_copies_of_a_linear_model_score_by_one_weight_as_the_whole_model(trades):
    X, y, times = trades
    result = train_batch_model(X, y, times, kind="logistic")
    validation = X[result.validation_rows]
    permutations = _permutations(validation)
    shortcut = _permuted_linear_scores(result.model.estimator, validation, permutations)
    whole = _permuted_scores(result.model, validation, permutations)
    assert all(not np.array_equal(scores, result.model.raw_scores(validation)) for scores in whole[0])
    for column in range(X.shape[1]):
        for fast, full in zip(shortcut[column], whole[column]):
            np.testing.assert_allclose(fast, full, rtol=0, atol=1e-9)


def test_logistic_regularisation_is_chosen_on_the_training_window_alone(trades):
    from learning.ml.batch import LOGISTIC_C_GRID

    X, y, times = trades
    result = train_batch_model(X, y, times, kind="logistic")
    chosen = result.model.estimator[-1].C
    assert chosen in LOGISTIC_C_GRID
    # The newest trades (calibration and validation) take no part in the choice.
    flipped = y.copy()
    flipped[result.validation_rows] = 1 - flipped[result.validation_rows]
    assert train_batch_model(X, flipped, times, kind="logistic").model.estimator[-1].C == chosen


def test_the_served_model_learns_every_trade_and_is_calibrated_and_scored_by_a_fit_that_had_not_seen_the_newest(trades):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from learning.ml.batch import _cross_fitted, _fit_calibration

    X, y, times = trades
    result = train_batch_model(X, y, times, kind="logistic")
    C, validation = result.model.estimator[-1].C, result.validation_rows
    train = np.setdiff1d(np.argsort(times, kind="stable"), validation, assume_unique=True)
    older = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000)).fit(X[train], y[train])
    every = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000)).fit(X[np.concatenate([train, validation])], y[np.concatenate([train, validation])])
    np.testing.assert_allclose(result.model.estimator[-1].coef_, every[-1].coef_, rtol=0, atol=1e-6)
    assert not np.allclose(result.model.estimator[-1].coef_, older[-1].coef_, rtol=0, atol=1e-3)
    # Calibration and the reported scores come from the older trades' fit scoring the newest.
    held_out_scores = older.decision_function(X[validation])
    expected = _fit_calibration(held_out_scores, y[validation], "sigmoid")
    assert result.model.calibration == pytest.approx(expected)
    np.testing.assert_allclose(result.validation_probabilities, _cross_fitted(held_out_scores, y[validation], "sigmoid"), rtol=0, atol=1e-6)
    assert result.metrics["log_loss"] == pytest.approx(metrics_log_loss(y[validation], result.validation_probabilities))


def test_logistic_features_that_carry_nothing_get_strong_regularisation():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(1500, len(FEATURE_SCHEMA.names)))
    y = (rng.random(1500) < 0.4).astype(int)
    result = train_batch_model(X, y, np.arange(1500), kind="logistic")
    assert result.model.estimator[-1].C <= 0.01


def _two_systems(n: int, *, scraping_share: float = 0.5, seed: int = 3):
    """Trades of two systems on which the same feature means opposite things: a win in paper trading, a loss in scraping."""
    rng = np.random.default_rng(seed)
    names = FEATURE_SCHEMA.names
    X = rng.normal(size=(n, len(names)))
    scraping = rng.random(n) < scraping_share
    X[:, names.index(SYSTEM_COLUMN)] = scraping.astype(float)
    signal = X[:, 0] * np.where(scraping, -1.5, 1.5)
    y = (rng.random(n) < 1 / (1 + np.exp(-signal))).astype(int)
    return X, y, np.arange(n, dtype=float), scraping


def test_a_model_per_system_learns_what_a_feature_means_in_each_system():
    X, y, times, scraping = _two_systems(3000)
    pooled = train_batch_model(X, y, times, kind="logistic")
    split = train_batch_model(X, y, times, kind="logistic", per_system=True)
    assert isinstance(split.model, SystemSplitModel) and set(split.model.parts) == {"paper_trading", "profit_scraping"}
    # One linear model cannot tell the systems' opposite readings apart; one per system can.
    assert pooled.metrics["roc_auc"] < 0.6 < 0.7 < split.metrics["roc_auc"]
    validation = split.validation_rows
    for rows in (validation[scraping[validation]], validation[~scraping[validation]]):
        probabilities = split.model.predict_proba(X[rows])[:, 1]
        assert metrics_roc_auc(y[rows], probabilities) > 0.7
        # Each row is served by its own system's model, one at a time or all together.
        assert np.allclose([split.model.predict_one(x) for x in X[rows[:20]]], probabilities[:20])
    assert split.feature_importance[FEATURE_SCHEMA.names[0]] == max(split.feature_importance.values())


def test_a_system_with_too_few_trades_of_its_own_is_served_by_the_pooled_model():
    X, y, times, scraping = _two_systems(1500, scraping_share=0.02)
    result = train_batch_model(X, y, times, kind="logistic", per_system=True)
    assert set(result.model.parts) == {"paper_trading"}
    rows = np.flatnonzero(scraping)
    assert np.allclose(result.model.predict_proba(X[rows])[:, 1], result.model.pooled.predict_proba(X[rows])[:, 1])


def test_a_model_per_system_survives_its_artifact():
    X, y, times, _ = _two_systems(1500)
    model = train_batch_model(X, y, times, kind="logistic", per_system=True).model
    artifact = dump_estimator(model.get_state())
    restored = batch_model_from_state(load_estimator(artifact.blob, sha256=artifact.sha256, sklearn_version=artifact.sklearn_version))
    assert isinstance(restored, SystemSplitModel) and set(restored.parts) == set(model.parts)
    assert np.array_equal(restored.predict_proba(X), model.predict_proba(X))


def test_sample_weights_decide_what_the_model_learns_from():
    X, y, times = synthetic_trades(1500, seed=4)
    flipped = y.copy()
    noise = np.arange(len(y)) % 2 == 1
    flipped[noise] = 1 - flipped[noise]  # every other trade's label is wrong
    plain = train_batch_model(X, flipped, times, kind="logistic")
    weighted = train_batch_model(X, flipped, times, kind="logistic", sample_weight=np.where(noise, 1e-6, 1.0))
    truth = y[weighted.validation_rows]
    assert metrics_roc_auc(truth, weighted.model.predict_proba(X[weighted.validation_rows])[:, 1]) > 0.65
    assert metrics_roc_auc(truth, plain.model.predict_proba(X[plain.validation_rows])[:, 1]) < 0.6
    with pytest.raises(ValueError, match="sample_weight"):
        train_batch_model(X, y, times, sample_weight=np.ones(3))


def test_a_system_with_every_trade_is_served_by_the_pooled_fit_not_a_second_one():
    X, y, times, _ = _two_systems(1500, scraping_share=0.0)
    result = train_batch_model(X, y, times, kind="logistic", per_system=True)
    assert result.model.parts["paper_trading"] is result.model.pooled
    alone = train_batch_model(X, y, times, kind="logistic")
    assert np.array_equal(result.model.predict_proba(X), alone.model.predict_proba(X))
    assert result.feature_importance == alone.feature_importance and result.metrics == alone.metrics
