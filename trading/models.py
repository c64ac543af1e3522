"""Trading data: candles, paper accounts, paper trades, signal decisions and claimed engine ticks.

Prices, quantities and money are Decimal; times are UTC; a candle's time is its open time.
"""
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from learning.models import MONEY, PRICE, ExitReason, FillSource, MarketRegime, Side, SystemType, VolatilityRegime

RATE = {"max_digits": 10, "decimal_places": 8}


def default_exchange() -> str:
    """The exchange candles are stored under when none is named: the one replay and live trading read."""
    return settings.TRADING_EXCHANGE


class Candle(models.Model):
    exchange = models.CharField(max_length=32, default=default_exchange)
    symbol = models.CharField(max_length=32)
    timeframe = models.CharField(max_length=8)
    open_time = models.DateTimeField()
    open = models.DecimalField(**PRICE)
    high = models.DecimalField(**PRICE)
    low = models.DecimalField(**PRICE)
    close = models.DecimalField(**PRICE)
    volume = models.DecimalField(max_digits=32, decimal_places=10)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["exchange", "symbol", "timeframe", "open_time"], name="candle_unique_time"),
            models.CheckConstraint(
                condition=Q(low__gt=0, high__gte=models.F("low"), volume__gte=0), name="candle_prices_sane"
            ),
        ]
        indexes = [
            # An open trade's mark is the latest close of its symbol on any exchange: without the
            # exchange the unique key's index does not serve, and each open trade scanned every candle.
            models.Index(fields=["symbol", "timeframe", "-open_time"], name="candle_symbol_time_idx"),
        ]
        ordering = ["symbol", "timeframe", "open_time"]

    def __str__(self) -> str:
        return f"{self.exchange}:{self.symbol} {self.timeframe} {self.open_time:%Y-%m-%d %H:%M}"


class PaperAccount(models.Model):
    """A simulated account. Its risk limits are rows, so an operator can tune them in the admin."""

    name = models.CharField(max_length=64, unique=True)
    system_type = models.CharField(max_length=32, choices=SystemType.choices)
    starting_balance = models.DecimalField(**MONEY)
    current_balance = models.DecimalField(**MONEY)
    fee_rate = models.DecimalField(**RATE, default="0.0004", help_text="Charged on entry and on exit notional.")
    slippage_rate = models.DecimalField(**RATE, default="0.0002", help_text="Fills move this fraction against the trade.")
    is_paused = models.BooleanField(default=False, help_text="A paused account manages exits but opens nothing.")
    max_open_positions = models.PositiveIntegerField(default=4)
    max_open_per_symbol = models.PositiveIntegerField(default=1)
    cooldown_minutes = models.PositiveIntegerField(default=120, help_text="After a close, wait before re-entering a symbol.")
    daily_loss_limit_pct = models.DecimalField(**RATE, default="0.05", help_text="Stop opening after losing this fraction in a UTC day.")
    max_holding_minutes = models.PositiveIntegerField(default=48 * 60)
    broker = models.CharField(
        max_length=16, choices=[("paper", "Paper (simulated fills)"), ("exchange", "Exchange (ccxt)")], default="paper",
        help_text="Where orders go: the simulator, or TRADING_EXCHANGE (its testnet unless real money is enabled).",
    )
    real_money = models.BooleanField(
        default=False, help_text="With EXCHANGE_REAL_MONEY set too, orders go to the live exchange, not its testnet."
    )
    symbols = models.JSONField(
        default=list, blank=True,
        help_text="Market symbols this account trades (e.g. BTC/USDT:USDT), among TRADING_MARKETS; empty: all of them.",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.system_type})"

    def clean(self) -> None:
        """Its symbols must be markets the feed brings candles for (TRADING_MARKETS), each once, spelt as configured there."""
        from trading.marketdata.naming import normalize_symbol

        symbols = self.symbols if isinstance(self.symbols, list) else None
        if symbols is None or not all(isinstance(symbol, str) for symbol in symbols):
            raise ValidationError({"symbols": "Must be a list of market symbols, e.g. [\"BTC/USDT:USDT\"]."})
        configured = {normalize_symbol(market): market for market in settings.TRADING_MARKETS}
        unknown = [symbol for symbol in symbols if normalize_symbol(symbol) not in configured]
        if unknown:
            raise ValidationError({"symbols": f"{', '.join(unknown)} not among TRADING_MARKETS ({', '.join(settings.TRADING_MARKETS)})."})
        self.symbols = list(dict.fromkeys(configured[normalize_symbol(symbol)] for symbol in symbols))

    @property
    def traded_markets(self) -> list[str]:
        """The markets it trades: its symbols still among TRADING_MARKETS, else (none listed) all of TRADING_MARKETS."""
        if not self.symbols:
            return list(settings.TRADING_MARKETS)
        from trading.marketdata.naming import normalize_symbol

        chosen = {normalize_symbol(symbol) for symbol in self.symbols}
        return [market for market in settings.TRADING_MARKETS if normalize_symbol(market) in chosen]


class SignalDecision(models.Model):
    """Every signal an engine evaluated, taken or skipped, with what it was decided on."""

    account = models.ForeignKey(PaperAccount, on_delete=models.CASCADE, related_name="decisions")
    symbol = models.CharField(max_length=32)
    timeframe = models.CharField(max_length=8)
    candle_time = models.DateTimeField(help_text="Open time of the closed candle the decision was made on.")
    strategy_type = models.CharField(max_length=64)
    side = models.CharField(max_length=8, choices=Side.choices)
    features = models.JSONField(default=dict)
    technical_score = models.FloatField()
    model_probability = models.FloatField(null=True, blank=True)
    combined_confidence = models.FloatField()
    model_versions = models.JSONField(default=dict, blank=True)
    recommendation = models.JSONField(default=dict, help_text="The learning service's answer.")
    market_regime = models.CharField(max_length=16, choices=MarketRegime.choices)
    volatility_regime = models.CharField(max_length=16, choices=VolatilityRegime.choices)
    taken = models.BooleanField()
    reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "symbol", "timeframe", "candle_time", "strategy_type"], name="decision_once_per_candle"
            )
        ]
        indexes = [
            models.Index(fields=["account", "-candle_time"], name="decision_account_time_idx"),
            # The dashboard's latest decisions of every account: an index scan that stops after the
            # rows shown, instead of sorting every decision (1.4 s at 100,000 under load; 18 ms with it).
            models.Index(fields=["-candle_time", "-id"], name="decision_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.side} {'taken' if self.taken else 'skipped'} @ {self.candle_time:%Y-%m-%d %H:%M}"

    @staticmethod
    def explain(reasoning: str | None, reason: str | None) -> str:
        """Why a decision went as it did, as every surface shows it: the learner's reasoning (kept in
        `recommendation`), then what became of the signal when it was not opened (`reason`)."""
        parts = [text for text in ((reasoning or "").strip(), (reason or "").strip()) if text]
        return " — ".join(parts) if parts else "no reasoning recorded"

    @staticmethod
    def headline(reasoning: str | None, reason: str | None) -> str:
        """The explanation in one line: what became of a signal that was not opened, else the reasoning's
        conclusion (its last sentence: expected net P&L → take or skip)."""
        return (reason or "").strip() or (reasoning or "").strip().rsplit(". ", 1)[-1] or SignalDecision.explain(reasoning, reason)

    @property
    def explanation(self) -> str:
        return self.explain((self.recommendation or {}).get("reasoning"), self.reason)

    @property
    def explanation_headline(self) -> str:
        return self.headline((self.recommendation or {}).get("reasoning"), self.reason)


class PaperTrade(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    account = models.ForeignKey(PaperAccount, on_delete=models.PROTECT, related_name="trades")
    decision = models.OneToOneField(SignalDecision, null=True, blank=True, on_delete=models.SET_NULL, related_name="trade")
    is_shadow = models.BooleanField(default=False, help_text="A skipped signal followed to its would-be exit; no balance effect.")
    fill_source = models.CharField(
        max_length=8, choices=FillSource.choices, default=FillSource.PAPER,
        help_text="exchange: entry and exit prices, quantity and fees are the exchange's reported fills.",
    )  # fmt: skip
    symbol = models.CharField(max_length=32)
    timeframe = models.CharField(max_length=8)
    side = models.CharField(max_length=8, choices=Side.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    strategy_type = models.CharField(max_length=64)
    entry_time = models.DateTimeField()
    entry_price = models.DecimalField(**PRICE)
    exit_time = models.DateTimeField(null=True, blank=True)
    exit_price = models.DecimalField(**PRICE, null=True, blank=True)
    quantity = models.DecimalField(**PRICE)
    notional = models.DecimalField(**MONEY)
    leverage = models.DecimalField(max_digits=6, decimal_places=2, default=1)
    stop_loss_price = models.DecimalField(**PRICE, null=True, blank=True)
    take_profit_price = models.DecimalField(**PRICE, null=True, blank=True)
    trailing_stop_pct = models.DecimalField(**RATE, null=True, blank=True)
    breakeven_trigger_pct = models.DecimalField(**RATE, null=True, blank=True)
    best_price = models.DecimalField(**PRICE, null=True, blank=True, help_text="Most favourable price since entry (trailing stop).")
    max_holding_minutes = models.PositiveIntegerField()
    fees = models.DecimalField(**MONEY, default=0)
    net_pnl = models.DecimalField(**MONEY, null=True, blank=True)
    pnl_pct = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    exit_reason = models.CharField(max_length=16, choices=ExitReason.choices, blank=True)
    signal_features = models.JSONField(default=dict, help_text="Frozen at entry.")
    signal_confidence = models.FloatField()
    ml_score = models.FloatField(null=True, blank=True)
    market_regime = models.CharField(max_length=16, choices=MarketRegime.choices)
    volatility_regime = models.CharField(max_length=16, choices=VolatilityRegime.choices)
    model_versions = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["account", "status"], name="trade_account_status_idx"),
            models.Index(fields=["symbol", "status"], name="trade_symbol_status_idx"),
            models.Index(fields=["exit_time"], name="trade_exit_time_idx"),
            # The dashboard's open real trades and each account's last real entry: index reads of a
            # few rows, where the whole table was scanned (16 and 24 ms at 100,000 trades).
            models.Index(fields=["-entry_time", "-id"], condition=Q(status="open", is_shadow=False), name="trade_open_real_idx"),
            models.Index(fields=["account", "-entry_time"], condition=Q(is_shadow=False), name="trade_account_real_entry_idx"),
        ]
        constraints = [models.CheckConstraint(condition=Q(quantity__gt=0), name="trade_quantity_positive")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.symbol} {self.side} {self.status}"


class EngineTick(models.Model):
    """A claim on one candle for one engine account: two workers never act on the same candle."""

    account = models.ForeignKey(PaperAccount, on_delete=models.CASCADE, related_name="ticks")
    symbol = models.CharField(max_length=32)
    timeframe = models.CharField(max_length=8)
    candle_time = models.DateTimeField()
    claimed_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "symbol", "timeframe", "candle_time"], name="tick_claimed_once")
        ]

    def __str__(self) -> str:
        return f"{self.account_id}:{self.symbol} {self.timeframe} {self.candle_time:%Y-%m-%d %H:%M}"


class MarketFeedStatus(models.Model):
    """How the live market data feed is doing, one row per feed: its clock, and its last fetch and failures.

    Ticks never wait on this: the beat task records a fetch here and queues ticks on what is
    stored whatever happened. The health endpoint and the dashboard read it.
    """

    feed = models.CharField(max_length=32, unique=True, help_text="exchange or clock")
    # The clock over stored candles: market time = clock_origin + (now − clock_started_at) × clock_speed.
    clock_origin = models.DateTimeField(null=True, blank=True)
    clock_started_at = models.DateTimeField(null=True, blank=True)
    clock_speed = models.FloatField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True, help_text="First failure of the current streak.")
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    retry_after = models.DateTimeField(null=True, blank=True, help_text="Backing off: no fetch before this.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "market feed status"

    def __str__(self) -> str:
        return f"{self.feed} feed"


class ExchangeOrder(models.Model):
    """An order sent to an exchange, keyed by a client order id derived from the decision, so it is sent once.

    Its state follows the exchange's reports: new → partially filled → filled, or cancelled or
    rejected; filled quantity, average price and fees are the exchange's, never computed here.
    """

    class Status(models.TextChoices):
        NEW = "new", "New"
        PARTIALLY_FILLED = "partially_filled", "Partially filled"
        FILLED = "filled", "Filled"
        CANCELLED = "cancelled", "Cancelled"
        REJECTED = "rejected", "Rejected"

    TERMINAL = (Status.FILLED, Status.CANCELLED, Status.REJECTED)

    account = models.ForeignKey(PaperAccount, on_delete=models.PROTECT, related_name="exchange_orders")
    decision = models.ForeignKey(SignalDecision, null=True, blank=True, on_delete=models.SET_NULL, related_name="exchange_orders")
    trade = models.ForeignKey(PaperTrade, null=True, blank=True, on_delete=models.SET_NULL, related_name="exchange_orders")
    client_order_id = models.CharField(max_length=36, unique=True)
    role = models.CharField(max_length=16, help_text="entry, exit, stop_loss or take_profit")
    exchange = models.CharField(max_length=32)
    market = models.CharField(max_length=64, help_text="ccxt market symbol, e.g. BTC/USDT:USDT")
    side = models.CharField(max_length=4, choices=[("buy", "Buy"), ("sell", "Sell")])
    order_type = models.CharField(max_length=32)
    amount = models.DecimalField(**PRICE)
    trigger_price = models.DecimalField(**PRICE, null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NEW)
    exchange_order_id = models.CharField(max_length=64, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True, help_text="Set before sending: a crash after it means ask the exchange.")
    filled = models.DecimalField(**PRICE, default=0)
    average_price = models.DecimalField(**PRICE, null=True, blank=True)
    filled_at = models.DateTimeField(null=True, blank=True, help_text="When the exchange last reported a fill of it.")
    fee = models.DecimalField(**MONEY, default=0)
    fee_currency = models.CharField(max_length=16, blank=True)
    reject_reason = models.CharField(max_length=255, blank=True)
    last_report = models.JSONField(default=dict, blank=True, help_text="The exchange's last answer about this order.")
    is_real_money = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["account", "status"], name="exchange_order_open_idx")]

    def __str__(self) -> str:
        return f"{self.client_order_id} {self.side} {self.amount} {self.market} {self.status}"


class AccountDay(models.Model):
    """An account's closed real trades per UTC exit day: the equity curve's summary, kept by the trade services."""

    account = models.ForeignKey(PaperAccount, on_delete=models.CASCADE, related_name="days")
    day = models.DateField()
    closed_trades = models.PositiveIntegerField(default=0)
    winning_trades = models.PositiveIntegerField(default=0)
    net_pnl = models.DecimalField(max_digits=34, decimal_places=MONEY["decimal_places"], default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "day"], name="account_day_once")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.day}: {self.closed_trades} closed, net {self.net_pnl}"


class AccountDecisionCounts(models.Model):
    """An account's signals in the README's words (skipped = signals − taken), kept by the books as decisions and trades are written."""

    account = models.OneToOneField(PaperAccount, on_delete=models.CASCADE, primary_key=True, related_name="decision_counts")
    signals = models.PositiveBigIntegerField(default=0)
    taken = models.PositiveBigIntegerField(default=0)
    opened = models.PositiveBigIntegerField(default=0, help_text="Taken signals that became a real trade.")
    refused = models.PositiveBigIntegerField(default=0, help_text="Taken signals the risk limits refused: followed as a shadow trade.")

    def __str__(self) -> str:
        return f"{self.account_id}: {self.signals} signals, {self.taken} taken"
