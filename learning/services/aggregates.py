"""The learned aggregates (five all-time tables, the rolling windows of recent performance, the dashboard's two summaries): how one outcome updates each, and how all are rebuilt.

Each aggregate is a fold over training records in recording (id) order. The incremental
path (`aggregates_apply`, inside the outcome's transaction) and the rebuild
(`aggregates_rebuild`) run the very same `apply` and `refresh` functions, so they can only
disagree if rows are lost or counted twice, which the tests check.
"""
import bisect
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from decimal import Decimal
from functools import reduce
from itertools import batched
from operator import add

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Model, Q
from django.utils import timezone

from learning import stats
from learning.recent import window_entry, window_figures, window_time
from tradelearn.bulk import bulk_insert, bulk_update_rows
from learning.buckets import BUCKET_COUNT, bucket_index, confidence_range, label_midpoint
from learning.models import (
    ALL_SYMBOLS,
    RECENT_WINDOW_CAPACITY,
    DailyOutcomes,
    ModelScoreCalibration,
    FeatureImportance,
    RecentPerformance,
    MarketRegimeStats,
    PositionSizing,
    SignalQuality,
    StrategyPerformance,
    TrainingRecord,
)


@dataclass(frozen=True, slots=True)
class OutcomeFacts:
    """What the aggregates need to know about one recorded outcome."""

    strategy_type: str
    system_type: str
    confidence_score: float
    market_regime: str
    volatility_regime: str
    success: bool
    pnl_pct: float
    net_pnl: Decimal
    duration_minutes: int
    features: dict
    symbol: str
    entry_time: datetime
    exit_time: datetime
    pnl_units: int  # net P&L in units of 1e-10, exactly as stored (the recent record sums these)
    is_shadow: bool = False
    ml_score: float | None = None

    @classmethod
    def from_record(cls, record) -> "OutcomeFacts":
        """The facts of a TrainingRecord, or of a TradeOutcome not stored yet (read as the store reads it:
        success and duration may be left to follow from the net P&L and the times)."""
        net_pnl = Decimal(record.net_pnl)
        duration = record.duration_minutes
        if duration is None:
            duration = max(0, int((record.exit_time - record.entry_time).total_seconds() // 60))
        return cls(
            strategy_type=record.strategy_type,
            system_type=record.system_type,
            confidence_score=record.confidence_score,
            market_regime=record.market_regime,
            volatility_regime=record.volatility_regime,
            success=net_pnl > 0 if record.success is None else record.success,
            pnl_pct=float(record.pnl_pct),
            net_pnl=net_pnl,
            duration_minutes=duration,
            features=record.features or {},
            symbol=record.symbol,
            entry_time=record.entry_time,
            exit_time=record.exit_time,
            pnl_units=_pnl_units(record.pnl_pct),
            is_shadow=bool(record.is_shadow),
            ml_score=record.ml_score,
        )


def _pnl_units(pnl_pct) -> int:
    """pnl_pct as the store quantizes it (10 places, half to even), in units of 1e-10."""
    number = pnl_pct if type(pnl_pct) is Decimal else Decimal(str(pnl_pct))
    return int(number.quantize(_PNL_PLACES).scaleb(10))


_PNL_PLACES = Decimal("1e-10")


def _prior_strength() -> float:
    return settings.LEARNING_PRIOR_STRENGTH


def _add_return(row, facts: OutcomeFacts) -> None:
    """The running sums of returns that Sharpe, averages and payoff ratios are computed from."""
    row.sum_pnl_pct += facts.pnl_pct
    row.sum_sq_pnl_pct += facts.pnl_pct * facts.pnl_pct
    if facts.success:
        row.sum_win_pnl_pct += facts.pnl_pct
    else:
        row.sum_loss_pnl_pct += -facts.pnl_pct


class Aggregate:
    """One learned table: its key, how an outcome adds to a row, how figures follow from sums."""

    model: type[Model]
    key_fields: tuple[str, ...]

    def keys(self, facts: OutcomeFacts) -> list[tuple]:
        raise NotImplementedError

    def apply(self, row, facts: OutcomeFacts, key: tuple) -> None:
        raise NotImplementedError

    def apply_all(self, row, facts_list: Sequence[OutcomeFacts], key: tuple) -> None:
        """Add these outcomes, in recording order, to the row of `key`."""
        for facts in facts_list:
            self.apply(row, facts, key)

    def refresh(self, row) -> None:
        raise NotImplementedError

    def records_touching(self, key: tuple) -> Q:
        """A filter on training records wide enough to contain every record of this key."""
        raise NotImplementedError

    def derived_rows(self):
        """The rows a rebuild replaces: all of them, unless the table also holds rows from elsewhere."""
        return self.model.objects.all()

    def new_row(self, key: tuple):
        return self.model(**dict(zip(self.key_fields, key)))

    def key_of(self, row) -> tuple:
        return tuple(getattr(row, name) for name in self.key_fields)

    def value_fields(self) -> list[str]:
        return [f.name for f in self.model._meta.concrete_fields if not f.primary_key and f.name not in self.key_fields]


class StrategyPerformanceAggregate(Aggregate):
    model = StrategyPerformance
    key_fields = ("strategy_type", "system_type", "confidence_range", "market_regime", "volatility_regime")

    def keys(self, facts):
        return [
            (
                facts.strategy_type,
                facts.system_type,
                confidence_range(facts.confidence_score),
                facts.market_regime,
                facts.volatility_regime,
            )
        ]

    def apply(self, row, facts, key):
        row.total_trades += 1
        row.winning_trades += facts.success
        row.total_pnl = Decimal(row.total_pnl) + facts.net_pnl
        _add_return(row, facts)
        row.sum_duration_minutes += facts.duration_minutes
        # Drawdown is path dependent, so it is carried as running state, not recomputed.
        row.cum_pnl_pct += facts.pnl_pct
        row.peak_cum_pnl_pct = max(row.peak_cum_pnl_pct, row.cum_pnl_pct)
        row.max_drawdown_pct = max(row.max_drawdown_pct, row.peak_cum_pnl_pct - row.cum_pnl_pct)

    def refresh(self, row):
        row.losing_trades = row.total_trades - row.winning_trades
        row.win_rate = stats.mean(row.winning_trades, row.total_trades)
        row.avg_pnl_pct = stats.mean(row.sum_pnl_pct, row.total_trades)
        row.avg_duration_minutes = stats.mean(row.sum_duration_minutes, row.total_trades)
        row.sharpe_ratio = stats.sharpe(row.sum_pnl_pct, row.sum_sq_pnl_pct, row.total_trades)

    def records_touching(self, key):
        strategy_type, system_type, _, market_regime, volatility_regime = key
        return Q(
            strategy_type=strategy_type,
            system_type=system_type,
            market_regime=market_regime,
            volatility_regime=volatility_regime,
        )


class SignalQualityAggregate(Aggregate):
    model = SignalQuality
    key_fields = ("signal_type", "confidence_bucket")

    def keys(self, facts):
        return [(facts.strategy_type, confidence_range(facts.confidence_score))]

    def apply(self, row, facts, key):
        row.sample_size += 1
        row.successes += facts.success
        row.sum_confidence += facts.confidence_score
        conditions = row.market_conditions or {}
        for dimension, regime in (("market_regime", facts.market_regime), ("volatility_regime", facts.volatility_regime)):
            tally = conditions.setdefault(dimension, {}).setdefault(regime, {"trades": 0, "wins": 0})
            tally["trades"] += 1
            tally["wins"] += int(facts.success)
        row.market_conditions = conditions

    def refresh(self, row):
        row.predicted_success_rate = stats.mean(row.sum_confidence, row.sample_size)
        row.actual_success_rate = stats.mean(row.successes, row.sample_size)
        row.calibration_score = 1.0 - abs(row.actual_success_rate - row.predicted_success_rate)

    def records_touching(self, key):
        return Q(strategy_type=key[0])


class MarketRegimeAggregate(Aggregate):
    model = MarketRegimeStats
    key_fields = ("market_regime", "volatility_regime")

    def keys(self, facts):
        return [(facts.market_regime, facts.volatility_regime)]

    def apply(self, row, facts, key):
        row.total_trades_in_regime += 1
        row.winning_trades += facts.success
        row.sum_pnl_pct += facts.pnl_pct
        row.sum_duration_minutes += facts.duration_minutes
        characteristics = row.regime_characteristics or {}
        tally = characteristics.setdefault("strategies", {}).setdefault(
            facts.strategy_type, {"trades": 0, "wins": 0, "sum_pnl_pct": 0.0}
        )
        tally["trades"] += 1
        tally["wins"] += int(facts.success)
        tally["sum_pnl_pct"] += facts.pnl_pct
        row.regime_characteristics = characteristics

    def refresh(self, row):
        trades = row.total_trades_in_regime
        win_rate = stats.mean(row.winning_trades, trades)
        row.avg_trade_duration_minutes = stats.mean(row.sum_duration_minutes, trades)
        characteristics = row.regime_characteristics
        characteristics["win_rate"] = win_rate
        characteristics["avg_pnl_pct"] = stats.mean(row.sum_pnl_pct, trades)
        # Best = highest win rate shrunk toward the regime's own, so one lucky trade can't win.
        best_name, best_rate = "", None
        for name in sorted(characteristics.get("strategies", {})):
            tally = characteristics["strategies"][name]
            rate = stats.shrink(
                tally["wins"], tally["trades"], prior_mean=win_rate, prior_strength=_prior_strength()
            )
            if best_rate is None or rate > best_rate:
                best_name, best_rate = name, rate
        row.best_strategy, row.best_strategy_win_rate = best_name, best_rate

    def records_touching(self, key):
        return Q(market_regime=key[0], volatility_regime=key[1])


class PositionSizingAggregate(Aggregate):
    model = PositionSizing
    key_fields = ("confidence_range", "market_regime", "volatility_regime")

    def keys(self, facts):
        return [(confidence_range(facts.confidence_score), facts.market_regime, facts.volatility_regime)]

    def apply(self, row, facts, key):
        row.sample_size += 1
        row.wins += facts.success
        _add_return(row, facts)

    def refresh(self, row):
        row.risk_adjusted_return = stats.sharpe(row.sum_pnl_pct, row.sum_sq_pnl_pct, row.sample_size)
        midpoint = label_midpoint(row.confidence_range)
        row.optimal_position_size_pct = position_size(
            win_rate=stats.shrink(row.wins, row.sample_size, prior_mean=midpoint, prior_strength=_prior_strength()),
            payoff_ratio=payoff_ratio(
                wins=row.wins,
                losses=row.sample_size - row.wins,
                sum_win_pnl_pct=row.sum_win_pnl_pct,
                sum_loss_pnl_pct=row.sum_loss_pnl_pct,
                prior_ratio=1.0,
            ),
        )

    def records_touching(self, key):
        return Q(market_regime=key[1], volatility_regime=key[2])


class FeatureImportanceAggregate(Aggregate):
    model = FeatureImportance
    key_fields = ("feature_name", "strategy_type")

    def derived_rows(self):
        # Rows for all strategies ("*") hold the batch model's importance, not a fold of records.
        return self.model.objects.exclude(strategy_type=MODEL_IMPORTANCE_STRATEGY)

    def keys(self, facts):
        strategy_type = facts.strategy_type  # one row per numeric feature
        return [
            (name, strategy_type)
            for name, value in facts.features.items()
            if isinstance(value, (int, float)) and math.isfinite(value)
        ]

    def apply(self, row, facts, key):
        self.apply_all(row, (facts,), key)

    def apply_all(self, row, facts_list, key):
        # Every outcome adds to a row per feature, so a row takes its outcomes at once: the sums
        # are still added one value at a time in recording order, as folding each would.
        values = [float(facts.features[key[0]]) for facts in facts_list]
        wins = [value for value, facts in zip(values, facts_list, strict=True) if facts.success]
        row.sample_size += len(values)
        row.successes += len(wins)
        row.sum_value = reduce(add, values, row.sum_value)
        row.sum_sq_value = reduce(add, [value * value for value in values], row.sum_sq_value)
        row.sum_value_success = reduce(add, wins, row.sum_value_success)

    def refresh(self, row):
        row.correlation_with_success = stats.correlation(
            row.sample_size, row.sum_value, row.sum_sq_value, row.successes, row.sum_value_success
        )
        shrinkage = row.sample_size / (row.sample_size + _prior_strength()) if row.sample_size else 0.0
        row.importance_score = abs(row.correlation_with_success) * shrinkage

    def records_touching(self, key):
        return Q(strategy_type=key[1])


class RecentPerformanceAggregate(Aggregate):
    """The rolling windows: each row keeps the last RECENT_WINDOW_CAPACITY outcomes of its scope in exit order.

    A row keeps the largest entries by exit order whatever order they are folded in, so the
    incremental path (store order) and the rebuild (id order) agree.
    """

    model = RecentPerformance
    key_fields = ("system_type", "symbol")

    def keys(self, facts):
        return [(facts.system_type, ALL_SYMBOLS), (facts.system_type, facts.symbol)]

    def apply(self, row, facts, key):
        entry = window_entry(
            exit_time=facts.exit_time, entry_time=facts.entry_time, symbol=facts.symbol, pnl_units=facts.pnl_units, success=facts.success
        )
        bisect.insort(row.window, entry)
        if len(row.window) > RECENT_WINDOW_CAPACITY:
            del row.window[0]
        row.total_outcomes += 1

    def refresh(self, row):
        row.pnl_pct_20, row.pnl_pct_50, row.win_rate_20, row.win_rate_50, count = window_figures(row.window)
        row.window_outcomes = int(count)
        row.last_entry_time = window_time(max(entry[1] for entry in row.window[-int(count):])) if count else None
        row.last_exit_time = window_time(row.window[-1][0]) if row.window else None

    def records_touching(self, key):
        return Q(system_type=key[0]) if key[1] == ALL_SYMBOLS else Q(system_type=key[0], symbol=key[1])


class DailyOutcomesAggregate(Aggregate):
    """Outcomes, wins and shadow outcomes per system and UTC exit day (the dashboard's learning progress)."""

    model = DailyOutcomes
    key_fields = ("system_type", "day")

    def keys(self, facts):
        return [(facts.system_type, facts.exit_time.astimezone(UTC).date())]

    def apply(self, row, facts, key):
        row.outcomes += 1
        row.wins += facts.success
        row.shadow += facts.is_shadow

    def refresh(self, row):
        pass  # counts only: the page computes its rates and rolling sums from them

    def records_touching(self, key):
        start = datetime.combine(key[1], dt_time.min, tzinfo=UTC)
        return Q(system_type=key[0], exit_time__gte=start, exit_time__lt=start + timedelta(days=1))


class ModelScoreCalibrationAggregate(Aggregate):
    """Outcomes, successes and the sum of the model's probability per ml_score bucket (its calibration)."""

    model = ModelScoreCalibration
    key_fields = ("bucket",)

    def keys(self, facts):
        return [] if facts.ml_score is None else [(bucket_index(facts.ml_score),)]

    def apply(self, row, facts, key):
        row.outcomes += 1
        row.successes += facts.success
        row.sum_ml_score += facts.ml_score

    def refresh(self, row):
        pass

    def records_touching(self, key):
        # A tenth wide, with a margin: a score a rounding below a bucket's edge may still fall in it.
        low, high = (key[0] - 0.5) / BUCKET_COUNT, (key[0] + 1.5) / BUCKET_COUNT
        return Q(ml_score__gte=low, ml_score__lt=high) if key[0] < BUCKET_COUNT - 1 else Q(ml_score__gte=low)


def payoff_ratio(*, wins: int, losses: int, sum_win_pnl_pct: float, sum_loss_pnl_pct: float, prior_ratio: float) -> float:
    """Average win over average loss, shrunk toward `prior_ratio` while either side is thin."""
    strength = _prior_strength()
    if wins == 0 or losses == 0 or sum_loss_pnl_pct <= 0:
        return prior_ratio
    observed = (sum_win_pnl_pct / wins) / (sum_loss_pnl_pct / losses)
    weight = min(wins, losses)
    return (observed * weight + prior_ratio * strength) / (weight + strength)


def position_size(*, win_rate: float, payoff_ratio: float) -> float:
    """Capped fractional Kelly: 0 where the evidence shows no edge."""
    kelly = stats.kelly_fraction(win_rate, payoff_ratio)
    if kelly <= 0:
        return 0.0
    size = settings.LEARNING_KELLY_FRACTION * kelly
    return min(max(size, settings.LEARNING_MIN_POSITION_SIZE), settings.LEARNING_MAX_POSITION_SIZE)


# FeatureImportance rows under this strategy name hold the batch model's permutation importance.
MODEL_IMPORTANCE_STRATEGY = "*"

# The fixed order in which tables are updated is also the order their rows are locked in.
AGGREGATES: tuple[Aggregate, ...] = (
    StrategyPerformanceAggregate(),
    SignalQualityAggregate(),
    MarketRegimeAggregate(),
    PositionSizingAggregate(),
    FeatureImportanceAggregate(),
    RecentPerformanceAggregate(),
    DailyOutcomesAggregate(),
    ModelScoreCalibrationAggregate(),
)
AGGREGATE_MODELS = tuple(aggregate.model for aggregate in AGGREGATES)
# The summaries that describe the records as they are (the dashboard's), not all that was ever learned.
RECORD_SUMMARIES: tuple[Aggregate, ...] = tuple(
    aggregate for aggregate in AGGREGATES if isinstance(aggregate, (DailyOutcomesAggregate, ModelScoreCalibrationAggregate))
)


# Outcomes a rebuild folds at a time: each row's share of a chunk is added at once.
_FOLD_CHUNK = 2000


def _grouped(aggregate: Aggregate, facts_list: Iterable[OutcomeFacts], only: set | None = None) -> dict[tuple, list]:
    """The outcomes that fall in each row (key) of `aggregate`, in recording order."""
    groups: dict[tuple, list] = defaultdict(list)
    for facts in facts_list:
        for key in aggregate.keys(facts):
            if only is None or key in only:
                groups[key].append(facts)
    return groups


def _fold_groups(aggregate: Aggregate, rows: dict, groups: dict[tuple, list]) -> None:
    # Rows are independent of one another, so adding a row's outcomes together, in their
    # order, is the same fold as adding the outcomes one by one to every row they fall in.
    for key, facts_list in groups.items():
        row = rows.get(key)
        if row is None:
            row = rows[key] = aggregate.new_row(key)
        aggregate.apply_all(row, facts_list, key)


def _locked_rows(aggregate: Aggregate, keys: Sequence[tuple]):
    """The existing rows with these keys, locked in primary-key order until the transaction ends.

    Written as SQL because it runs once per table for every store and the ORM's query
    compilation cost more than the query itself.
    """
    model, quote = aggregate.model, connection.ops.quote_name
    columns = ", ".join(quote(model._meta.get_field(name).column) for name in aggregate.key_fields)
    tuples = ", ".join("(" + ", ".join(["%s"] * len(aggregate.key_fields)) + ")" for _ in keys)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    sql = f"SELECT * FROM {quote(model._meta.db_table)} WHERE ({columns}) IN ({tuples}) ORDER BY {quote(model._meta.pk.column)}{lock}"
    return model.objects.raw(sql, [value for key in keys for value in key])


def _write(aggregate: Aggregate, rows: Iterable, now: datetime) -> None:
    existing, created = [], []
    for row in rows:
        aggregate.refresh(row)
        row.last_updated = now
        (existing if row.pk else created).append(row)
    if existing:
        bulk_update_rows(aggregate.model, existing, aggregate.value_fields())
    if created:
        bulk_insert(aggregate.model, created)


def aggregates_apply(*, facts_list: Sequence[OutcomeFacts], now: datetime | None = None) -> None:
    """Add newly recorded outcomes to every aggregate. Call inside the records' transaction."""
    now = now or timezone.now()
    for aggregate in AGGREGATES:
        groups = _grouped(aggregate, facts_list)
        if not groups:
            continue
        rows = {aggregate.key_of(row): row for row in _locked_rows(aggregate, list(groups))}
        _fold_groups(aggregate, rows, groups)
        _write(aggregate, rows.values(), now)


def _lock_training_records() -> None:
    # Stores insert records first; a SHARE lock waits for stores in flight and holds new ones
    # back until the rebuild commits, so no outcome falls between the rebuild's read and write.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {TrainingRecord._meta.db_table} IN SHARE MODE")


def _records_in_order(condition: Q | None = None) -> Iterable[OutcomeFacts]:
    fields = (
        "strategy_type", "system_type", "confidence_score", "market_regime", "volatility_regime",
        "success", "pnl_pct", "net_pnl", "duration_minutes", "features", "symbol", "entry_time", "exit_time",
        "is_shadow", "ml_score",
    )  # fmt: skip
    queryset = TrainingRecord.objects.filter(condition or Q()).order_by("id").values_list(*fields)
    for row in queryset.iterator(chunk_size=2000):
        values = dict(zip(fields, row))
        values["pnl_units"] = _pnl_units(values["pnl_pct"])
        values["pnl_pct"] = float(values["pnl_pct"])
        values["features"] = values["features"] or {}
        yield OutcomeFacts(**values)


@transaction.atomic
def aggregates_rebuild(*, aggregates: Sequence[Aggregate] = AGGREGATES) -> dict[str, int]:
    """Recompute every aggregate (or those given) from the training records; returns rows per table."""
    _lock_training_records()
    now = timezone.now()
    states: dict[Aggregate, dict] = {aggregate: {} for aggregate in aggregates}
    for aggregate in aggregates:
        aggregate.derived_rows().delete()
    for chunk in batched(_records_in_order(), _FOLD_CHUNK):
        for aggregate in aggregates:
            _fold_groups(aggregate, states[aggregate], _grouped(aggregate, chunk))
    counts = {}
    for aggregate, rows in states.items():
        _write(aggregate, rows.values(), now)
        counts[aggregate.model._meta.db_table] = len(rows)
    return counts


@transaction.atomic
def aggregates_rebuild_keys(*, facts_list: Sequence[OutcomeFacts]) -> None:
    """Recompute exactly the aggregate rows these outcomes fall in (after an edit or delete)."""
    _lock_training_records()
    now = timezone.now()
    for aggregate in AGGREGATES:
        keys = set(key for facts in facts_list for key in aggregate.keys(facts))
        if not keys:
            continue
        aggregate.model.objects.filter(pk__in=[row.pk for row in _locked_rows(aggregate, list(keys))]).delete()
        condition = Q()
        for key in keys:
            condition |= aggregate.records_touching(key)
        rows: dict = {}
        for chunk in batched(_records_in_order(condition), _FOLD_CHUNK):
            _fold_groups(aggregate, rows, _grouped(aggregate, chunk, only=keys))
        _write(aggregate, rows.values(), now)
