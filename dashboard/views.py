"""Dashboard pages: thin views over the dashboard selectors and charts, for logged-in users; and the public /healthz."""
from dataclasses import dataclass

from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.db.models import Model
from django.http import JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule

from dashboard import charts, selectors
from dashboard.health import system_health
from learning.models import (
    FeatureImportance,
    MarketRegimeStats,
    ModelVersion,
    PositionSizing,
    SignalQuality,
    StrategyPerformance,
    TrainingExample,
    TrainingRecord,
    TrainingRecordCorrection,
)
from scraping.models import PriceLevel
from trading.models import Candle, EngineTick, PaperAccount, PaperTrade, SignalDecision


@login_required
def dashboard(request):
    progress = selectors.learning_progress()
    by_confidence = selectors.calibration_by_confidence()
    by_model = selectors.calibration_by_model_score()
    open_trades = selectors.open_trades()
    accounts = selectors.accounts(open_trades=open_trades)
    versions = selectors.model_versions()
    regimes = selectors.regimes()
    correlations = selectors.feature_correlations()
    importance = selectors.model_importance()
    context = {
        "health": system_health(details=True),
        "rolling_days": selectors.ROLLING_DAYS,
        "progress": progress,
        "system_totals": selectors.system_totals(progress),
        "monthly_outcomes": selectors.outcomes_by_month(progress),
        "learning_chart": charts.learning_chart(progress),
        "calibration_by_confidence": by_confidence,
        "calibration_by_model": by_model,
        "calibration_chart": charts.calibration_chart(by_confidence, by_model),
        "model_skill": selectors.model_skill(),
        "accounts": accounts,
        "equity_chart": charts.equity_chart(accounts),
        "open_trades": open_trades[: selectors.OPEN_TRADES_SHOWN],
        "open_trade_count": len(open_trades),
        "decisions": selectors.recent_decisions(),
        "decision_counts": selectors.decision_counts(),
        "versions": versions,
        "model_chart": charts.model_chart(versions),
        "regimes": regimes,
        "regime_chart": charts.regime_chart(regimes),
        "correlations": correlations,
        "importance": importance,
        "feature_chart": charts.feature_chart(correlations, importance),
    }
    return render(request, "dashboard/index.html", context)


@dataclass(frozen=True, kw_only=True)
class AuditLink:
    title: str
    table: str
    what: str
    url: str | None


AUDIT_SECTIONS: tuple[tuple[str, tuple[tuple[type[Model], str], ...]], ...] = (
    ("Learning tables", (
        (TrainingRecord, "One record per closed trade, taken or shadow: the source of truth, append-only."),
        (TrainingRecordCorrection, "Every correction or deletion of a record: who, when, why, before and after."),
        (StrategyPerformance, "Per strategy, system, confidence range and regime."),
        (SignalQuality, "Calibration: confidence promised against success delivered."),
        (MarketRegimeStats, "Best strategy per market and volatility regime."),
        (PositionSizing, "Fractional Kelly size per confidence range and regime."),
        (FeatureImportance, "Correlation with success and batch-model importance."),
    )),
    ("Models", (
        (ModelVersion, "Trained versions with metrics; activate and roll back here."),
        (TrainingExample, "Labelled feature vectors added through the API."),
    )),
    ("Trading", (
        (PaperTrade, "Every paper trade; filter, search, export to CSV, the opening decision shown."),
        (SignalDecision, "Every signal evaluated, taken or skipped, and why."),
        (PaperAccount, "Balances and risk limits; pause and resume."),
        (EngineTick, "Candles claimed by each engine."),
        (Candle, "Stored market data."),
    )),
    ("Profit scraping", (
        (PriceLevel, "Support and resistance levels as computed at each recompute."),
    )),
    ("Schedules (django-celery-beat)", (
        (PeriodicTask, "Periodic tasks run by beat: enable, disable, edit."),
        (IntervalSchedule, "Every-N schedules."),
        (CrontabSchedule, "Crontab schedules."),
        (ClockedSchedule, "One-off schedules."),
        (SolarSchedule, "Solar-event schedules."),
    )),
)  # fmt: skip


def _audit_link(model: type[Model], what: str) -> AuditLink:
    meta = model._meta
    url = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist") if admin.site.is_registered(model) else None
    return AuditLink(title=str(meta.verbose_name_plural).capitalize(), table=meta.db_table, what=what, url=url)


@login_required
def audit(request):
    sections = [(title, [_audit_link(model, what) for model, what in models]) for title, models in AUDIT_SECTIONS]
    return render(request, "dashboard/audit.html", {"sections": sections})


@never_cache
@require_safe
def healthz(request):
    """Public: is the system working and learning? 200 when every check is within its bound, else 503."""
    health = system_health()
    return JsonResponse(health, status=200 if health["healthy"] else 503, json_dumps_params={"indent": 2})
