"""Scores for probability forecasts of trade outcomes: log-loss, Brier, accuracy, AUC and calibration."""

from dataclasses import dataclass

import numpy as np

# Probabilities are clipped before taking logs so one overconfident miss costs a lot, not infinity.
PROBABILITY_EPS = 1e-15


def _as_arrays(y_true, probabilities) -> tuple[np.ndarray, np.ndarray]:
    outcomes = np.asarray(y_true, dtype=np.float64).ravel()
    probs = np.asarray(probabilities, dtype=np.float64).ravel()
    if outcomes.shape != probs.shape:
        raise ValueError(f"{outcomes.size} outcomes but {probs.size} probabilities")
    if outcomes.size == 0:
        raise ValueError("no outcomes to score")
    return outcomes, probs


def log_loss(y_true, probabilities, sample_weight=None) -> float:
    """Mean (weighted) negative log-likelihood of the outcomes (0.693 is a coin flip)."""
    outcomes, probs = _as_arrays(y_true, probabilities)
    probs = np.clip(probs, PROBABILITY_EPS, 1 - PROBABILITY_EPS)
    return float(-np.average(outcomes * np.log(probs) + (1 - outcomes) * np.log1p(-probs), weights=sample_weight))


def brier(y_true, probabilities) -> float:
    """Mean squared error of the probabilities (0.25 for a constant 0.5)."""
    outcomes, probs = _as_arrays(y_true, probabilities)
    return float(np.mean((probs - outcomes) ** 2))


def accuracy(y_true, probabilities, *, threshold: float = 0.5) -> float:
    """Share of outcomes on the side of `threshold` the probability pointed to."""
    outcomes, probs = _as_arrays(y_true, probabilities)
    return float(np.mean((probs >= threshold) == (outcomes == 1)))


def roc_auc(y_true, probabilities) -> float | None:
    """Area under the ROC curve, or None when only one class is present (it is undefined)."""
    outcomes, probs = _as_arrays(y_true, probabilities)
    if np.unique(outcomes).size < 2:
        return None
    # Imported here: scikit-learn costs ~1.5 s, and every command imports this module at start-up.
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(outcomes, probs))


@dataclass(frozen=True)
class ReliabilityBin:
    """One probability bucket: how often trades predicted in [lower, upper) actually won."""

    lower: float
    upper: float
    count: int
    mean_probability: float | None
    observed_rate: float | None


def reliability_table(y_true, probabilities, *, n_bins: int = 10) -> list[ReliabilityBin]:
    """Equal-width probability buckets with predicted vs observed win rates (1.0 falls in the last)."""
    outcomes, probs = _as_arrays(y_true, probabilities)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bucket = np.clip(np.digitize(probs, edges[1:-1], right=False), 0, n_bins - 1)
    table = []
    for index in range(n_bins):
        in_bucket = bucket == index
        count = int(in_bucket.sum())
        table.append(
            ReliabilityBin(
                lower=float(edges[index]),
                upper=float(edges[index + 1]),
                count=count,
                mean_probability=float(probs[in_bucket].mean()) if count else None,
                observed_rate=float(outcomes[in_bucket].mean()) if count else None,
            )
        )
    return table


def expected_calibration_error(y_true, probabilities, *, n_bins: int = 10) -> float:
    """Count-weighted mean gap between predicted and observed win rate over equal-width buckets."""
    table = reliability_table(y_true, probabilities, n_bins=n_bins)
    total = sum(row.count for row in table)
    return float(
        sum(row.count * abs(row.mean_probability - row.observed_rate) for row in table if row.count)
        / total
    )


def classification_metrics(y_true, probabilities) -> dict[str, float | int | None]:
    """All headline scores of a set of forecasts, as stored with a model version."""
    outcomes, probs = _as_arrays(y_true, probabilities)
    return {
        "n": int(outcomes.size),
        "log_loss": log_loss(outcomes, probs),
        "brier": brier(outcomes, probs),
        "accuracy": accuracy(outcomes, probs),
        "roc_auc": roc_auc(outcomes, probs),
        "ece": expected_calibration_error(outcomes, probs),
        "base_rate": float(outcomes.mean()),
    }
