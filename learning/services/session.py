"""Learning as a replay sees it: the store as last written, plus the outcomes since, kept in memory.

A replay closes thousands of trades a minute. Writing each outcome, its five aggregate
updates and a model checkpoint as it happens costs tens of database round trips per trade,
so a replay holds them here and writes them in bulk (`write`), through the same services the
live path uses (store_trade_outcomes, online_checkpoint, batch_retrain). In between:

- `observe` folds each closed trade into the three tables recommendations read (with the
  aggregates' own `apply` and `refresh`) and queues it for the online ensemble;
- `recommend` runs get_signal_recommendation on those in-memory rows, and `recent_record` reads
  the rolling windows of recent performance kept the same way;
- `learn` teaches the in-memory online ensemble what has closed; `predict` blends it with the
  active batch model, exactly as hybrid_predict does.

Nothing here decides anything learning does not decide live; only when rows reach the
database differs. A session assumes it is the only online learner while it runs (a replay).
"""
import copy
import dataclasses
import functools
import logging
from collections import defaultdict
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import transaction
from threadpoolctl import ThreadpoolController

from learning.ml.background import Worker, job_modules_import
from learning.ml.batch import train_batch_artifact
from learning.ml.hybrid import HybridPrediction, HybridPredictor
from learning.ml.online import OnlineEnsemble
from learning.ml.schema import current_feature_schema
from learning.ml.weights import average_uniqueness
from learning.models import ALL_SYMBOLS, ModelKind, ModelVersion, SystemType, TrainingRecord
from learning.selectors import SKILL_HISTORY, recent_record_of_rows, scored_history
from learning.services.aggregates import (
    OutcomeFacts,
    PositionSizingAggregate,
    RecentPerformanceAggregate,
    SignalQualityAggregate,
    StrategyPerformanceAggregate,
)
from learning.services.online import online_checkpoint
from learning.services.prediction import hybrid_predict
from learning.services.retrain import (
    RETRAIN_ALREADY_RUNNING,
    RETRAIN_LEASE,
    RetrainResult,
    batch_no_version,
    batch_training_problem,
    batch_version_adopt,
    lease_acquire,
    lease_release,
    retrain_lease_release,
)
from learning.services.training_data import schema_vector, training_matrix
from learning.services.versions import ModelSchemaMismatch, batch_model, load_model, model_schema_check
from learning.services.outcomes import store_trade_outcomes
from learning.services.recommendation import Evidence, get_signal_recommendation
from learning.skill import RunningSkill, ScoredOutcome, SkillHistory
from learning.types import SignalContext, SignalRecommendation, TradeOutcome

_QUALITY, _STRATEGY, _SIZING = SignalQualityAggregate(), StrategyPerformanceAggregate(), PositionSizingAggregate()
_RECENT = RecentPerformanceAggregate()
logger = logging.getLogger(__name__)
_WRITE_CHUNK = 2000


def _fold(aggregate, rows: dict, slot, key: tuple, facts: OutcomeFacts) -> None:
    row = rows.get(slot)
    if row is None:
        row = rows[slot] = aggregate.new_row(key)
    aggregate.apply(row, facts, key)
    aggregate.refresh(row)


class LearningSession:
    """The learned statistics and models of one replay, in memory between writes."""

    def __init__(self, *, learning: bool = True, background: bool = False):
        """With `background`, the batch model retrains in a worker process (see `retrain_start`)."""
        self.learning = learning
        # Observed, not yet written: each outcome with its schema vector (None if it does not fit) and label.
        self._pending: list[tuple[TradeOutcome, np.ndarray | None, int]] = []
        self._unlearned: list[tuple[np.ndarray, int]] = []
        self.skipped = 0  # outcomes whose features do not fit the schema: stored, never learned
        # Made by _load_models: a session that does not learn may never predict, nor import scikit-learn (~1 s).
        self.ensemble: OnlineEnsemble | None = None
        self._online_version = None
        self._batch, self._batch_version = None, None
        self._samples_saved = 0
        self._unsaved_record_ids: list[int] = []  # written since the ensemble was last saved
        self._predictor: HybridPredictor | None = None
        self._batch_worker: Worker | None = None
        self._online_next: tuple[np.ndarray, np.ndarray] | None = None  # the trades the ensemble learns at the next `learn`
        self._retrain: _Retrain | None = None
        self._load_evidence()
        if learning:
            self._load_models()  # the ensemble goes on from the active version
            self._history = _History()
            if background:
                self._batch_worker = Worker()

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
        self._recent: dict[tuple, object] = {_RECENT.key_of(row): row for row in _RECENT.model.objects.all()}
        self._scored = {system: SkillHistory(scored_history(system_type=system), keep=SKILL_HISTORY) for system in SystemType.values}

    def _load_models(self) -> None:
        active = {version.kind: version for version in ModelVersion.objects.filter(active=True)}
        # A version reading an older feature schema cannot judge today's features: learning starts afresh.
        for kind, version in list(active.items()):
            try:
                model_schema_check(version)
            except ModelSchemaMismatch as error:
                logger.warning("Not using the active %s model: %s", kind, error)
                del active[kind]
        online = active.get(ModelKind.ONLINE)
        if online is not None:
            self.ensemble, self._online_version = load_model(online), online.version
        else:
            self.ensemble, self._online_version = OnlineEnsemble(), None
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

    def recent_record(self, *, system_type: str, symbol: str, at: datetime) -> dict[str, float]:
        """learning.selectors.recent_record_features, read from the rolling windows kept here."""
        windows = {
            scope: row.window for scope in (ALL_SYMBOLS, symbol) if (row := self._recent.get((system_type, scope))) is not None
        }
        return recent_record_of_rows(system_type=system_type, symbol=symbol, at=at, windows=windows, records_fallback=False)

    def model_skill(self, system_type: str) -> RunningSkill:
        """learning.selectors.model_skill, read from the recent outcomes kept here."""
        return self._scored[system_type].skill()

    def predict(self, features: Mapping[str, float]) -> HybridPrediction:
        if self._predictor is None:  # a session that does not learn still predicts with the active versions
            self._load_models()
        return hybrid_predict(features=features, predictor=self._predictor)

    # -- learning ----------------------------------------------------------------------------
    def observe(self, outcome: TradeOutcome) -> None:
        """Take in a closed trade: at once into the evidence and the rolling windows, into the ensemble at the next `learn`."""
        facts = OutcomeFacts.from_record(outcome)
        (quality_key,) = _QUALITY.keys(facts)
        (strategy_key,) = _STRATEGY.keys(facts)
        (sizing_key,) = _SIZING.keys(facts)
        _fold(_QUALITY, self._quality[facts.strategy_type], quality_key[1], quality_key, facts)
        _fold(_STRATEGY, self._cells[strategy_key[2:]], strategy_key, strategy_key, facts)
        _fold(_SIZING, self._sizing, sizing_key, sizing_key, facts)
        for recent_key in _RECENT.keys(facts):
            _fold(_RECENT, self._recent, recent_key, recent_key, facts)
        self._scored[outcome.system_type].append(
            ScoredOutcome(entry_time=outcome.entry_time, exit_time=outcome.exit_time, ml_score=outcome.ml_score, success=facts.success)
        )
        vector, label = schema_vector(outcome.features), int(facts.success)
        self._pending.append((outcome, vector, label))
        if vector is None:
            self.skipped += 1
        elif self.learning:
            self._unlearned.append((vector, label))

    def learn(self) -> int:
        """Take in every trade observed since the last call; returns how many.

        The ensemble learns them at the next call (or checkpoint): predictions lag one update
        behind, as they did when a worker process learned meanwhile. It learns here, in this
        process: an update of ~10 trades is ~5 ms of model time, less than sending it to a worker
        and the ensemble back (~8 CPU-s of a four-year replay, most of it pickling).
        """
        self._take_online()
        if not self.learning or not self._unlearned:
            return 0
        X = np.vstack([vector for vector, _ in self._unlearned])
        y = np.array([label for _, label in self._unlearned])
        self._unlearned = []
        self._online_next = (X, y)
        return len(y)

    def _take_online(self) -> None:
        if self._online_next is not None:
            (X, y), self._online_next = self._online_next, None
            with _threadpools().limit(limits=1):  # as a training worker computes it
                self.ensemble.learn(X, y, batch_size=settings.LEARNING_ONLINE_BATCH_SIZE)
            self._build_predictor()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def write(self, *, trade_ids: Mapping[str, str], checkpoint: bool = True) -> int:
        """Store the observed outcomes (renamed by `trade_ids`: they were observed before their trades had
        ids) with their aggregate updates, and with `checkpoint` save the online ensemble as the
        active online version. The evidence in memory already holds them (`observe` folded each
        as the store does), so nothing is read back.

        Runs in the caller's transaction, so the trades and their outcomes land together. Until
        the ensemble is saved, the online state still says the records written since its last
        save are unlearned, which is true of the version saved: a replay cut short between
        saves leaves them to the next online_update.
        """
        outcomes = [dataclasses.replace(o, trade_id=trade_ids.get(o.trade_id, o.trade_id)) for o, _, _ in self._pending]
        with transaction.atomic():
            for start in range(0, len(outcomes), _WRITE_CHUNK):
                store_trade_outcomes(outcomes=outcomes[start : start + _WRITE_CHUNK])
            record_ids = _record_ids([outcome.trade_id for outcome in outcomes])
            self._unsaved_record_ids.extend(record_ids[outcome.trade_id] for outcome in outcomes)
            if self.learning:
                for outcome, (_, vector, label) in zip(outcomes, self._pending):
                    self._history.add(
                        record_ids[outcome.trade_id], vector, label,
                        entry_time=outcome.entry_time, exit_time=outcome.exit_time, symbol=outcome.symbol, system=outcome.system_type,
                    )  # fmt: skip
            if checkpoint and self.learning:
                self._checkpoint()
        self._pending = []
        return len(outcomes)

    def _checkpoint(self) -> None:
        self.learn()
        self._take_online()
        if self.ensemble.samples_seen == self._samples_saved:
            return
        version = online_checkpoint(ensemble=self.ensemble, samples_before=self._samples_saved, record_ids=self._unsaved_record_ids)
        self._samples_saved, self._online_version = self.ensemble.samples_seen, version.version
        self._unsaved_record_ids = []
        self._build_predictor()

    def retrain(self, *, as_of: datetime) -> RetrainResult:
        """Retrain the batch model on the stored records closed before `as_of` (write first), and adopt it now."""
        self.retrain_start(as_of=as_of)
        return self.retrain_finish()

    def retrain_start(self, *, as_of: datetime) -> None:
        """Start retraining the batch model on the stored records closed before `as_of` (write first).

        The records are the session's in-memory copy of what batch_retrain would read. In the
        background the model trains in a worker while the replay goes on; `retrain_finish`
        adopts it (storing the version, activating it if it beats the champion). A retrain
        still unfinished is finished first.
        """
        if self._pending:
            raise RuntimeError("write the observed outcomes before retraining")
        self.retrain_finish()
        token = lease_acquire(RETRAIN_LEASE)
        if token is None:
            self._retrain = _Retrain(result=RetrainResult.untrained(RETRAIN_ALREADY_RUNNING))
            return
        X, y, ids, exit_times, weights = self._history.before(as_of)
        retrain = _Retrain(token=token, X=X, y=y, ids=ids, exit_times=exit_times)
        problem = batch_training_problem(y, skipped=self._history.skipped)
        if problem is not None:
            retrain.result = batch_no_version(problem)
        else:
            times = np.array([exit_time.timestamp() for exit_time in exit_times])
            # Here if the worker is still importing what it needs, rather than waiting for it.
            train = self._batch_worker.submit if self._batch_worker is not None and self._batch_worker.ready() else _run_now
            retrain.job = train(
                train_batch_artifact,
                X,
                y,
                times,
                kind=settings.LEARNING_BATCH_MODEL_KIND,
                per_system=settings.LEARNING_BATCH_PER_SYSTEM,
                sample_weight=weights,
                feature_names=current_feature_schema().names,
            )
        self._retrain = retrain

    def retrain_finish(self) -> RetrainResult | None:
        """Adopt the retrain started last (waiting for it if it is still training); None if there is none."""
        retrain, self._retrain = self._retrain, None
        if retrain is None:
            return None
        result = retrain.result
        try:
            if result is None:
                try:
                    trained, artifact = retrain.job.result()
                except ValueError as error:
                    result = batch_no_version(str(error))
                else:
                    result = batch_version_adopt(
                        result=trained, artifact=artifact, X=retrain.X, y=retrain.y, ids=retrain.ids, exit_times=retrain.exit_times
                    )
        finally:
            if retrain.token is not None:
                retrain_lease_release(retrain.token, result)
        if result.activated:
            version = ModelVersion.objects.get(kind=ModelKind.BATCH, active=True)
            self._batch, self._batch_version = batch_model(version), version
            self._build_predictor()
        return result

    @property
    def retraining(self) -> bool:
        return self._retrain is not None

    def close(self) -> None:
        """Stop the workers; a retrain not adopted by now is dropped (its lease released)."""
        retrain, self._retrain = self._retrain, None
        if retrain is not None and retrain.token is not None:
            lease_release(RETRAIN_LEASE, retrain.token, {"reason": "replay stopped before adopting it"})
        if self._batch_worker is not None:
            self._batch_worker.close()
        self._online_next = None


@functools.cache
def _threadpools() -> ThreadpoolController:
    """The thread pools a job can use: made once what jobs import is loaded (scipy's BLAS, OpenMP), so it sees them all."""
    job_modules_import()
    return ThreadpoolController()


def _run_now(job, /, *args, **kwargs) -> Future:
    """A job run here and now, as a finished Future (without a worker, or before it is ready).

    On one BLAS and OpenMP thread, as in a worker, so it computes exactly what a worker would.
    """
    future = Future()
    try:
        with _threadpools().limit(limits=1):
            future.set_result(job(*args, **kwargs))
    except Exception as error:  # raised again where the result is taken, as a worker's would be
        future.set_exception(error)
    return future


def _record_ids(trade_ids: list[str]) -> dict[str, int]:
    ids = {}
    for start in range(0, len(trade_ids), _WRITE_CHUNK):
        chunk = trade_ids[start : start + _WRITE_CHUNK]
        ids.update(TrainingRecord.objects.filter(trade_id__in=chunk).values_list("trade_id", "id"))
    return ids


@dataclass(kw_only=True)
class _Retrain:
    """A batch retrain between its start and its adoption."""

    token: str | None = None
    X: np.ndarray | None = None
    y: np.ndarray | None = None
    ids: list[int] = field(default_factory=list)
    exit_times: list[datetime] = field(default_factory=list)
    job: Future | None = None
    result: RetrainResult | None = None  # known at the start when there was nothing to train


class _History:
    """The stored records batch_retrain trains on (`training_matrix`), read once and kept in step by the session's writes.

    A replay's session is the only writer of records while it runs, so this equals what the
    database would return, without reading and decoding every record again at each retrain.
    Records are kept as numpy columns (new ones joined at the next retrain), so a retrain's
    selection and order cost a few array operations, not a Python pass over every record.
    """

    def __init__(self):
        stored = training_matrix(None)
        self.skipped = stored.skipped
        self._X, self._outcomes, self._ids = stored.X, stored.y, np.asarray(stored.ids, dtype=np.int64)
        self._exit_times = np.array(stored.exit_times, dtype=object)
        self._exit_us, self._entry_us = _microseconds(stored.exit_times), _microseconds(stored.entry_times)
        self._symbols = np.array(stored.symbols, dtype=object)
        self._systems = np.array(stored.systems, dtype=object)
        self._new: list[tuple] = []

    def add(
        self, record_id: int, vector: np.ndarray | None, outcome: int, *, entry_time: datetime, exit_time: datetime, symbol: str, system: str
    ) -> None:
        if vector is None:
            self.skipped += 1
            return
        self._new.append((vector, outcome, record_id, exit_time, entry_time, symbol, system))

    def before(self, as_of: datetime) -> tuple[np.ndarray, np.ndarray, list[int], list[datetime], np.ndarray]:
        """Features, outcomes, ids, exit times and uniqueness weights of the records closed before `as_of`, oldest exit first."""
        self._join_new()
        closed = np.flatnonzero(self._exit_us < _microseconds([as_of])[0])
        rows = closed[np.lexsort((self._ids[closed], self._exit_us[closed]))]
        exit_us, entry_us = self._exit_us[rows], self._entry_us[rows]
        weights = average_uniqueness(
            entry_us.astype("datetime64[us]"), exit_us.astype("datetime64[us]"), self._symbols[rows], self._systems[rows]
        )
        return self._X[rows], self._outcomes[rows], self._ids[rows].tolist(), self._exit_times[rows].tolist(), weights

    def _join_new(self) -> None:
        if not self._new:
            return
        vectors, outcomes, ids, exit_times, entry_times, symbols, systems = zip(*self._new)
        self._new = []
        self._X = np.vstack([self._X, *vectors])
        self._outcomes = np.concatenate([self._outcomes, np.asarray(outcomes, dtype=np.int64)])
        self._ids = np.concatenate([self._ids, np.asarray(ids, dtype=np.int64)])
        self._exit_times = np.concatenate([self._exit_times, np.array(exit_times, dtype=object)])
        self._exit_us = np.concatenate([self._exit_us, _microseconds(exit_times)])
        self._entry_us = np.concatenate([self._entry_us, _microseconds(entry_times)])
        self._symbols = np.concatenate([self._symbols, np.array(symbols, dtype=object)])
        self._systems = np.concatenate([self._systems, np.array(systems, dtype=object)])


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _microseconds(times) -> np.ndarray:
    """Aware datetimes as exact integer microseconds since the epoch (their order, ties included)."""
    return np.array([(time - _EPOCH) // timedelta(microseconds=1) for time in times], dtype=np.int64)
