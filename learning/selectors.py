"""Reads of the learning store: strategy insights, the learning summary, online and hybrid model status."""
import math
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import CharField, Count, Max, Q, Sum
from django.db.models.functions import Cast
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from kombu import Connection

from learning import stats
from learning.models import (
    FeatureImportance,
    LearningLease,
    MarketRegimeStats,
    ModelVersion,
    OnlineLearningState,
    PositionSizing,
    RecentPerformance,
    SignalQuality,
    StrategyPerformance,
    SystemType,
    TrainingExample,
    TrainingRecord,
)
from learning.models import ALL_SYMBOLS, RECENT_WINDOW_CAPACITY
from learning.skill import RunningSkill, ScoredOutcome, running_skill
from learning.recent import RECENT_WINDOWS, RecentOutcome, entry_of, exited_before, recent_record_of_entries

RECENT_DAYS = 30
_LONGEST_WINDOW = max(RECENT_WINDOWS)


def recent_record_features(*, system_type: str, symbol: str, at) -> dict[str, float]:
    """The strategy's recent record as decision-time features (learning.recent) for `system_type` on `symbol` at `at`.

    `at` is the open time of the candle being decided on; only outcomes that exited before it
    count. Read from the rolling windows (RecentPerformance).
    """
    rows = RecentPerformance.objects.filter(system_type=system_type, symbol__in=(ALL_SYMBOLS, symbol)).values_list("symbol", "window")
    return recent_record_of_rows(system_type=system_type, symbol=symbol, at=at, windows=dict(rows), records_fallback=True)


def recent_record_of_rows(*, system_type: str, symbol: str, at, windows: Mapping[str, list], records_fallback: bool) -> dict[str, float]:
    """The recent-record features from the rolling windows' entries by symbol (ALL_SYMBOLS: the system's).

    Should a full window hold fewer than 50 outcomes before `at` (many stored since: a tick
    running far behind), the training records are read instead when `records_fallback`.
    """
    scopes = []
    for scope_symbol in (ALL_SYMBOLS, symbol):
        window = windows.get(scope_symbol, [])
        if records_fallback and len(window) >= RECENT_WINDOW_CAPACITY and exited_before(window, at) < _LONGEST_WINDOW:
            outcomes = _recent_records(system_type=system_type, symbol=None if scope_symbol == ALL_SYMBOLS else symbol, before=at)
            window = sorted(map(entry_of, outcomes))
        scopes.append(window)
    return recent_record_of_entries(system_window=scopes[0], symbol_window=scopes[1], at=at)


def _recent_records(*, system_type: str, symbol: str | None, before) -> list[RecentOutcome]:
    records = TrainingRecord.objects.filter(system_type=system_type, exit_time__lt=before)
    if symbol is not None:
        records = records.filter(symbol=symbol)
    # The latest exits and everything tied with the oldest of them: exit order breaks the ties.
    rows = list(records.order_by("-exit_time").values_list("exit_time", flat=True)[_LONGEST_WINDOW - 1 : _LONGEST_WINDOW])
    if rows:
        records = records.filter(exit_time__gte=rows[0])
    return [
        RecentOutcome(system_type=system_type, symbol=sym, entry_time=entry, exit_time=exit, pnl_pct=float(pnl), success=success)
        for sym, entry, exit, pnl, success in records.values_list("symbol", "entry_time", "exit_time", "pnl_pct", "success")
    ]


def _tally(rows) -> dict:
    """The learned statistics of some strategy_performance rows: outcomes of real and shadow trades alike."""
    outcomes = sum(row.total_trades for row in rows)
    wins = sum(row.winning_trades for row in rows)
    sum_pnl = sum(row.sum_pnl_pct for row in rows)
    sum_sq = sum(row.sum_sq_pnl_pct for row in rows)
    return {
        "outcomes": outcomes,
        "wins": wins,
        "win_rate": stats.mean(wins, outcomes),
        "avg_pnl_pct": stats.mean(sum_pnl, outcomes),
        "total_pnl": sum((row.total_pnl for row in rows), start=0),
        "sharpe_ratio": stats.sharpe(sum_pnl, sum_sq, outcomes),
        "avg_duration_minutes": stats.mean(sum(row.sum_duration_minutes for row in rows), outcomes),
    }


def _real_and_shadow(records) -> dict:
    """Training records split as the README's vocabulary does: real trades (opened, they move a
    balance) and shadow trades (skipped signals followed to their would-be exit); outcomes are both."""
    real, shadow = Q(is_shadow=False), Q(is_shadow=True)
    figures = records.aggregate(
        trades=Count("id", filter=real),
        wins=Count("id", filter=real & Q(success=True)),
        real_pnl=Sum("net_pnl", filter=real),
        shadow=Count("id", filter=shadow),
        shadow_wins=Count("id", filter=shadow & Q(success=True)),
        shadow_pnl=Sum("net_pnl", filter=shadow),
    )
    figures["outcomes"] = figures["trades"] + figures["shadow"]
    figures["win_rate"] = stats.mean(figures["wins"], figures["trades"])
    figures["shadow_win_rate"] = stats.mean(figures["shadow_wins"], figures["shadow"])
    figures["net_pnl"] = figures.pop("real_pnl") or 0
    figures["shadow_net_pnl"] = figures.pop("shadow_pnl") or 0
    return figures


def strategy_has_outcomes(*, strategy_type: str) -> bool:
    """Whether any outcome of this strategy was ever learned (the aggregates outlive pruned records)."""
    return StrategyPerformance.objects.filter(strategy_type=strategy_type).exists()


def get_strategy_insights(*, strategy_type: str, system_type: str | None = None) -> dict:
    """How a strategy has done overall, by confidence range and by market conditions."""
    rows = StrategyPerformance.objects.filter(strategy_type=strategy_type)
    if system_type:
        rows = rows.filter(system_type=system_type)
    rows = list(rows)
    strength = settings.LEARNING_PRIOR_STRENGTH
    overall = _tally(rows)

    def grouped(key) -> list[dict]:
        groups = defaultdict(list)
        for row in rows:
            groups[key(row)].append(row)
        result = []
        for name, members in sorted(groups.items()):
            tally = _tally(members)
            tally["name"] = name
            tally["shrunk_win_rate"] = stats.shrink(
                tally["wins"], tally["outcomes"], prior_mean=overall["win_rate"], prior_strength=strength
            )
            tally["max_drawdown_pct"] = max(member.max_drawdown_pct for member in members)
            result.append(tally)
        return result

    by_confidence = grouped(lambda row: row.confidence_range)
    by_regime = grouped(lambda row: f"{row.market_regime}/{row.volatility_regime}")
    best = lambda groups: max(groups, key=lambda group: group["shrunk_win_rate"])["name"] if groups else None  # noqa: E731
    records = TrainingRecord.objects.filter(strategy_type=strategy_type)
    if system_type:
        records = records.filter(system_type=system_type)
    return {
        "strategy_type": strategy_type,
        "system_type": system_type,
        # The learned statistics count outcomes, real and shadow alike; real_and_shadow splits them.
        "overall": overall,
        "real_and_shadow": _real_and_shadow(records),
        "by_confidence_range": by_confidence,
        "by_market_conditions": by_regime,
        "best_confidence_range": best(by_confidence),
        "best_market_conditions": best(by_regime),
        "recent_30_days": _recent(records, until=_latest_exit()),
    }


def _latest_exit():
    """The exit time of the newest outcome: "recent" is relative to the data (a replay of 2023 is
    recent as of its end), not to the wall clock. None when nothing is stored."""
    return TrainingRecord.objects.aggregate(latest=Max("exit_time"))["latest"]


def _recent(records, *, until) -> dict:
    """Real and shadow figures of the RECENT_DAYS up to `until` (the newest outcome's exit)."""
    since = None if until is None else until - timedelta(days=RECENT_DAYS)
    figures = _real_and_shadow(records.none() if until is None else records.filter(exit_time__gt=since, exit_time__lte=until))
    return {"days": RECENT_DAYS, "since": since, "until": until, **figures}


def _regime_win_rates() -> dict[str, dict[tuple, tuple[int, int]]]:
    """Per system, per (market, volatility) regime: (trades, wins)."""
    result: dict[str, dict[tuple, tuple[int, int]]] = defaultdict(dict)
    for row in (
        StrategyPerformance.objects.values("system_type", "market_regime", "volatility_regime")
        .annotate(trades=Sum("total_trades"), wins=Sum("winning_trades"))
        .order_by()
    ):
        result[row["system_type"]][(row["market_regime"], row["volatility_regime"])] = (row["trades"], row["wins"])
    return result


def _pearson(xs: list[float], ys: list[float]) -> float | None:
    if len(xs) < 3:
        return None
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    cov = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys))
    var_x = sum((x - mean_x) ** 2 for x in xs)
    var_y = sum((y - mean_y) ** 2 for y in ys)
    if var_x <= 0 or var_y <= 0:
        return None
    return cov / math.sqrt(var_x * var_y)


def _transfer_skill(source: dict, target: dict) -> float | None:
    """How much better the source system's regime win rates predict the target's than the
    target's own overall rate does: 1 − MSE(source) / MSE(base rate), trade-weighted.
    Positive means knowledge transfers; None when the two share fewer than two regimes."""
    shared = [key for key in target if key in source and source[key][0] and target[key][0]]
    if len(shared) < 2:
        return None
    target_trades = sum(target[key][0] for key in shared)
    base_rate = sum(target[key][1] for key in shared) / target_trades
    error_source = error_base = 0.0
    for key in shared:
        trades, wins = target[key]
        actual = wins / trades
        error_source += trades * (source[key][1] / source[key][0] - actual) ** 2
        error_base += trades * (base_rate - actual) ** 2
    if error_base <= 0:
        return None
    return 1.0 - error_source / error_base


def _cross_system() -> dict:
    rates = _regime_win_rates()
    paper = rates.get(SystemType.PAPER_TRADING, {})
    scraping = rates.get(SystemType.PROFIT_SCRAPING, {})
    shared = sorted(key for key in paper if key in scraping and paper[key][0] and scraping[key][0])
    paper_rate = stats.mean(sum(w for _, w in paper.values()), sum(n for n, _ in paper.values()))
    scraping_rate = stats.mean(sum(w for _, w in scraping.values()), sum(n for n, _ in scraping.values()))
    return {
        "win_rate_gap": paper_rate - scraping_rate if paper and scraping else None,
        "shared_regimes": len(shared),
        "regime_win_rate_correlation": _pearson(
            [paper[key][1] / paper[key][0] for key in shared],
            [scraping[key][1] / scraping[key][0] for key in shared],
        ),
        "transfer_effectiveness": {
            "paper_to_scraping": _transfer_skill(paper, scraping),
            "scraping_to_paper": _transfer_skill(scraping, paper),
        },
        "transfer_weight": settings.LEARNING_TRANSFER_WEIGHT,
    }


def _calibration_gap() -> float | None:
    """Trade-weighted mean |actual − predicted| over the signal-quality buckets."""
    rows = list(SignalQuality.objects.values_list("sample_size", "predicted_success_rate", "actual_success_rate"))
    total = sum(n for n, _, _ in rows)
    if not total:
        return None
    return sum(n * abs(actual - predicted) for n, predicted, actual in rows) / total


def get_learning_summary() -> dict:
    """What the system has learned so far, per system and across systems."""
    systems = {}
    until = _latest_exit()
    for system in SystemType.values:
        records = TrainingRecord.objects.filter(system_type=system)
        figures = _real_and_shadow(records)
        figures["recent_30_days"] = _recent(records, until=until)
        systems[system] = figures

    return {
        "total_records": TrainingRecord.objects.count(),
        "systems": systems,
        "cross_system": _cross_system(),
        "calibration_gap": _calibration_gap(),
        "best_strategy_by_regime": [
            {
                "market_regime": row.market_regime,
                "volatility_regime": row.volatility_regime,
                "best_strategy": row.best_strategy,
                "best_strategy_win_rate": row.best_strategy_win_rate,
                "trades": row.total_trades_in_regime,
            }
            for row in MarketRegimeStats.objects.order_by("market_regime", "volatility_regime")
        ],
        "top_features": list(
            FeatureImportance.objects.order_by("-importance_score", "feature_name").values(
                "feature_name", "strategy_type", "importance_score", "correlation_with_success", "sample_size"
            )[:10]
        ),
        "table_rows": {
            model._meta.db_table: model.objects.count()
            for model in (TrainingRecord, StrategyPerformance, SignalQuality, MarketRegimeStats, PositionSizing, FeatureImportance)
        },
    }


# --- Models ---------------------------------------------------------------------------------

RETRAIN_TASK = "learning.tasks.batch_retrain_task"
BROKER_CHECK_TIMEOUT_SECONDS = 1.0


def _version_summary(version) -> dict:
    return {
        "id": version.pk,
        "version": version.version,
        "kind": version.kind,
        "samples_seen": version.samples_seen,
        "metrics": version.metrics,
        "validation_window": version.validation_window,
        "trained_through_record_id": version.trained_through_record_id,
        "trained_through_exit_time": version.trained_through_exit_time,
        "sklearn_version": version.sklearn_version,
        "feature_schema_version": version.feature_schema.get("version"),
        "created_at": version.created_at,
        "activated_at": version.activated_at,
    }


def _active_versions() -> dict:
    return {version.kind: version for version in ModelVersion.objects.defer("artifact").filter(active=True)}


def pending_learning(*, limit: int | None = None) -> dict[str, int]:
    """Records and examples the next online update would look at (schema misfits included), each counted up to `limit`.

    A limit keeps a page that only needs "how far behind, roughly" from counting a backlog row by
    row: a count of 100,000 waiting records took ~30 ms of every dashboard view.
    """
    pending = {"records": TrainingRecord.objects.filter(learned_at__isnull=True), "examples": TrainingExample.objects.filter(learned_at__isnull=True)}
    return {name: (rows if limit is None else rows[:limit]).count() for name, rows in pending.items()}


def online_stats() -> dict:
    """Per online learner: samples seen, updates and recent scores on outcomes it had not seen yet."""
    version = _active_versions().get("online")
    state = OnlineLearningState.objects.first()
    metrics = version.metrics if version else {}
    ensemble = metrics.get("ensemble", {})
    return {
        "version": version.version if version else None,
        "version_id": version.pk if version else None,
        "checkpointed_at": version.created_at if version else None,
        "samples_seen": version.samples_seen if version else 0,
        "updates": ensemble.get("updates", 0),
        "models": {
            name: {
                "samples_seen": scores.get("samples_seen", 0),
                "updates": scores.get("updates", 0),
                "recent": {key: scores.get(key) for key in ("n", "accuracy", "log_loss", "brier", "roc_auc")},
            }
            for name, scores in metrics.items()
        },
        "pending": pending_learning(),
        "records_skipped": state.records_skipped if state else 0,
        "last_update_at": state.last_update_at if state else None,
    }


def _next_run(task_name: str):
    """When django-celery-beat will next run an enabled periodic task, or None if it is not scheduled."""
    periodic = PeriodicTask.objects.filter(task=task_name, enabled=True).order_by("pk").first()
    if periodic is None:
        return None
    now = timezone.now()
    if periodic.start_time and periodic.start_time > now:
        return periodic.start_time
    remaining = periodic.schedule.remaining_estimate(periodic.last_run_at or now)
    return max(now, now + remaining)


def database_health() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as error:
        return {"status": "unavailable", "error": str(error)}
    return {"status": "ok", "vendor": connection.vendor}


def broker_health() -> dict:
    url = settings.CELERY_BROKER_URL
    if not url:
        return {"status": "not configured", "detail": "no CELERY_BROKER_URL: tasks run in-process"}
    try:
        with Connection(url, connect_timeout=BROKER_CHECK_TIMEOUT_SECONDS) as broker:
            broker.ensure_connection(max_retries=1, timeout=BROKER_CHECK_TIMEOUT_SECONDS)
    except Exception as error:  # noqa: BLE001 - kombu raises transport-specific errors; any means unreachable
        return {"status": "unavailable", "error": f"{type(error).__name__}: {error}"}
    return {"status": "ok"}


def hybrid_status() -> dict:
    """Active versions and their metrics, last and next retrain, record counts, database and broker health."""
    active = _active_versions()
    lease = LearningLease.objects.filter(name="batch_retrain").first()
    return {
        "active_versions": {kind: _version_summary(version) for kind, version in sorted(active.items())},
        "weighting": {
            "method": settings.LEARNING_HYBRID_WEIGHTING,
            "batch_weight": settings.LEARNING_HYBRID_BATCH_WEIGHT,
            "online_weight": settings.LEARNING_HYBRID_ONLINE_WEIGHT,
        },
        "last_retrain": {
            "started_at": lease.last_started_at if lease else None,
            "finished_at": lease.last_finished_at if lease else None,
            "running": bool(lease and lease.holder and lease.expires_at and lease.expires_at > timezone.now()),
            **(lease.last_result if lease else {}),
        },
        "next_retrain": _next_run(RETRAIN_TASK),
        "records": {
            "training_records": TrainingRecord.objects.count(),
            "training_examples": TrainingExample.objects.count(),
            "pending": pending_learning(),
        },
        "health": {"database": database_health(), "broker": broker_health()},
    }


# Outcomes read per system for the model's running skill: its window plus history for the base rate.
SKILL_HISTORY = 4 * 500


def _utc_from_text(text: str) -> datetime:
    """A datetime the database wrote as ISO text (PostgreSQL with its offset, SQLite without: UTC), in UTC."""
    moment = datetime.fromisoformat(text)
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def scored_history(*, system_type: str) -> list[ScoredOutcome]:
    """A system's last SKILL_HISTORY outcomes in exit order, each with the model's probability at entry.

    The two times come as text, parsed by datetime.fromisoformat: Django's PostgreSQL loader for
    timestamps is pure Python (~5 µs a value), and 8,000 of them were 20 ms of a dashboard request.
    """
    rows = list(
        TrainingRecord.objects.filter(system_type=system_type)
        .order_by("-exit_time", "-pk")
        .values_list(Cast("entry_time", CharField()), Cast("exit_time", CharField()), "ml_score", "success")[:SKILL_HISTORY]
    )
    rows.reverse()
    return [
        ScoredOutcome(entry_time=_utc_from_text(entry), exit_time=_utc_from_text(exit_), ml_score=score, success=success)
        for entry, exit_, score, success in rows
    ]


def model_skill(*, system_type: str) -> RunningSkill:
    """The hybrid model's running out-of-sample skill over a system's recent outcomes (learning.skill)."""
    return running_skill(scored_history(system_type=system_type))


def model_skill_by_system() -> dict[str, RunningSkill]:
    """model_skill of every system."""
    return {system: model_skill(system_type=system) for system in SystemType.values}
