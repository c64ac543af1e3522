"""Admin for the learning store: browse and audit training records; browse the learned tables.

Training records are append-only here: the normal change and delete forms are refused. Changing
or deleting one is an explicit correction with a reason (`learning.services.corrections`), kept as
an audit row (who, when, why, before and after) shown on the record and in its own list; the
aggregate rows it touches are recomputed. The aggregates themselves are derived, so they are
read-only, with an action that rebuilds them from the records.
"""
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models.functions import Length
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from learning.models import (
    FeatureImportance,
    DailyOutcomes,
    MarketRegimeStats,
    ModelScoreCalibration,
    ModelVersion,
    PositionSizing,
    RecentPerformance,
    SignalQuality,
    StrategyPerformance,
    TrainingExample,
    TrainingRecord,
    TrainingRecordCorrection,
)
from learning.services.aggregates import aggregates_rebuild
from learning.services.corrections import CORRECTABLE_FIELDS, training_record_correct, training_records_delete
from learning.services.outcomes import store_trade_outcome, validate_trade_outcome
from learning.services.versions import model_version_activate, model_version_rollback
from learning.types import TradeOutcome
from tradelearn.admin_display import RealOrShadowFilter, column, metrics_table, minute, money, percent, score


@admin.action(description="Rebuild all learned statistics from the training records")
def rebuild_learning_stats(modeladmin, request, queryset):
    counts = aggregates_rebuild()
    summary = ", ".join(f"{table}: {rows}" for table, rows in counts.items())
    modeladmin.message_user(request, f"Rebuilt learned statistics ({summary}).", messages.SUCCESS)


class TrainingRecordForm(forms.ModelForm):
    """A new record, checked by the same rules as an engine's outcome."""

    class Meta:
        model = TrainingRecord
        exclude = ("success", "duration_minutes")

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        fields = {name: data.get(name, getattr(self.instance, name)) for name in TradeOutcome.__dataclass_fields__}
        fields.update(success=None, duration_minutes=None)
        try:
            validate_trade_outcome(TradeOutcome(**fields))
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                self.add_error(field if field in self.fields else None, problems)
        return data


class CorrectionForm(forms.ModelForm):
    """The correctable fields of a record, and why they are changed (required)."""

    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 80}), help_text="Kept with the correction, with who made it, when, and the record before and after.")

    class Meta:
        model = TrainingRecord
        fields = CORRECTABLE_FIELDS


class DeletionForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 80}), help_text="Kept for each deleted record, with its last state.")


class CorrectionInline(admin.TabularInline):
    """The record's audit trail, newest first."""

    model = TrainingRecordCorrection
    fields = ("created_at", "username", "action", "reason", "changes")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "corrections (audit trail)"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="before → after")
    def changes(self, obj):
        return render_changes(obj)


def render_changes(correction: TrainingRecordCorrection):
    rows = correction.changed_fields()
    return format_html(
        "<table><tr><th>field</th><th>before</th><th>after</th></tr>{}</table>",
        format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", ((name, old, "—" if new is None else new) for name, (old, new) in rows.items())),
    )


@admin.register(TrainingRecord)
class TrainingRecordAdmin(admin.ModelAdmin):
    form = TrainingRecordForm
    # The key columns first (symbol, side, exit time, P&L, success), so they show at 1440 px without scrolling.
    list_display = (
        "trade_id", "symbol", "side", column("exit_time", minute), column("net_pnl", money, "net P&L"),
        column("pnl_pct", percent, "P&L %"), "success", "system_type", "strategy_type", "exit_reason",
        column("confidence_score", score, "confidence"), column("ml_score", score, "model score"), "market_regime",
        "volatility_regime", "is_shadow", "fill_source",
    )  # fmt: skip
    list_filter = (
        RealOrShadowFilter, "fill_source", "system_type", "strategy_type", "success", "market_regime", "volatility_regime", "exit_reason", "side",
    )  # fmt: skip
    search_fields = ("trade_id", "symbol")
    date_hierarchy = "exit_time"
    readonly_fields = ("success", "duration_minutes", "created_at")
    inlines = (CorrectionInline,)
    list_per_page = 100
    show_full_result_count = False  # counting 100k+ rows on every page is slow and rarely needed
    actions = (rebuild_learning_stats, "delete_with_reason")

    # Append-only: the normal change and delete forms are refused to everyone; a correction or a
    # deletion goes through the audited views below, open to those with the model's change or
    # delete permission.
    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_correct_permission(self, request, obj=None):
        return request.user.has_perm("learning.change_trainingrecord")

    def has_audited_delete_permission(self, request, obj=None):
        return request.user.has_perm("learning.delete_trainingrecord")

    def get_urls(self):
        view = self.admin_site.admin_view
        return [path("<int:object_id>/correct/", view(self.correct_view), name="learning_trainingrecord_correct")] + super().get_urls()

    def save_model(self, request, obj, form, change):
        # Only adding reaches here (changing is refused): a new record goes through the same store as an engine's outcome.
        fields = {name: getattr(obj, name) for name in TradeOutcome.__dataclass_fields__}
        fields.update(success=None, duration_minutes=None)
        store_trade_outcome(outcome=TradeOutcome(**fields))
        obj.pk = TrainingRecord.objects.get(trade_id=obj.trade_id).pk

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["can_correct"] = obj is not None and self.has_correct_permission(request, obj)
        context["can_audited_delete"] = obj is not None and self.has_audited_delete_permission(request, obj)
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def correct_view(self, request, object_id: int):
        if not self.has_correct_permission(request):
            raise PermissionDenied
        record = get_object_or_404(TrainingRecord, pk=object_id)
        form = CorrectionForm(request.POST or None, instance=TrainingRecord.objects.get(pk=record.pk))
        if request.method == "POST" and form.is_valid():
            changes = {name: form.cleaned_data[name] for name in form.changed_data if name in CORRECTABLE_FIELDS}
            try:
                correction = training_record_correct(record_id=record.pk, changes=changes, reason=form.cleaned_data["reason"], user=request.user)
            except ValidationError as error:
                for field, problems in error.message_dict.items() if hasattr(error, "error_dict") else [(None, error.messages)]:
                    form.add_error(field if field in form.fields else None, problems)
            else:
                changed = ", ".join(correction.changed_fields())
                self.message_user(request, f"Corrected {record.trade_id} ({changed}); its learned statistics were recomputed.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:learning_trainingrecord_change", args=[record.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Correct {record.trade_id}",
            "record": record,
            "form": form,
        }
        return TemplateResponse(request, "admin/learning/trainingrecord/correct.html", context)

    @admin.action(description="Delete selected records (with a reason, audited; statistics recomputed)", permissions=["audited_delete"])
    def delete_with_reason(self, request, queryset):
        form = DeletionForm(request.POST if "reason" in request.POST else None)
        if form.is_bound and form.is_valid():
            deleted = training_records_delete(
                record_ids=list(queryset.values_list("id", flat=True)), reason=form.cleaned_data["reason"], user=request.user
            )
            self.message_user(request, f"Deleted {deleted} records; the reason is kept with each, and their statistics were recomputed.", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Delete training records",
            "records": queryset[:100],
            "count": queryset.count(),
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            "form": form,
        }
        return TemplateResponse(request, "admin/learning/trainingrecord/delete_with_reason.html", context)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by services: browsed here, never added, changed or deleted."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(TrainingRecordCorrection)
class TrainingRecordCorrectionAdmin(ReadOnlyAdmin):
    """The audit trail of the source of truth: read-only, kept even when the record is gone."""

    list_display = ("created_at", "action", "trade_id", "username", "reason", "changed")
    list_filter = ("action", "username")
    search_fields = ("trade_id", "username", "reason")
    date_hierarchy = "created_at"
    fields = ("created_at", "action", "trade_id", "record", "username", "reason", "changes")
    readonly_fields = fields
    list_per_page = 100

    @admin.display(description="fields changed")
    def changed(self, obj):
        return ", ".join(obj.changed_fields()) if obj.after is not None else "(deleted)"

    @admin.display(description="before → after")
    def changes(self, obj):
        return render_changes(obj)


class AggregateAdmin(ReadOnlyAdmin):
    """The learned tables are derived from the records: read-only, rebuilt on demand."""

    actions = (rebuild_learning_stats,)
    date_hierarchy = "last_updated"
    list_per_page = 100

    def get_actions(self, request):
        # Read-only admins hide actions; the rebuild is for anyone who may view the records.
        return {"rebuild_learning_stats": self.get_action(rebuild_learning_stats)} if self.has_view_permission(request) else {}


@admin.register(StrategyPerformance)
class StrategyPerformanceAdmin(AggregateAdmin):
    list_display = (
        "strategy_type", "system_type", "confidence_range", "market_regime", "volatility_regime", "total_trades",
        "win_rate", "avg_pnl_pct", "total_pnl", "max_drawdown_pct", "sharpe_ratio", "last_updated",
    )  # fmt: skip
    list_filter = ("system_type", "strategy_type", "market_regime", "volatility_regime", "confidence_range")
    search_fields = ("strategy_type",)


@admin.register(SignalQuality)
class SignalQualityAdmin(AggregateAdmin):
    list_display = ("signal_type", "confidence_bucket", "sample_size", "predicted_success_rate", "actual_success_rate", "calibration_score", "last_updated")
    list_filter = ("signal_type", "confidence_bucket")
    search_fields = ("signal_type",)


@admin.register(MarketRegimeStats)
class MarketRegimeStatsAdmin(AggregateAdmin):
    list_display = ("market_regime", "volatility_regime", "total_trades_in_regime", "best_strategy", "best_strategy_win_rate", "avg_trade_duration_minutes", "last_updated")
    list_filter = ("market_regime", "volatility_regime", "best_strategy")
    search_fields = ("best_strategy",)


@admin.register(PositionSizing)
class PositionSizingAdmin(AggregateAdmin):
    list_display = ("confidence_range", "market_regime", "volatility_regime", "sample_size", "optimal_position_size_pct", "risk_adjusted_return", "last_updated")
    list_filter = ("market_regime", "volatility_regime", "confidence_range")


@admin.register(FeatureImportance)
class FeatureImportanceAdmin(AggregateAdmin):
    list_display = ("feature_name", "strategy_type", "sample_size", "importance_score", "correlation_with_success", "last_updated")
    list_filter = ("strategy_type",)
    search_fields = ("feature_name", "strategy_type")
    ordering = ("-importance_score",)


@admin.register(RecentPerformance)
class RecentPerformanceAdmin(AggregateAdmin):
    list_display = (
        "system_type", "symbol", "window_outcomes", "pnl_pct_20", "pnl_pct_50", "win_rate_20", "win_rate_50",
        "total_outcomes", "last_entry_time", "last_exit_time", "last_updated",
    )  # fmt: skip
    list_filter = ("system_type", "symbol")
    search_fields = ("symbol",)


@admin.register(DailyOutcomes)
class DailyOutcomesAdmin(AggregateAdmin):
    list_display = ("system_type", "day", "outcomes", "wins", "shadow", "last_updated")
    list_filter = ("system_type",)
    search_fields = ("system_type",)
    date_hierarchy = "day"
    ordering = ("-day", "system_type")


@admin.register(ModelScoreCalibration)
class ModelScoreCalibrationAdmin(AggregateAdmin):
    list_display = ("bucket", "outcomes", "successes", "sum_ml_score", "last_updated")
    ordering = ("bucket",)


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    """Versions are written by training; here they are audited, activated and rolled back (via the services)."""

    list_display = (
        "version", "kind", "active", "samples_seen", "log_loss", "accuracy", "is_interim", "created_at", "activated_at",
        "sklearn_version", "artifact_size",
    )  # fmt: skip
    list_filter = ("kind", "active", "is_interim", "sklearn_version")
    search_fields = ("version", "sha256", "note")
    date_hierarchy = "created_at"
    exclude = ("artifact", "metrics")
    # Every field read-only but the note; the metrics shown as a table (metrics_shown), not as raw JSON.
    readonly_fields = tuple(
        "metrics_shown" if field.name == "metrics" else field.name
        for field in ModelVersion._meta.get_fields()
        if getattr(field, "concrete", False) and field.name not in ("artifact", "note")
    ) + ("artifact_size",)
    actions = ("activate", "roll_back")
    list_per_page = 100

    def get_queryset(self, request):
        # The artifact is loaded only to be checked, never to list or show a row.
        return super().get_queryset(request).defer("artifact").annotate(artifact_bytes=Length("artifact"))

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not (obj and obj.active)

    @admin.display(description="log-loss")
    def log_loss(self, obj):
        return _headline_metric(obj, "log_loss")

    @admin.display(description="accuracy")
    def accuracy(self, obj):
        return _headline_metric(obj, "accuracy")

    @admin.display(description="metrics")
    def metrics_shown(self, obj):
        return metrics_table(obj.metrics)

    @admin.display(description="artifact size")
    def artifact_size(self, obj):
        return f"{obj.artifact_bytes / 1024:,.1f} KiB"

    @admin.action(description="Activate the selected version", permissions=["change"])
    def activate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to activate.", messages.ERROR)
            return
        try:
            version = model_version_activate(version_id=queryset.get().pk)
        except ValidationError as error:
            self.message_user(request, "; ".join(error.messages), messages.ERROR)
            return
        self.message_user(request, f"{version.version} is now the active {version.kind} version.", messages.SUCCESS)

    @admin.action(description="Roll back to the previously active version (of the selected kinds)", permissions=["change"])
    def roll_back(self, request, queryset):
        for kind in sorted(set(queryset.values_list("kind", flat=True))):
            try:
                version = model_version_rollback(kind=kind)
            except ValidationError as error:
                self.message_user(request, "; ".join(error.messages), messages.ERROR)
                continue
            self.message_user(request, f"Rolled {kind} back to {version.version}.", messages.SUCCESS)


def _headline_metric(version: ModelVersion, name: str):
    # Batch versions store flat validation scores; online ones per learner, with the ensemble's.
    scores = version.metrics.get("ensemble", version.metrics) if version.metrics else {}
    value = scores.get(name)
    return None if value is None else round(value, 4)


@admin.register(TrainingExample)
class TrainingExampleAdmin(admin.ModelAdmin):
    """Examples come from the API and are learned by the next online update; they can be audited and deleted."""

    list_display = ("id", "symbol", "target", "source", "created_at", "learned_at")
    list_filter = ("target", "source", ("learned_at", admin.EmptyFieldListFilter))
    search_fields = ("symbol", "source")
    date_hierarchy = "created_at"
    readonly_fields = ("features", "target", "symbol", "source", "created_at", "learned_at")
    list_per_page = 100

    def has_add_permission(self, request):
        return False
