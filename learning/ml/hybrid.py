"""Hybrid prediction: one probability of a net profit from the online ensemble and the batch model."""

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from learning.ml.batch import BatchModel
from learning.ml.online import OnlineEnsemble

Weighting = Literal["fixed", "adaptive"]

BATCH = "batch"
# A model with fewer scored outcomes than this has not shown it beats a coin flip yet.
MIN_RECENT_OUTCOMES = 30
COIN_FLIP_LOG_LOSS = math.log(2.0)


@dataclass(frozen=True)
class HybridPrediction:
    """The combined probability of a net profit and what it was made of.

    confidence = |2p - 1| * (1 - 2s), where p is the combined probability and s the weighted
    standard deviation of the models' probabilities around p (at most 0.5). It is 1 only when
    every model is certain and agrees, and 0 at p = 0.5, when nothing is fitted, or when the
    models split evenly between certain win and certain loss.
    """

    probability: float
    model_probabilities: dict[str, float]
    confidence: float
    versions: dict[str, str | None]
    weights: dict[str, float] = field(default_factory=dict)


class HybridPredictor:
    """Weighted blend of the batch model and each fitted online learner.

    Fixed weighting gives the batch model `batch_weight` and shares `online_weight` equally among
    the fitted online learners; a missing model's share is spread over those present.
    Adaptive weighting multiplies those base weights by exp(-recent_log_loss / temperature), so
    a model whose recent out-of-sample log-loss is `temperature` nats lower gets e times the
    weight (exponential weights, with the fixed weights as prior). Online learners use their
    prequential window; the batch model uses `batch_log_loss` (its validation log-loss, or a
    live one the caller tracks). A model without enough evidence counts as a coin flip (ln 2).
    """

    def __init__(
        self,
        *,
        online: OnlineEnsemble | None = None,
        batch: BatchModel | None = None,
        batch_weight: float = 0.7,
        online_weight: float = 0.3,
        weighting: Weighting = "fixed",
        temperature: float = 0.05,
        batch_log_loss: float | None = None,
        batch_version: str | None = None,
        online_version: str | None = None,
    ):
        if batch_weight < 0 or online_weight < 0 or batch_weight + online_weight <= 0:
            raise ValueError("model weights must be non-negative and not both zero")
        if weighting not in ("fixed", "adaptive"):
            raise ValueError(f"unknown weighting {weighting!r}; expected 'fixed' or 'adaptive'")
        if temperature <= 0:
            raise ValueError("temperature must be positive")
        self.online = online
        self.batch = batch
        self.batch_weight = batch_weight
        self.online_weight = online_weight
        self.weighting = weighting
        self.temperature = temperature
        self.batch_log_loss = batch_log_loss
        self.versions = {BATCH: batch_version, "online": online_version}

    def _fitted_online(self) -> dict:
        if self.online is None:
            return {}
        return {kind: learner for kind, learner in self.online.learners.items() if learner.is_fitted}

    def _recent_log_loss(self, name: str) -> float:
        if name == BATCH:
            return COIN_FLIP_LOG_LOSS if self.batch_log_loss is None else self.batch_log_loss
        recent = self.online.learners[name].recent_metrics()
        return recent["log_loss"] if recent["n"] >= MIN_RECENT_OUTCOMES else COIN_FLIP_LOG_LOSS

    def weights(self, names: Iterable[str]) -> dict[str, float]:
        """Normalised weight of each named model (the batch model and fitted online learners)."""
        names = list(names)
        online_count = sum(name != BATCH for name in names)
        base = {name: self.batch_weight if name == BATCH else self.online_weight / online_count for name in names}
        if self.weighting == "adaptive":
            losses = {name: self._recent_log_loss(name) for name in names}
            # Subtracting the best loss changes nothing after normalising but avoids underflow.
            best = min(losses.values())
            base = {name: base[name] * math.exp(-(losses[name] - best) / self.temperature) for name in names}
        total = sum(base.values())
        if total <= 0:
            # Only models whose configured weight is zero are present: fall back to equal weights.
            return {name: 1.0 / len(names) for name in names}
        return {name: weight / total for name, weight in base.items()}

    def predict(self, x: np.ndarray) -> HybridPrediction:
        """Combined prediction for one feature vector in schema order."""
        model_probabilities = {}
        if self.batch is not None:
            model_probabilities[BATCH] = self.batch.predict_one(x)
        for kind, learner in self._fitted_online().items():
            model_probabilities[kind] = learner.predict_one(x)
        if not model_probabilities:
            return HybridPrediction(probability=0.5, model_probabilities={}, confidence=0.0, versions=dict(self.versions))
        weights = self.weights(model_probabilities)
        probability = sum(weights[name] * p for name, p in model_probabilities.items())
        spread = math.sqrt(sum(weights[name] * (p - probability) ** 2 for name, p in model_probabilities.items()))
        confidence = abs(2.0 * probability - 1.0) * max(0.0, 1.0 - 2.0 * spread)
        return HybridPrediction(
            probability=probability,
            model_probabilities=model_probabilities,
            confidence=confidence,
            versions=dict(self.versions),
            weights=weights,
        )

    def predict_proba(self, X) -> np.ndarray:
        """Combined probabilities of (loss, net profit) per row, for evaluation on a window."""
        models = dict(self._fitted_online())
        if self.batch is not None:
            models[BATCH] = self.batch
        rows = np.asarray(X).shape[0]
        if not models:
            return np.full((rows, 2), 0.5)
        weights = self.weights(models)
        positive = sum(weights[name] * model.predict_proba(X)[:, 1] for name, model in models.items())
        return np.column_stack([1.0 - positive, positive])
