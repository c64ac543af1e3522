"""The study's learners by name: each fits weighted examples and returns calibrated win probabilities."""
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

# Regularisation strengths tried on the training window's own later part (small C = strong).
C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
VALIDATION_SHARE = 0.25


def _log_loss(y, p, w):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.average(y * np.log(p) + (1 - y) * np.log(1 - p), weights=w))


class BaseRate:
    """The training window's weighted success rate for every signal: the skill-free reference."""

    def fit(self, X, y, sample_weight):
        self.rate = float(np.average(y, weights=sample_weight))
        return self

    def predict_proba(self, X):
        return np.full(len(X), self.rate)


class Logistic:
    """Standardised logistic regression with a fixed C."""

    def __init__(self, C: float = 0.03):
        self.C = C

    def fit(self, X, y, sample_weight):
        self.model = make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=500))
        self.model.fit(X, y, logisticregression__sample_weight=sample_weight)
        return self

    def predict_proba(self, X):
        return self.model.predict_proba(X)[:, 1]


class Trees:
    """Shallow gradient-boosted trees with large leaves and a strong L2 penalty."""

    def __init__(self, depth: int = 2, leaf: int = 200, iterations: int = 60, seed: int = 0):
        self.params = dict(
            max_depth=depth, min_samples_leaf=leaf, max_iter=iterations, learning_rate=0.05, l2_regularization=10.0, random_state=seed
        )

    def fit(self, X, y, sample_weight):
        self.model = HistGradientBoostingClassifier(**self.params).fit(X, y, sample_weight=sample_weight)
        return self

    def predict_proba(self, X):
        return self.model.predict_proba(X)[:, 1]


def _split(n: int) -> int:
    """Where the training window's later part (its own out-of-time validation) starts; rows are in time order."""
    return int(n * (1 - VALIDATION_SHARE))


class ChosenC:
    """Logistic regression whose C is chosen on the training window alone: fit on its earlier part, scored on its later."""

    def fit(self, X, y, sample_weight):
        cut = _split(len(y))
        losses = {C: _log_loss(y[cut:], Logistic(C).fit(X[:cut], y[:cut], sample_weight[:cut]).predict_proba(X[cut:]), sample_weight[cut:]) for C in C_GRID}
        self.C = min(losses, key=losses.get)
        self.model = Logistic(self.C).fit(X, y, sample_weight)
        return self

    def predict_proba(self, X):
        return self.model.predict_proba(X)


class Calibrated:
    """A learner whose scores are mapped to probabilities by a Platt fit on the training window's later part.

    The inner model that scores that part never saw it, so the map learns how its scores hold up
    out of sample (ranking learners are often overconfident); the final model is refit on all.
    """

    def __init__(self, inner):
        self.inner = inner

    def fit(self, X, y, sample_weight):
        cut = _split(len(y))
        held_out = self.inner().fit(X[:cut], y[:cut], sample_weight[:cut]).predict_proba(X[cut:])
        self.platt = LogisticRegression(C=1.0).fit(_logit(held_out)[:, None], y[cut:], sample_weight=sample_weight[cut:])
        self.model = self.inner().fit(X, y, sample_weight)
        return self

    def predict_proba(self, X):
        return self.platt.predict_proba(_logit(self.model.predict_proba(X))[:, None])[:, 1]


class Average:
    """The mean of several learners' probabilities."""

    def __init__(self, *inners):
        self.inners = inners

    def fit(self, X, y, sample_weight):
        self.models = [inner().fit(X, y, sample_weight) for inner in self.inners]
        return self

    def predict_proba(self, X):
        return np.mean([model.predict_proba(X) for model in self.models], axis=0)


def _logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


LEARNERS = {
    "base_rate": BaseRate,
    "logistic": lambda: Logistic(C=0.03),
    "logistic_weak": lambda: Logistic(C=1.0),
    "logistic_cv": ChosenC,
    "trees": lambda: Trees(depth=2, leaf=200),
    "trees_deep": lambda: Trees(depth=4, leaf=50, iterations=150),
    "trees_cal": lambda: Calibrated(lambda: Trees(depth=2, leaf=200)),
    "logistic_cv_cal": lambda: Calibrated(ChosenC),
    "blend": lambda: Average(ChosenC, lambda: Trees(depth=2, leaf=200)),
    "blend_cal": lambda: Calibrated(lambda: Average(ChosenC, lambda: Trees(depth=2, leaf=200))),
}


def make_learner(name: str, *, seed: int = 0):
    if name not in LEARNERS:
        raise ValueError(f"unknown learner {name!r}; known: {', '.join(LEARNERS)}")
    return LEARNERS[name]()
