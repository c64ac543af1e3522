"""Admin for trading data: browse, filter, audit and edit every table."""
import csv

from django.contrib import admin, messages
from django.http import HttpResponse
from django.urls import reverse
from django.utils.html import format_html

from tradelearn.admin_display import RealOrShadowFilter, column, minute, money, percent, plain, score
from trading.models import Candle, EngineTick, ExchangeOrder, PaperAccount, PaperTrade, SignalDecision
from trading.services.accounts import account_pause, account_resume
from trading.services.trades import TradeNotOpen, trade_close_manual


@admin.register(Candle)
class CandleAdmin(admin.ModelAdmin):
    list_display = (
        "symbol", "timeframe", "exchange", column("open_time", minute), column("open", plain), column("high", plain),
        column("low", plain), column("close", plain), column("volume", plain),
    )  # fmt: skip
    list_filter = ("exchange", "timeframe", "symbol")
    date_hierarchy = "open_time"
    search_fields = ("^symbol",)
    ordering = ("-open_time",)
    list_per_page = 100
    # Millions of rows: counting them all on every page would be the slowest part of the page.
    show_full_result_count = False


# --- Paper accounts, trades, decisions and engine ticks ----------------------------------------
# Balances and the money of a trade change only through the trade services, which keep the
# invariant balance = start + Σ net P&L of closed real trades − Σ entry fees of open ones; the
# admin shows them read-only and acts through those services.
@admin.register(PaperAccount)
class PaperAccountAdmin(admin.ModelAdmin):
    list_display = (
        "name", "system_type", column("starting_balance", money), column("current_balance", money), "is_paused",
        column("fee_rate", percent), column("slippage_rate", percent), "max_open_positions", "broker", "traded_markets",
    )  # fmt: skip
    list_filter = ("system_type", "is_paused", "broker")
    search_fields = ("name",)
    readonly_fields = ("current_balance", "created_at", "updated_at")
    actions = ("pause_accounts", "resume_accounts", "kill_switch_accounts")

    def get_readonly_fields(self, request, obj=None):
        # Changing the starting balance of an account with history would break its invariant.
        return self.readonly_fields + (("starting_balance",) if obj else ())

    def save_model(self, request, obj, form, change):
        if not change:
            obj.current_balance = obj.starting_balance
        super().save_model(request, obj, form, change)

    @admin.display(description="trades")
    def traded_markets(self, account):
        return ", ".join(account.traded_markets) if account.symbols else "all markets"

    @admin.action(description="Pause selected accounts (open trades still run to their exits)")
    def pause_accounts(self, request, queryset):
        for account_id in queryset.order_by("pk").values_list("pk", flat=True):
            account_pause(account_id=account_id)
        self.message_user(request, f"Paused {queryset.count()} accounts.", messages.SUCCESS)

    @admin.action(description="Kill switch: pause selected accounts and cancel their open exchange orders")
    def kill_switch_accounts(self, request, queryset):
        from trading.brokers import exchange_order_client
        from trading.services.orders import kill_switch

        cancelled = 0
        for account_id in queryset.order_by("pk").values_list("pk", flat=True):
            cancelled += sum(kill_switch(client_for=exchange_order_client, account_id=account_id).values())
        self.message_user(request, f"Paused {queryset.count()} accounts; cancelled {cancelled} open exchange orders.", messages.WARNING)

    @admin.action(description="Resume selected accounts")
    def resume_accounts(self, request, queryset):
        for account_id in queryset.order_by("pk").values_list("pk", flat=True):
            account_resume(account_id=account_id)
        self.message_user(request, f"Resumed {queryset.count()} accounts.", messages.SUCCESS)


TRADE_CSV_FIELDS = (
    "id", "account_id", "decision_id", "is_shadow", "symbol", "timeframe", "side", "status", "strategy_type",
    "entry_time", "entry_price", "exit_time", "exit_price", "quantity", "notional", "leverage", "stop_loss_price",
    "take_profit_price", "trailing_stop_pct", "breakeven_trigger_pct", "fees", "net_pnl", "pnl_pct", "exit_reason",
    "signal_confidence", "ml_score", "market_regime", "volatility_regime",
)  # fmt: skip
# An open trade's exits can be tuned by hand; what it was bought at, and everything once closed, cannot.
TRADE_EDITABLE_WHILE_OPEN = ("stop_loss_price", "take_profit_price", "trailing_stop_pct", "breakeven_trigger_pct", "max_holding_minutes")


@admin.register(PaperTrade)
class PaperTradeAdmin(admin.ModelAdmin):
    # The key columns first (symbol, side, exit time, P&L, success), so they show at 1440 px without scrolling.
    list_display = (
        "id", "symbol", "side", "status", column("exit_time", minute), column("net_pnl", money, "net P&L"),
        column("pnl_pct", percent, "P&L %"), "success", "exit_reason", "account_name", column("entry_time", minute),
        column("entry_price", plain), column("exit_price", plain), "is_shadow", "fill_source",
    )  # fmt: skip
    list_filter = (
        RealOrShadowFilter, "fill_source", "account", "account__system_type", "symbol", "status", "exit_reason", "side", "strategy_type",
        "entry_time", "exit_time",
    )  # fmt: skip
    search_fields = ("=id", "symbol", "strategy_type", "account__name")
    date_hierarchy = "entry_time"
    list_select_related = ("account",)
    list_per_page = 100
    show_full_result_count = False
    actions = ("export_csv", "close_at_last_close")
    exclude = ("decision",)

    def has_add_permission(self, request):
        return False  # trades are opened by the engines through trade_open

    def has_delete_permission(self, request, obj=None):
        return False  # a deleted trade would leave its money in the balance unexplained

    @admin.display(description="account", ordering="account__name")
    def account_name(self, obj):
        return obj.account.name

    @admin.display(description="success", boolean=True, ordering="net_pnl")
    def success(self, obj):
        # As the training record labels it: net P&L after fees > 0; open trades have none yet.
        return None if obj.net_pnl is None else obj.net_pnl > 0

    def get_readonly_fields(self, request, obj=None):
        fields = [field.name for field in PaperTrade._meta.fields if field.name != "decision"] + ["decision_shown"]
        if obj is not None and obj.status == PaperTrade.Status.OPEN:
            fields = [name for name in fields if name not in TRADE_EDITABLE_WHILE_OPEN]
        return fields

    @admin.display(description="Decision")
    def decision_shown(self, obj):
        decision = obj.decision
        if decision is None:
            return "—"
        url = reverse("admin:trading_signaldecision_change", args=[decision.pk])
        # format_html escapes its arguments into strings, so numbers are formatted first.
        model = "—" if decision.model_probability is None else score(decision.model_probability)
        return format_html(
            '<a href="{}">{}</a>: technical {}, model {}, combined {}. {}',
            url, decision, score(decision.technical_score), model, score(decision.combined_confidence),
            decision.explanation,
        )  # fmt: skip

    @admin.action(description="Export selected trades to CSV")
    def export_csv(self, request, queryset):
        response = HttpResponse(content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="paper_trades.csv"'
        writer = csv.writer(response)
        writer.writerow(TRADE_CSV_FIELDS)
        for row in queryset.order_by("pk").values_list(*TRADE_CSV_FIELDS).iterator(chunk_size=2000):
            writer.writerow(row)
        return response

    @admin.action(description="Close selected open trades at their symbol's last stored close (manual exit)")
    def close_at_last_close(self, request, queryset):
        closed, skipped = 0, []
        for trade in queryset.filter(status=PaperTrade.Status.OPEN).order_by("pk"):
            last = (
                Candle.objects.filter(symbol=trade.symbol, timeframe=trade.timeframe, open_time__gte=trade.entry_time)
                .order_by("-open_time")
                .first()
            )
            if last is None:
                skipped.append(f"#{trade.pk} (no candle since entry)")
                continue
            try:
                trade_close_manual(trade_id=trade.pk, price=last.close, time=last.open_time)
            except TradeNotOpen:
                skipped.append(f"#{trade.pk} (closed meanwhile)")
                continue
            closed += 1
        self.message_user(request, f"Closed {closed} trades.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"Not closed: {', '.join(skipped)}.", messages.WARNING)


@admin.register(SignalDecision)
class SignalDecisionAdmin(admin.ModelAdmin):
    """An audit record of what an engine decided and on what: read-only."""

    list_display = (
        column("candle_time", minute), "account", "symbol", "side", "strategy_type", column("technical_score", score, "technical"),
        column("model_probability", score, "model"), column("combined_confidence", score, "combined"), "taken", "why",
    )  # fmt: skip
    readonly_fields = ("why_in_full",)
    list_filter = ("taken", "account", "strategy_type", "side", "market_regime", "volatility_regime", "symbol")
    search_fields = ("symbol", "strategy_type", "reason")

    @admin.display(description="why")
    def why(self, obj):
        # What the dashboard shows for a decision: one line in the list, all of it on its page.
        return obj.explanation_headline

    @admin.display(description="why")
    def why_in_full(self, obj):
        return obj.explanation
    date_hierarchy = "candle_time"
    list_select_related = ("account",)
    list_per_page = 100
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the audit trail, and the dashboard's signal counts kept beside it (trading.services.summaries)


@admin.register(EngineTick)
class EngineTickAdmin(admin.ModelAdmin):
    """Claimed ticks, read-only. Deleting a claim lets the tick be run again (after a crash, say)."""

    list_display = ("account", "symbol", "timeframe", "candle_time", "claimed_at", "completed_at")
    list_filter = ("account", "symbol", "timeframe")
    date_hierarchy = "candle_time"
    list_select_related = ("account",)
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ExchangeOrder)
class ExchangeOrderAdmin(admin.ModelAdmin):
    """Orders as the exchange reported them: read-only (they change only by the exchange's reports)."""

    list_display = ("client_order_id", "account", "role", "market", "side", "amount", "status", "filled", "average_price", "fee", "is_real_money", "updated_at")
    list_filter = ("status", "role", "is_real_money", "account")
    search_fields = ("client_order_id", "exchange_order_id")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
