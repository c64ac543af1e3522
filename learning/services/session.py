"""Learning as a replay sees it: the store as last written, plus the outcomes since, kept in memory.

A replay closes thousands of trades a minute. Writing each outcome, its five aggregate
updates and a model checkpoint as it happens costs tens of database round trips per trade,
so a replay holds them here and writes them in bulk (`write`), through the same services the
live path uses (store_trade_outcomes, online_checkpoint, batch_retrain). In between:

- `observe` folds each closed trade into the three tables recommendations read (with the
  aggregates' own `apply` and `refresh`) and queues it for the online ensemble;
- `recommend` runs get_signal_recommendation on those in-memory rows;
- `learn` teaches the in-memory online ensemble what has closed; `predict` blends it with the
  active batch model, exactly as hybrid_predict does.

Nothing here decides anything learning does not decide live; only when rows reach the
database differs. A session assumes it is the only online learner while it runs (a replay).
"""
import dataclasses
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime

import numpy as np
from django.conf import settings
from django.db import transaction

from learning.ml.hybrid import HybridPrediction, HybridPredictor
from learning.ml.online import OnlineEnsemble
from learning.models import ModelKind, ModelVersion, TrainingRecord
from learning.services.aggregates import (
    OutcomeFacts,
    PositionSizingAggregate,
    SignalQualityAggregate,
    StrategyPerformanceAggregate,
)
from learning.services.models import (
    RetrainResult,
    _load_model,
    _schema_vector,
    batch_model,
    batch_retrain,
    hybrid_predict,
    online_checkpoint,
)
from learning.services.outcomes import store_trade_outcomes
from learning.services.recommendation import Evidence, get_signal_recommendation
from learning.types import SignalContext, SignalRecommendation, TradeOutcome

_QUALITY, _STRATEGY, _SIZING = SignalQualityAggregate(), StrategyPerformanceAggregate(), PositionSizingAggregate()
_WRITE_CHUNK = 2000


def _fold(aggregate, rows: dict, slot, key: tuple, facts: OutcomeFacts) -> None:
    row = rows.get(slot)
    if row is None:
        row = rows[slot] = aggregate.new_row(key)
    aggregate.apply(row, facts, key)
    aggregate.refresh(row)


class LearningSession:
    """The learned statistics and models of one replay, in memory between writes."""

    def __init__(self, *, learning: bool = True):
        self.learning = learning
        self._pending: list[TradeOutcome] = []  # observed, not yet written
        self._unlearned: list[tuple[np.ndarray, int]] = []
        self.skipped = 0  # outcomes whose features do not fit the schema: stored, never learned
        self.ensemble, self._online_version = OnlineEnsemble(), None
        self._batch, self._batch_version = None, None
        self._samples_saved = 0
        self._unsaved_trade_ids: list[str] = []  # written since the ensemble was last saved
        self._predictor: HybridPredictor | None = None
        self._load_evidence()
        if learning:
            self._load_models()  # the ensemble goes on from the active version

    # -- reading ---------------------------------------------------------------------------
    def _load_evidence(self) -> None:
        self._quality: dict[str, dict] = defaultdict(dict)  # signal type → bucket → row
        self._cells: dict[tuple, dict] = defaultdict(dict)  # (range, regime, volatility) → key → row
        self._sizing: dict[tuple, object] = {}
        for row in _QUALITY.model.objects.all():
            self._quality[row.signal_type][row.confidence_bucket] = row
        for row in _STRATEGY.model.objects.all():
            self._cells[(row.confidence_range, row.market_regime, row.volatility_regime)][_STRATEGY.key_of(row)] = row
        for row in _SIZING.model.objects.all():
            self._sizing[_SIZING.key_of(row)] = row

    def _load_models(self) -> None:
        active = {version.kind: version for version in ModelVersion.objects.filter(active=True)}
        online = active.get(ModelKind.ONLINE)
        if online is not None:
            self.ensemble, self._online_version = _load_model(online), online.version
        self._samples_saved = self.ensemble.samples_seen
        batch = active.get(ModelKind.BATCH)
        if batch is not None:
            self._batch, self._batch_version = batch_model(batch), batch
        self._build_predictor()

    def _build_predictor(self) -> None:
        batch = self._batch_version
        self._predictor = HybridPredictor(
            batch=self._batch,
            online=self.ensemble,
            batch_weight=settings.LEARNING_HYBRID_BATCH_WEIGHT,
            online_weight=settings.LEARNING_HYBRID_ONLINE_WEIGHT,
            weighting=settings.LEARNING_HYBRID_WEIGHTING,
            batch_log_loss=batch.metrics.get("log_loss") if batch else None,
            batch_version=batch.version if batch else None,
            online_version=self._online_version,
        )

    def _evidence(self, context: SignalContext, cell_range: str) -> Evidence:
        cell = (cell_range, context.market_regime, context.volatility_regime)
        sizing = self._sizing.get(cell)
        return Evidence(
            quality=[(bucket, row.sample_size, row.successes) for bucket, row in self._quality[context.strategy_type].items()],
            strategy=[
                (row.system_type, row.strategy_type, row.total_trades, row.winning_trades, row.sum_win_pnl_pct, row.sum_loss_pnl_pct)
                for row in self._cells[cell].values()
            ],
            sizing=(sizing.optimal_position_size_pct, sizing.sample_size) if sizing is not None else None,
        )

    def recommend(self, context: SignalContext) -> SignalRecommendation:
        return get_signal_recommendation(context=context, evidence=self._evidence)

    def predict(self, features: Mapping[str, float]) -> HybridPrediction:
        if self._predictor is None:  # a session that does not learn still predicts with the active versions
            self._load_models()
        return hybrid_predict(features=features, predictor=self._predictor)

    # -- learning ----------------------------------------------------------------------------
    def observe(self, outcome: TradeOutcome) -> None:
        """Take in a closed trade: at once into the evidence, into the ensemble at the next `learn`."""
        facts = OutcomeFacts.from_record(outcome)
        (quality_key,) = _QUALITY.keys(facts)
        (strategy_key,) = _STRATEGY.keys(facts)
        (sizing_key,) = _SIZING.keys(facts)
        _fold(_QUALITY, self._quality[facts.strategy_type], quality_key[1], quality_key, facts)
        _fold(_STRATEGY, self._cells[strategy_key[2:]], strategy_key, strategy_key, facts)
        _fold(_SIZING, self._sizing, sizing_key, sizing_key, facts)
        self._pending.append(outcome)
        vector = _schema_vector(outcome.features)
        if vector is None:
            self.skipped += 1
        elif self.learning:
            self._unlearned.append((vector, int(facts.success)))

    def learn(self) -> int:
        """Teach the online ensemble every trade observed since the last call; returns how many."""
        if not self.learning or not self._unlearned:
            return 0
        X = np.vstack([vector for vector, _ in self._unlearned])
        y = np.array([label for _, label in self._unlearned])
        batch_size = settings.LEARNING_ONLINE_BATCH_SIZE
        for start in range(0, len(y), batch_size):
            self.ensemble.partial_fit(X[start : start + batch_size], y[start : start + batch_size])
        self._unlearned = []
        return len(y)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def write(self, *, trade_ids: Mapping[str, str], checkpoint: bool = True) -> int:
        """Store the observed outcomes (renamed by `trade_ids`: they were observed before their trades had
        ids) with their aggregate updates, re-read the evidence, and with `checkpoint` save the
        online ensemble as the active online version.

        Runs in the caller's transaction, so the trades and their outcomes land together. Until
        the ensemble is saved, the online state still says the records written since its last
        save are unlearned, which is true of the version saved: a replay cut short between
        saves leaves them to the next online_update.
        """
        outcomes = [dataclasses.replace(o, trade_id=trade_ids.get(o.trade_id, o.trade_id)) for o in self._pending]
        with transaction.atomic():
            for start in range(0, len(outcomes), _WRITE_CHUNK):
                store_trade_outcomes(outcomes=outcomes[start : start + _WRITE_CHUNK])
            self._unsaved_trade_ids.extend(outcome.trade_id for outcome in outcomes)
            if checkpoint and self.learning:
                self._checkpoint()
        self._pending = []
        self._load_evidence()
        return len(outcomes)

    def _checkpoint(self) -> None:
        self.learn()
        if self.ensemble.samples_seen == self._samples_saved:
            return
        record_ids = []
        for start in range(0, len(self._unsaved_trade_ids), _WRITE_CHUNK):
            chunk = self._unsaved_trade_ids[start : start + _WRITE_CHUNK]
            record_ids.extend(TrainingRecord.objects.filter(trade_id__in=chunk).values_list("id", flat=True))
        version = online_checkpoint(ensemble=self.ensemble, samples_before=self._samples_saved, record_ids=record_ids)
        self._samples_saved, self._online_version = self.ensemble.samples_seen, version.version
        self._unsaved_trade_ids = []
        self._build_predictor()

    def retrain(self, *, as_of: datetime) -> RetrainResult:
        """Retrain the batch model on the stored records closed before `as_of` (write first)."""
        if self._pending:
            raise RuntimeError("write the observed outcomes before retraining")
        result = batch_retrain(as_of=as_of)
        if result.activated:
            version = ModelVersion.objects.get(kind=ModelKind.BATCH, active=True)
            self._batch, self._batch_version = batch_model(version), version
            self._build_predictor()
        return result
