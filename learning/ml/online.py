"""Online learners that update on each batch of closed trades and score themselves before learning."""

# scikit-learn and scipy are imported where a model is built or a batch scored, not here: every
# command (even `manage.py check`) imports this module through the URL conf and services.
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from learning.ml import metrics

if TYPE_CHECKING:
    from sklearn.linear_model import SGDClassifier
    from sklearn.neural_network import MLPClassifier

CLASSES = np.array([0, 1])
DEFAULT_WINDOW_SIZE = 500
# Indicator values are fat-tailed, and a running scaler has seen few trades early on: clipping
# scaled features keeps one extreme candle from throwing the weights far off.
SCALED_FEATURE_CLIP = 5.0


def sigmoid(z: float) -> float:
    """Logistic function for one score, without overflow for large negative scores."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    odds = math.exp(z)
    return odds / (1.0 + odds)


def expit(values: np.ndarray) -> np.ndarray:
    """scipy's logistic over an array (scipy imported on first use, see the module's first comment)."""
    from scipy.special import expit as scipy_expit

    return scipy_expit(values)


def _check_batch(X, y) -> tuple[np.ndarray, np.ndarray]:
    features = np.asarray(X, dtype=np.float64)
    outcomes = np.asarray(y).ravel()
    if features.ndim != 2 or features.shape[0] == 0:
        raise ValueError(f"expected a non-empty 2-D feature matrix, got shape {features.shape}")
    if outcomes.shape[0] != features.shape[0]:
        raise ValueError(f"{features.shape[0]} feature rows but {outcomes.shape[0]} outcomes")
    if not np.isin(outcomes, CLASSES).all():
        raise ValueError("outcomes must be 0 (loss) or 1 (net profit)")
    if not np.isfinite(features).all():
        raise ValueError("features must be finite")
    return features, outcomes.astype(np.int64)


class OnlinePlattScaling:
    """A 1-D logistic p = sigmoid(slope * margin + intercept) fitted online by AdaGrad on log-loss.

    It starts at sigmoid(margin), a sensible prior for hinge margins, and its steps shrink as
    evidence accumulates while still following slow drift in the margin scale.
    """

    def __init__(
        self,
        *,
        learning_rate: float = 0.1,
        slope: float = 1.0,
        intercept: float = 0.0,
        slope_gradient_sq: float = 0.0,
        intercept_gradient_sq: float = 0.0,
    ):
        self.learning_rate = learning_rate
        self.slope = slope
        self.intercept = intercept
        self.slope_gradient_sq = slope_gradient_sq
        self.intercept_gradient_sq = intercept_gradient_sq

    def probability(self, margins: np.ndarray) -> np.ndarray:
        return expit(self.slope * margins + self.intercept)

    def probability_one(self, margin: float) -> float:
        return sigmoid(self.slope * margin + self.intercept)

    def partial_fit(self, margins: np.ndarray, outcomes: np.ndarray) -> None:
        # One step per trade in arrival order, like the margin model it calibrates.
        for margin, outcome in zip(margins.tolist(), outcomes.tolist()):
            error = self.probability_one(margin) - outcome
            slope_gradient, intercept_gradient = error * margin, error
            self.slope_gradient_sq += slope_gradient**2
            self.intercept_gradient_sq += intercept_gradient**2
            self.slope -= self.learning_rate * slope_gradient / math.sqrt(self.slope_gradient_sq + 1e-12)
            self.intercept -= (
                self.learning_rate * intercept_gradient / math.sqrt(self.intercept_gradient_sq + 1e-12)
            )

    def get_state(self) -> dict[str, float]:
        return {
            "learning_rate": self.learning_rate,
            "slope": self.slope,
            "intercept": self.intercept,
            "slope_gradient_sq": self.slope_gradient_sq,
            "intercept_gradient_sq": self.intercept_gradient_sq,
        }


class OnlineLearner:
    """Base of the online learners: incremental scaling, prequential scoring, fast single-row path.

    Prequential ("predict, then learn"): each incoming batch is scored before the model learns
    from it, so the recent metrics are measured on outcomes the model had not seen.
    """

    kind = ""

    def __init__(self, *, random_state: int = 0, window_size: int = DEFAULT_WINDOW_SIZE):
        from sklearn.preprocessing import StandardScaler

        self.random_state = random_state
        self.window_size = window_size
        self.scaler = StandardScaler()
        self.model = self._new_model()
        self.samples_seen = 0
        self.updates = 0
        self._window_probabilities: deque[float] = deque(maxlen=window_size)
        self._window_outcomes: deque[int] = deque(maxlen=window_size)
        self._recent_metrics: dict | None = None

    def _new_model(self):
        raise NotImplementedError

    def _positive_proba(self, scaled: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _positive_proba_one(self, scaled: np.ndarray) -> float:
        raise NotImplementedError

    @property
    def is_fitted(self) -> bool:
        return self.updates > 0

    def partial_fit(self, X, y) -> "OnlineLearner":
        """Score the batch with the current model, then learn from it."""
        from sklearn import config_context

        features, outcomes = _check_batch(X, y)
        if self.is_fitted:
            self._check_width(features.shape[1])
            self._score_before_update(features, outcomes)
        # _check_batch has checked what scikit-learn would check again (finite, 2-D, classes 0/1), and
        # the estimators' parameters are fixed above: its checks took half of an update of ten trades.
        with config_context(assume_finite=True, skip_parameter_validation=True):
            self.scaler.partial_fit(features)
            self._update_model(self._scale(features), outcomes)
        self.samples_seen += len(outcomes)
        self.updates += 1
        return self

    def _scale(self, features: np.ndarray) -> np.ndarray:
        # StandardScaler.transform's arithmetic without its per-call validation (callers check shapes).
        scaled = (features - self.scaler.mean_) / self.scaler.scale_
        return np.clip(scaled, -SCALED_FEATURE_CLIP, SCALED_FEATURE_CLIP, out=scaled)

    def _score_before_update(self, features: np.ndarray, outcomes: np.ndarray) -> None:
        self._record(self.predict_proba(features)[:, 1], outcomes)

    def _update_model(self, scaled: np.ndarray, outcomes: np.ndarray) -> None:
        self.model.partial_fit(scaled, outcomes, classes=CLASSES)

    def _record(self, probabilities: np.ndarray, outcomes: np.ndarray) -> None:
        self._window_probabilities.extend(probabilities.tolist())
        self._window_outcomes.extend(outcomes.tolist())
        self._recent_metrics = None

    def _check_width(self, n_features: int) -> None:
        if n_features != self.scaler.n_features_in_:
            raise ValueError(f"expected {self.scaler.n_features_in_} features, got {n_features}")

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities of (loss, net profit) per row; 0.5 each while unfitted."""
        features = np.asarray(X, dtype=np.float64)
        if features.ndim != 2:
            raise ValueError(f"expected a 2-D feature matrix, got shape {features.shape}")
        if not self.is_fitted:
            return np.full((features.shape[0], 2), 0.5)
        self._check_width(features.shape[1])
        positive = self._positive_proba(self._scale(features))
        return np.column_stack([1.0 - positive, positive])

    def predict_one(self, x: np.ndarray) -> float:
        """Probability of a net profit for one feature vector, in plain numpy (no sklearn call)."""
        if not self.is_fitted:
            return 0.5
        if x.shape != self.scaler.mean_.shape:
            raise ValueError(f"expected a vector of {self.scaler.mean_.shape[0]} features, got shape {x.shape}")
        scaled = (x - self.scaler.mean_) / self.scaler.scale_
        np.clip(scaled, -SCALED_FEATURE_CLIP, SCALED_FEATURE_CLIP, out=scaled)
        return self._positive_proba_one(scaled)

    def recent_outcomes(self) -> tuple[np.ndarray, np.ndarray]:
        """The bounded prequential window: probabilities given before each outcome, and outcomes."""
        return np.array(self._window_probabilities, dtype=np.float64), np.array(self._window_outcomes, dtype=np.int64)

    def recent_metrics(self) -> dict[str, float | int | None]:
        """Accuracy, log-loss and Brier over the window of outcomes scored before learning them."""
        if self._recent_metrics is None:
            probabilities, outcomes = self.recent_outcomes()
            if outcomes.size == 0:
                self._recent_metrics = {"n": 0, "log_loss": None, "brier": None, "accuracy": None}
            else:
                self._recent_metrics = {
                    "n": int(outcomes.size),
                    "log_loss": metrics.log_loss(outcomes, probabilities),
                    "brier": metrics.brier(outcomes, probabilities),
                    "accuracy": metrics.accuracy(outcomes, probabilities),
                }
        return dict(self._recent_metrics)

    def get_state(self) -> dict:
        """Plain sklearn estimators, numpy arrays and builtins, for skops persistence."""
        probabilities, outcomes = self.recent_outcomes()
        return {
            "kind": self.kind,
            "random_state": self.random_state,
            "window_size": self.window_size,
            "scaler": self.scaler,
            "model": self.model,
            "samples_seen": self.samples_seen,
            "updates": self.updates,
            "window_probabilities": probabilities,
            "window_outcomes": outcomes,
        }

    @classmethod
    def from_state(cls, state: dict) -> "OnlineLearner":
        learner = LEARNER_KINDS[state["kind"]](random_state=state["random_state"], window_size=state["window_size"])
        learner.scaler = state["scaler"]
        learner.model = state["model"]
        learner.samples_seen = state["samples_seen"]
        learner.updates = state["updates"]
        learner._record(state["window_probabilities"], state["window_outcomes"])
        learner._restore_extra(state)
        return learner

    def _restore_extra(self, state: dict) -> None:
        """Hook for learners carrying more than a scaler and an estimator."""


class SGDLearner(OnlineLearner):
    """Logistic regression trained by stochastic gradient descent."""

    kind = "sgd"

    def _new_model(self) -> SGDClassifier:
        # A slowly decaying step keeps following drift in what makes a trade win.
        from sklearn.linear_model import SGDClassifier

        return SGDClassifier(
            loss="log_loss",
            alpha=1e-4,
            learning_rate="invscaling",
            eta0=0.05,
            power_t=0.25,
            random_state=self.random_state,
        )

    def _positive_proba(self, scaled: np.ndarray) -> np.ndarray:
        # predict_proba's logistic of the decision function, without its per-call validation.
        return expit(scaled @ self.model.coef_[0] + self.model.intercept_[0])

    def _positive_proba_one(self, scaled: np.ndarray) -> float:
        return sigmoid(float(scaled @ self.model.coef_[0]) + float(self.model.intercept_[0]))


class PassiveAggressiveLearner(OnlineLearner):
    """Passive-aggressive (PA-I) linear classifier with online Platt scaling of its margin.

    The calibrator learns from margins computed before the margin model sees each batch, so it
    is calibrated on outcomes the margin model had not been trained on.
    """

    kind = "pa"

    def __init__(self, *, random_state: int = 0, window_size: int = DEFAULT_WINDOW_SIZE):
        super().__init__(random_state=random_state, window_size=window_size)
        self.calibration = OnlinePlattScaling()

    def _new_model(self) -> SGDClassifier:
        from sklearn.linear_model import SGDClassifier

        return SGDClassifier(
            loss="hinge",
            penalty=None,
            learning_rate="pa1",
            eta0=1.0,
            # Averaged weights (averaged PA) instead of the last ones: single PA-I updates on noisy
            # trade outcomes swing the weights, which cost ~0.08 nats of log-loss in our tests.
            average=True,
            random_state=self.random_state,
        )

    def _margins(self, features: np.ndarray) -> np.ndarray:
        return self._scale(features) @ self.model.coef_[0] + self.model.intercept_[0]

    def _score_before_update(self, features: np.ndarray, outcomes: np.ndarray) -> None:
        margins = self._margins(features)
        self._record(self.calibration.probability(margins), outcomes)
        self.calibration.partial_fit(margins, outcomes)

    def _positive_proba(self, scaled: np.ndarray) -> np.ndarray:
        return self.calibration.probability(scaled @ self.model.coef_[0] + self.model.intercept_[0])

    def _positive_proba_one(self, scaled: np.ndarray) -> float:
        margin = float(scaled @ self.model.coef_[0]) + float(self.model.intercept_[0])
        return self.calibration.probability_one(margin)

    def get_state(self) -> dict:
        return {**super().get_state(), "calibration": self.calibration.get_state()}

    def _restore_extra(self, state: dict) -> None:
        self.calibration = OnlinePlattScaling(**state["calibration"])


class MLPLearner(OnlineLearner):
    """A small one-hidden-layer neural network trained by Adam, one pass per batch."""

    kind = "mlp"

    def _new_model(self) -> MLPClassifier:
        from sklearn.neural_network import MLPClassifier

        return MLPClassifier(
            hidden_layer_sizes=(16,),
            activation="relu",
            alpha=1e-3,
            learning_rate_init=5e-3,
            random_state=self.random_state,
        )

    def _update_model(self, scaled: np.ndarray, outcomes: np.ndarray) -> None:
        super()._update_model(scaled, outcomes)
        # sklearn appends every update's loss to loss_curve_ and reads back only the last one (to
        # count updates without improvement). Keeping just that one leaves learning unchanged and
        # keeps the learner's size bounded: otherwise every checkpoint grows with every update.
        del self.model.loss_curve_[:-1]

    def _positive_proba(self, scaled: np.ndarray) -> np.ndarray:
        # predict_proba's forward pass (ReLU, then a logistic output), without its per-call validation.
        hidden = np.maximum(scaled @ self.model.coefs_[0] + self.model.intercepts_[0], 0.0)
        return expit(hidden @ self.model.coefs_[1][:, 0] + self.model.intercepts_[1][0])

    def _positive_proba_one(self, scaled: np.ndarray) -> float:
        hidden = scaled @ self.model.coefs_[0] + self.model.intercepts_[0]
        np.maximum(hidden, 0.0, out=hidden)
        return sigmoid(float(hidden @ self.model.coefs_[1][:, 0]) + float(self.model.intercepts_[1][0]))


LEARNER_KINDS: dict[str, type[OnlineLearner]] = {
    learner.kind: learner for learner in (SGDLearner, PassiveAggressiveLearner, MLPLearner)
}


@dataclass(frozen=True)
class EnsemblePrediction:
    """Each fitted learner's probability of a net profit, and their mean (0.5 if none is fitted)."""

    probabilities: dict[str, float]
    mean: float


class OnlineEnsemble:
    """The three online learners, updated together on every batch of closed trades."""

    def __init__(self, *, random_state: int = 0, window_size: int = DEFAULT_WINDOW_SIZE, learners=None):
        self.learners: dict[str, OnlineLearner] = learners or {
            kind: learner_class(random_state=random_state, window_size=window_size)
            for kind, learner_class in LEARNER_KINDS.items()
        }

    @property
    def is_fitted(self) -> bool:
        return any(learner.is_fitted for learner in self.learners.values())

    @property
    def samples_seen(self) -> int:
        return max((learner.samples_seen for learner in self.learners.values()), default=0)

    def partial_fit(self, X, y) -> "OnlineEnsemble":
        features, outcomes = _check_batch(X, y)
        for learner in self.learners.values():
            learner.partial_fit(features, outcomes)
        return self

    def learn(self, X, y, *, batch_size: int) -> "OnlineEnsemble":
        """Learn the rows in order, `batch_size` at a time, as the live updates do; returns the ensemble."""
        for start in range(0, len(y), batch_size):
            self.partial_fit(X[start : start + batch_size], y[start : start + batch_size])
        return self

    def predict_one(self, x: np.ndarray) -> EnsemblePrediction:
        probabilities = {
            kind: learner.predict_one(x) for kind, learner in self.learners.items() if learner.is_fitted
        }
        mean = sum(probabilities.values()) / len(probabilities) if probabilities else 0.5
        return EnsemblePrediction(probabilities=probabilities, mean=mean)

    def predict_proba(self, X) -> np.ndarray:
        """Mean of the fitted learners' probabilities per row."""
        fitted = [learner for learner in self.learners.values() if learner.is_fitted]
        if not fitted:
            return np.full((np.asarray(X).shape[0], 2), 0.5)
        return np.mean([learner.predict_proba(X) for learner in fitted], axis=0)

    def get_state(self) -> dict:
        return {"learners": {kind: learner.get_state() for kind, learner in self.learners.items()}}

    @classmethod
    def from_state(cls, state: dict) -> "OnlineEnsemble":
        return cls(learners={kind: OnlineLearner.from_state(s) for kind, s in state["learners"].items()})
