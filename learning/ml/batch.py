"""Batch model retrained from all training records: time-ordered split, calibration, evaluation."""

# scikit-learn is imported where a model is fitted, not here: every command imports this module
# at start-up through the services, and scikit-learn alone costs ~1.5 s.
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from threadpoolctl import ThreadpoolController

from learning.ml import metrics
from learning.ml.online import expit, sigmoid
from learning.ml.schema import current_feature_schema
from learning.ml.serialization import Artifact, dump_estimator

if TYPE_CHECKING:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline

BatchKind = Literal["hgb", "logistic"]
CalibrationMethod = Literal["sigmoid", "isotonic"]

MIN_TRAINING_ROWS = 50
MIN_VALIDATION_ROWS = 20
PERMUTATION_REPEATS = 5
# The logistic model's inverse regularisation, chosen per retrain from these by the training
# window's own newest part (small C: strong regularisation; trade outcomes are mostly noise).
LOGISTIC_C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
C_SELECTION_FRACTION = 0.25

# Models are trained and evaluated on machines whose cores the trading engines keep busy. There,
# OpenMP threads waiting on each other made HistGradientBoosting fits ~10x slower (2.4 s instead
# of 0.3 s for 1,200 trades on 2 cores), while on an idle machine one thread is as fast as two.
_threadpools = ThreadpoolController()


def _one_openmp_thread():
    return _threadpools.limit(limits=1, user_api="openmp")


class _TreeWalker:
    """A fitted binary HistGradientBoostingClassifier's trees as flat numpy arrays.

    All trees are walked together, one depth level per step, so a single-row prediction costs a
    few dozen small numpy operations instead of sklearn's per-call validation and thread setup.
    Leaves point to themselves, so trees of different depths can take the same number of steps.
    """

    def __init__(self, estimator: HistGradientBoostingClassifier):
        trees = [iteration[0] for iteration in estimator._predictors]
        if any(tree.nodes["is_categorical"].any() for tree in trees):
            raise ValueError("categorical splits are not supported by the fast path")
        offsets = np.cumsum([0] + [len(tree.nodes) for tree in trees])
        nodes = np.concatenate([tree.nodes for tree in trees])
        node_ids = np.arange(len(nodes))
        tree_offsets = np.repeat(offsets[:-1], [len(tree.nodes) for tree in trees])
        is_leaf = nodes["is_leaf"].astype(bool)
        self.feature = np.where(is_leaf, 0, nodes["feature_idx"]).astype(np.intp)
        self.threshold = np.where(is_leaf, np.inf, nodes["num_threshold"])
        self.missing_go_to_left = nodes["missing_go_to_left"].astype(bool) | is_leaf
        self.left = np.where(is_leaf, node_ids, nodes["left"] + tree_offsets).astype(np.intp)
        self.right = np.where(is_leaf, node_ids, nodes["right"] + tree_offsets).astype(np.intp)
        self.value = nodes["value"]
        self.roots = offsets[:-1].astype(np.intp)
        self.depth = int(nodes["depth"].max())
        self.baseline = float(estimator._baseline_prediction.ravel()[0])

    def raw_score(self, x: np.ndarray) -> float:
        """Log-odds of a net profit for one row, as HistGradientBoostingClassifier computes it."""
        node = self.roots
        for _ in range(self.depth):
            value = x[self.feature[node]]
            go_left = (value <= self.threshold[node]) | (np.isnan(value) & self.missing_go_to_left[node])
            node = np.where(go_left, self.left[node], self.right[node])
        return self.baseline + float(self.value[node].sum())


class _LinearScorer:
    """The standardized logistic regression's log-odds for one row, in plain numpy."""

    def __init__(self, estimator: Pipeline):
        scaler, logistic = estimator[0], estimator[-1]
        self.mean, self.scale = scaler.mean_, scaler.scale_
        self.coef, self.intercept = logistic.coef_[0], float(logistic.intercept_[0])

    def raw_score(self, x: np.ndarray) -> float:
        return float(((x - self.mean) / self.scale) @ self.coef) + self.intercept


def _new_estimator(kind: BatchKind, random_state: int, *, C: float = 1.0):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "hgb":
        # Trade outcomes are noisy: shallow, shrunk trees; no internal early stopping because it
        # would carve a shuffled validation set out of the time-ordered training window.
        return HistGradientBoostingClassifier(
            learning_rate=0.05,
            max_iter=150,
            max_leaf_nodes=15,
            max_depth=6,
            min_samples_leaf=20,
            l2_regularization=1.0,
            early_stopping=False,
            random_state=random_state,
        )
    if kind == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000))
    raise ValueError(f"unknown batch model kind {kind!r}; expected 'hgb' or 'logistic'")


def _fit(estimator, X: np.ndarray, y: np.ndarray, weights: np.ndarray):
    if hasattr(estimator, "steps"):  # a pipeline hands the weights to its last step
        return estimator.fit(X, y, **{f"{estimator.steps[-1][0]}__sample_weight": weights})
    return estimator.fit(X, y, sample_weight=weights)


def _chosen_C(X: np.ndarray, y: np.ndarray, random_state: int, weights: np.ndarray) -> float:
    """A logistic model's C, chosen walk-forward on these time-ordered, weighted rows alone.

    Each C of LOGISTIC_C_GRID is fitted on the older rows and scored (weighted log-loss) on the
    newest C_SELECTION_FRACTION of them. Nothing outside these rows takes part in the choice.
    """
    cut = int(len(y) * (1 - C_SELECTION_FRACTION))
    best_C, best_loss = 1.0, math.inf
    if np.unique(y[:cut]).size == 2 and len(y) - cut >= MIN_VALIDATION_ROWS:
        for C in LOGISTIC_C_GRID:
            candidate = _fit(_new_estimator("logistic", random_state, C=C), X[:cut], y[:cut], weights[:cut])
            loss = metrics.log_loss(y[cut:], candidate.predict_proba(X[cut:])[:, 1], sample_weight=weights[cut:])
            if loss < best_loss:
                best_C, best_loss = C, loss
    return best_C


def _fit_calibration(scores: np.ndarray, outcomes: np.ndarray, method: CalibrationMethod) -> dict[str, Any]:
    """Map raw log-odds to probabilities, learned from outcomes the estimator was not trained on."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    if np.unique(outcomes).size < 2:
        # Nothing to learn a mapping from; keep the estimator's own probabilities.
        return {"method": "sigmoid", "slope": 1.0, "intercept": 0.0}
    if method == "sigmoid":
        platt = LogisticRegression(C=1.0).fit(scores.reshape(-1, 1), outcomes)
        return {"method": "sigmoid", "slope": float(platt.coef_[0, 0]), "intercept": float(platt.intercept_[0])}
    if method == "isotonic":
        isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, outcomes)
        return {
            "method": "isotonic",
            "scores": isotonic.X_thresholds_.astype(np.float64),
            "probabilities": isotonic.y_thresholds_.astype(np.float64),
        }
    raise ValueError(f"unknown calibration method {method!r}; expected 'sigmoid' or 'isotonic'")


def _calibrate(calibration: dict[str, Any], scores: np.ndarray) -> np.ndarray:
    if calibration["method"] == "sigmoid":
        return expit(calibration["slope"] * scores + calibration["intercept"])
    return np.interp(scores, calibration["scores"], calibration["probabilities"])


class BatchModel:
    """A fitted estimator plus the calibration of its scores; immutable once built."""

    def __init__(self, *, kind: BatchKind, estimator, calibration: dict[str, Any]):
        self.kind = kind
        self.estimator = estimator
        self.calibration = calibration
        self.n_features = int(estimator.n_features_in_)
        self._scorer = _TreeWalker(estimator) if kind == "hgb" else _LinearScorer(estimator)

    def raw_scores(self, X) -> np.ndarray:
        """The estimator's uncalibrated log-odds of a net profit per row."""
        with _one_openmp_thread():
            return self.estimator.decision_function(np.asarray(X, dtype=np.float64))

    def predict_proba(self, X) -> np.ndarray:
        """Calibrated probabilities of (loss, net profit) per row."""
        positive = _calibrate(self.calibration, self.raw_scores(X))
        return np.column_stack([1.0 - positive, positive])

    def predict_one(self, x: np.ndarray) -> float:
        """Calibrated probability of a net profit for one feature vector, without calling sklearn."""
        if x.shape != (self.n_features,):
            raise ValueError(f"expected a vector of {self.n_features} features, got shape {x.shape}")
        score = self._scorer.raw_score(x)
        calibration = self.calibration
        if calibration["method"] == "sigmoid":
            return sigmoid(calibration["slope"] * score + calibration["intercept"])
        return float(np.interp(score, calibration["scores"], calibration["probabilities"]))

    def get_state(self) -> dict:
        """Plain sklearn estimator, numpy arrays and builtins, for skops persistence."""
        return {"kind": self.kind, "estimator": self.estimator, "calibration": dict(self.calibration)}

    @classmethod
    def from_state(cls, state: dict) -> "BatchModel":
        return cls(kind=state["kind"], estimator=state["estimator"], calibration=state["calibration"])


# The feature that tells the trading systems apart, and its value for each (feature schema v2).
SYSTEM_COLUMN = "is_profit_scraping"
SYSTEMS = {"paper_trading": 0.0, "profit_scraping": 1.0}


class SystemSplitModel:
    """One BatchModel per trading system, chosen by the system's feature, and a pooled one for a system without its own."""

    def __init__(self, *, column: int, parts: dict[str, BatchModel], pooled: BatchModel):
        self.column, self.parts, self.pooled = column, dict(parts), pooled
        self.kind, self.n_features = pooled.kind, pooled.n_features
        self._by_value = {SYSTEMS[name]: part for name, part in self.parts.items()}

    def _part(self, value: float) -> BatchModel:
        return self._by_value.get(value, self.pooled)

    def predict_proba(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        positive = self.pooled.predict_proba(X)[:, 1]
        for value, part in self._by_value.items():
            rows = X[:, self.column] == value
            if rows.any():
                positive[rows] = part.predict_proba(X[rows])[:, 1]
        return np.column_stack([1.0 - positive, positive])

    def predict_one(self, x: np.ndarray) -> float:
        if x.shape != (self.n_features,):
            raise ValueError(f"expected a vector of {self.n_features} features, got shape {x.shape}")
        return self._part(float(x[self.column])).predict_one(x)

    def get_state(self) -> dict:
        return {
            "kind": self.kind,
            "column": self.column,
            "parts": {name: part.get_state() for name, part in self.parts.items()},
            "pooled": self.pooled.get_state(),
        }

    @classmethod
    def from_state(cls, state: dict) -> "SystemSplitModel":
        return cls(
            column=int(state["column"]),
            parts={name: BatchModel.from_state(part) for name, part in state["parts"].items()},
            pooled=BatchModel.from_state(state["pooled"]),
        )


def batch_model_from_state(state: dict) -> "BatchModel | SystemSplitModel":
    """The batch model a stored state describes: one estimator, or one per system."""
    return SystemSplitModel.from_state(state) if "parts" in state else BatchModel.from_state(state)


@dataclass(frozen=True)
class BatchTrainingResult:
    """A trained batch model and how it did on the newest trades, which it was not trained on.

    `metrics` are cross-fitted: each half of the validation window is scored with a calibration
    learned on the other half, so they are not flattered by the calibration having seen the
    outcomes. `validation_probabilities` are those scores, row for row of `validation_rows`: a
    champion is compared with the challenger on the rows neither was trained on. `model` itself
    has learned from the validation window too (see train_batch_model).
    """

    model: BatchModel
    metrics: dict[str, float | int | None]
    feature_importance: dict[str, float]
    train_size: int
    validation_size: int
    train_start: Any
    train_end: Any
    validation_start: Any
    validation_end: Any
    validation_rows: np.ndarray
    validation_probabilities: np.ndarray


def evaluate(model, X, y) -> dict[str, float | int | None]:
    """Scores of any model with `predict_proba` on the given trades (log-loss, Brier, AUC, ...)."""
    return metrics.classification_metrics(y, model.predict_proba(X)[:, 1])


def _time_split(times: np.ndarray, validation_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of older (training) and newer (validation) trades; ties never straddle the split."""
    order = np.argsort(times, kind="stable")
    sorted_times = times[order]
    split = len(times) - max(MIN_VALIDATION_ROWS, math.ceil(len(times) * validation_fraction))
    split = int(np.searchsorted(sorted_times, sorted_times[split], side="left"))
    return order[:split], order[split:]


def _require_trainable(name: str, outcomes: np.ndarray, minimum: int) -> None:
    if outcomes.size < minimum:
        raise ValueError(f"{name} window has {outcomes.size} trades; at least {minimum} are needed")
    if np.unique(outcomes).size < 2:
        raise ValueError(f"{name} window holds only {'wins' if outcomes[0] else 'losses'}; both are needed")


def _permutation_importance(
    model: BatchModel | SystemSplitModel, X: np.ndarray, y: np.ndarray, feature_names: Sequence[str], *, random_state: int
) -> dict[str, float]:
    """Mean rise in log-loss when one feature's values are shuffled across the trades.

    sklearn's permutation_importance only accepts estimators with `fit`; this scores the
    calibrated model itself, which is what trading decisions use. A model per system is scored
    per system, on its own trades, and the figures averaged by the systems' shares of the trades.
    """
    if isinstance(model, SystemSplitModel):
        served = np.array([model._part(value) for value in X[:, model.column]], dtype=object)
        total = dict.fromkeys(feature_names, 0.0)
        for part in {id(part): part for part in served}.values():
            rows = np.flatnonzero(served == part)
            share = len(rows) / len(X)
            for name, value in _permutation_importance(part, X[rows], y[rows], feature_names, random_state=random_state).items():
                total[name] += share * value
        return total
    rng = np.random.default_rng(random_state)
    permutations = [[rng.permutation(X[:, column]) for _ in range(PERMUTATION_REPEATS)] for column in range(len(feature_names))]
    baseline = metrics.log_loss(y, model.predict_proba(X)[:, 1])
    if model.kind == "hgb":
        raw_scores = _permuted_tree_scores(model.estimator, X, permutations)
    else:
        raw_scores = _permuted_linear_scores(model.estimator, X, permutations)
    return {
        name: float(np.mean([metrics.log_loss(y, _calibrate(model.calibration, scores)) - baseline for scores in raw_scores[column]]))
        for column, name in enumerate(feature_names)
    }


def _permuted_block(X: np.ndarray, column: int, permuted: Sequence[np.ndarray]) -> np.ndarray:
    """X once per permutation of one column, stacked."""
    block = np.tile(X, (len(permuted), 1))
    for index, values in enumerate(permuted):
        block[index * len(X) : (index + 1) * len(X), column] = values
    return block


def _permuted_linear_scores(estimator: Pipeline, X: np.ndarray, permutations) -> list[list[np.ndarray]]:
    """The same raw scores for the standardized logistic regression, without scoring a copy of X.

    Its score is a sum over columns, so replacing one column moves each row's score by that
    column's weight times the change in its value: equal to scoring the copies up to the order
    of floating-point additions, at the cost of one multiplication per row and permutation.
    """
    scaler, logistic = estimator[0], estimator[-1]
    weights = logistic.coef_[0] / scaler.scale_
    with _one_openmp_thread():
        base = estimator.decision_function(X)
    return [
        [base + weights[column] * (values - X[:, column]) for values in permuted]
        for column, permuted in enumerate(permutations)
    ]


def _permuted_tree_scores(estimator: HistGradientBoostingClassifier, X: np.ndarray, permutations) -> list[list[np.ndarray]]:
    """The same raw scores for gradient-boosted trees, scoring each copy only with the trees that split on its column.

    A tree that never splits on a column gives every row the same value whatever that column
    holds, so a copy's score is the unpermuted score with those trees' values replaced: on
    trade-sized data most of the permutation cost goes away, and the scores are equal up to
    the order of floating-point additions.
    """
    trees = [iteration[0] for iteration in estimator._predictors]
    known_categories, feature_map = estimator._bin_mapper.make_known_categories_bitsets()

    def tree_values(tree, rows: np.ndarray) -> np.ndarray:
        return tree.predict(rows, known_categories, feature_map, 1)

    with _one_openmp_thread():
        unpermuted = np.column_stack([tree_values(tree, X) for tree in trees])
        base = unpermuted.sum(axis=1) + float(estimator._baseline_prediction.ravel()[0])
        splits_on = [set(tree.nodes["feature_idx"][~tree.nodes["is_leaf"].astype(bool)].tolist()) for tree in trees]
        rows, scores = len(X), []
        for column, permuted in enumerate(permutations):
            users = [index for index, features in enumerate(splits_on) if column in features]
            permuted_values = np.zeros(rows * len(permuted))
            if users:
                block = _permuted_block(X, column, permuted)
                for index in users:
                    permuted_values += tree_values(trees[index], block)
            shifted = base - unpermuted[:, users].sum(axis=1)
            scores.append([shifted + permuted_values[index * rows : (index + 1) * rows] for index in range(len(permuted))])
    return scores


def _cross_fitted(scores: np.ndarray, outcomes: np.ndarray, method: CalibrationMethod) -> np.ndarray:
    """Each half of a validation window calibrated by a mapping learned on the other half: scores not flattered by calibration."""
    half = len(outcomes) // 2
    earlier, later = slice(None, half), slice(half, None)
    return np.concatenate([
        _calibrate(_fit_calibration(scores[later], outcomes[later], method), scores[earlier]),
        _calibrate(_fit_calibration(scores[earlier], outcomes[earlier], method), scores[later]),
    ])


def _trainable(outcomes: np.ndarray, minimum: int) -> bool:
    return outcomes.size >= minimum and np.unique(outcomes).size == 2


def train_batch_model(
    X,
    y,
    times,
    *,
    validation_fraction: float = 0.2,
    kind: BatchKind = "logistic",
    calibration: CalibrationMethod = "sigmoid",
    feature_names: Sequence[str] | None = None,
    per_system: bool = False,
    sample_weight=None,
    random_state: int = 0,
) -> BatchTrainingResult:
    """Train on the older trades, calibrate and evaluate on the newest ones (never shuffled), then serve a fit on all.

    The estimator fitted on the older trades scores the newest: those scores learn the calibration
    and give the metrics and the feature importance, all out of sample. The model returned is the
    same estimator (same settings, a logistic model's C as chosen on the older trades) refitted on
    every trade, with that calibration: a model fitted on the older trades alone would decide without
    its newest fifth of outcomes (in a paper replay of 2020-2022 that cost about 0.006 of AUC).

    `feature_names` name X's columns (by default the current feature schema's). With
    `per_system`, each trading system whose own trades suffice (column SYSTEM_COLUMN tells them
    apart) gets its own estimator and calibration, and a pooled one serves the others: the
    systems' outcomes follow different rules, and one calibration over both is wrong within each.
    `sample_weight` weighs the training rows (e.g. learning.ml.weights.average_uniqueness).
    """
    feature_names = current_feature_schema().names if feature_names is None else feature_names
    features = np.asarray(X, dtype=np.float64)
    outcomes = np.asarray(y).ravel().astype(np.int64)
    times = np.asarray(times)
    weights = np.ones(outcomes.size) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if features.ndim != 2 or not (features.shape[0] == outcomes.size == times.size == weights.size):
        raise ValueError("X, y, times and sample_weight must describe the same trades")
    if features.shape[1] != len(feature_names):
        raise ValueError(f"X has {features.shape[1]} features, the schema names {len(feature_names)}")
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError("validation_fraction must be between 0 and 1")
    if outcomes.size < MIN_TRAINING_ROWS + MIN_VALIDATION_ROWS:
        raise ValueError(
            f"{outcomes.size} trades; at least {MIN_TRAINING_ROWS + MIN_VALIDATION_ROWS} are needed to train"
        )
    train_rows, validation_rows = _time_split(times, validation_fraction)
    _require_trainable("training", outcomes[train_rows], MIN_TRAINING_ROWS)
    _require_trainable("validation", outcomes[validation_rows], MIN_VALIDATION_ROWS)

    def fit(train: np.ndarray, validation: np.ndarray) -> tuple[BatchModel, BatchModel, np.ndarray]:
        """Rows `train` fitted and `validation` scored: that model, the same refitted on both, and the cross-fitted validation probabilities."""
        with _one_openmp_thread():
            C = _chosen_C(features[train], outcomes[train], random_state, weights[train]) if kind == "logistic" else 1.0
            estimator = _fit(_new_estimator(kind, random_state, C=C), features[train], outcomes[train], weights[train])
            scores = estimator.decision_function(features[validation])
            every = np.concatenate([train, validation])
            refitted = _fit(_new_estimator(kind, random_state, C=C), features[every], outcomes[every], weights[every])
        fitted = _fit_calibration(scores, outcomes[validation], calibration)
        held_out = BatchModel(kind=kind, estimator=estimator, calibration=fitted)
        served = BatchModel(kind=kind, estimator=refitted, calibration=fitted)
        return held_out, served, _cross_fitted(scores, outcomes[validation], calibration)

    held_out, model, cross_fitted = fit(train_rows, validation_rows)
    if per_system and SYSTEM_COLUMN in feature_names:
        column = list(feature_names).index(SYSTEM_COLUMN)
        held_out_parts, parts = {}, {}
        for name, value in SYSTEMS.items():
            own_train = train_rows[features[train_rows, column] == value]
            in_validation = features[validation_rows, column] == value
            own_validation = validation_rows[in_validation]
            if len(own_train) == len(train_rows) and in_validation.all():
                # Every trade is this system's: its own fit would be the pooled one again.
                held_out_parts[name], parts[name] = held_out, model
            elif _trainable(outcomes[own_train], MIN_TRAINING_ROWS) and _trainable(outcomes[own_validation], MIN_VALIDATION_ROWS):
                held_out_parts[name], parts[name], cross_fitted[in_validation] = fit(own_train, own_validation)
        held_out = SystemSplitModel(column=column, parts=held_out_parts, pooled=held_out)
        model = SystemSplitModel(column=column, parts=parts, pooled=model)
    validation_features, validation_outcomes = features[validation_rows], outcomes[validation_rows]
    return BatchTrainingResult(
        model=model,
        metrics=metrics.classification_metrics(validation_outcomes, cross_fitted),
        feature_importance=_permutation_importance(
            held_out, validation_features, validation_outcomes, feature_names, random_state=random_state
        ),
        train_size=len(train_rows),
        validation_size=len(validation_rows),
        train_start=times[train_rows[0]],
        train_end=times[train_rows[-1]],
        validation_start=times[validation_rows[0]],
        validation_end=times[validation_rows[-1]],
        validation_rows=validation_rows,
        validation_probabilities=cross_fitted,
    )


def train_batch_artifact(X, y, times, **options) -> tuple[BatchTrainingResult, Artifact]:
    """train_batch_model, and the trained model's skops artifact (a training worker hands back both)."""
    result = train_batch_model(X, y, times, **options)
    return result, dump_estimator(result.model.get_state())
