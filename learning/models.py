"""The persistent learning store: one training record per closed trade and five learned aggregates.

`TrainingRecord` (ml_training_data) is the source of truth. The five aggregate tables are
derived from it (and so is RecentPerformance, the rolling windows): each keeps running sums (the `sum_*`, `cum_*` columns) from which its
published figures (win rates, averages, Sharpe, drawdown, sizes, correlations) are computed,
and `rebuild_learning_stats` recomputes all of them from the records.

Units: every `*_pct` field is a fraction (0.01 means 1 %); money is in the quote currency.
"""
from django.conf import settings
from django.db import models


class SystemType(models.TextChoices):
    PAPER_TRADING = "paper_trading", "Paper trading"
    PROFIT_SCRAPING = "profit_scraping", "Profit scraping"


class Side(models.TextChoices):
    LONG = "long", "Long"
    SHORT = "short", "Short"


class MarketRegime(models.TextChoices):
    TRENDING_UP = "trending_up", "Trending up"
    TRENDING_DOWN = "trending_down", "Trending down"
    RANGING = "ranging", "Ranging"
    UNKNOWN = "unknown", "Unknown"


class VolatilityRegime(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    UNKNOWN = "unknown", "Unknown"


class FillSource(models.TextChoices):
    """Where a trade's fills came from: the simulator's rules, or an exchange's reports."""

    PAPER = "paper", "Paper (simulated fills)"
    EXCHANGE = "exchange", "Exchange (real fills)"


class ExitReason(models.TextChoices):
    TAKE_PROFIT = "take_profit", "Take profit"
    STOP_LOSS = "stop_loss", "Stop loss"
    TRAILING_STOP = "trailing_stop", "Trailing stop"
    BREAKEVEN_STOP = "breakeven_stop", "Breakeven stop"
    TIME_EXIT = "time_exit", "Time exit"
    SIGNAL_EXIT = "signal_exit", "Signal exit"
    MANUAL = "manual", "Manual"


PRICE = {"max_digits": 28, "decimal_places": 10}
MONEY = {"max_digits": 24, "decimal_places": 10}


class TrainingRecord(models.Model):
    """One closed trade (taken, or a skipped signal followed as a shadow trade) and its label."""

    trade_id = models.CharField(max_length=64)
    symbol = models.CharField(max_length=32)
    strategy_type = models.CharField(max_length=64)
    system_type = models.CharField(max_length=32, choices=SystemType.choices)
    side = models.CharField(max_length=8, choices=Side.choices)
    is_shadow = models.BooleanField(
        default=False, help_text="A skipped signal followed with the same fill rules; never touched a balance."
    )
    fill_source = models.CharField(
        max_length=8, choices=FillSource.choices, default=FillSource.PAPER,
        help_text="exchange: prices, quantity and fees are an exchange's reported fills; the batch retrain can weigh them above paper ones.",
    )  # fmt: skip
    confidence_score = models.FloatField(help_text="The signal's confidence at entry, in [0, 1].")
    ml_score = models.FloatField(null=True, blank=True, help_text="The hybrid model's probability at entry.")
    entry_price = models.DecimalField(**PRICE)
    exit_price = models.DecimalField(**PRICE)
    pnl_pct = models.DecimalField(max_digits=20, decimal_places=10, help_text="Net return on notional, after fees.")
    net_pnl = models.DecimalField(**MONEY, help_text="Profit or loss after fees on both sides.")
    fees = models.DecimalField(**MONEY)
    duration_minutes = models.PositiveIntegerField()
    market_regime = models.CharField(max_length=16, choices=MarketRegime.choices)
    volatility_regime = models.CharField(max_length=16, choices=VolatilityRegime.choices)
    exit_reason = models.CharField(max_length=16, choices=ExitReason.choices)
    success = models.BooleanField(help_text="Net P&L after fees > 0.")
    features = models.JSONField(default=dict, blank=True, help_text="Features frozen at entry.")
    model_versions = models.JSONField(default=dict, blank=True)
    entry_time = models.DateTimeField()
    exit_time = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    learned_at = models.DateTimeField(
        null=True, blank=True, editable=False,
        help_text="When an online update (or a replay's checkpoint) claimed it: learned, or skipped as not fitting the schema.",
    )  # fmt: skip

    class Meta:
        db_table = "ml_training_data"
        ordering = ["-id"]
        # Every index is paid for by every store, so only those a query uses (EXPLAINed): the
        # unique trade_id (as a constraint, which skips the LIKE index Django adds to a unique
        # CharField; nothing searches trade_id by prefix); the unlearned ids of the online update;
        # a system's outcomes by exit (recent records, the model's skill, per-system figures);
        # exits (retention, the latest exit, the admin's dates); symbol then strategy (API filters).
        # None for success, created_at or confidence_score: no query filters or orders by them.
        constraints = [models.UniqueConstraint(fields=["trade_id"], name="ml_training_data_trade_id_key")]
        indexes = [
            models.Index(fields=["id"], condition=models.Q(learned_at__isnull=True), name="ml_training_unlearned_idx"),
            models.Index(fields=["symbol", "strategy_type"], name="ml_training_symbol_strat_idx"),
            models.Index(fields=["system_type", "exit_time", "id"], name="ml_training_system_exit_idx"),
            models.Index(fields=["exit_time"], name="ml_training_exit_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.trade_id} {self.symbol} {self.side} {'win' if self.success else 'loss'}"


class TrainingRecordCorrection(models.Model):
    """One audited change to the source of truth: a record corrected or deleted, by whom, when, why.

    Records are append-only everywhere else; this row keeps the record as it was before and as it
    is after (null for a deletion), so every figure derived from it can be traced and undone.
    """

    class Action(models.TextChoices):
        CORRECT = "correct", "Corrected"
        DELETE = "delete", "Deleted"

    # Kept (set to null) when the record is deleted: trade_id and `before` still say which it was.
    record = models.ForeignKey(TrainingRecord, null=True, blank=True, on_delete=models.SET_NULL, related_name="corrections")
    trade_id = models.CharField(max_length=64, db_index=True)
    action = models.CharField(max_length=16, choices=Action.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    username = models.CharField(max_length=150, help_text="Who made it, kept if the user is later deleted.")
    reason = models.TextField()
    before = models.JSONField(help_text="The record's fields before.")
    after = models.JSONField(null=True, blank=True, help_text="The record's fields after; empty for a deletion.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "ml_training_data_corrections"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.trade_id} by {self.username}"

    def changed_fields(self) -> dict[str, tuple]:
        """Field → (before, after) for what the correction changed; every field for a deletion."""
        if self.after is None:
            return {name: (value, None) for name, value in self.before.items()}
        return {name: (value, self.after.get(name)) for name, value in self.before.items() if self.after.get(name) != value}


class StrategyPerformance(models.Model):
    """How a strategy did, per system, confidence range and market conditions."""

    strategy_type = models.CharField(max_length=64)
    system_type = models.CharField(max_length=32, choices=SystemType.choices)
    confidence_range = models.CharField(max_length=16)
    market_regime = models.CharField(max_length=16, choices=MarketRegime.choices)
    volatility_regime = models.CharField(max_length=16, choices=VolatilityRegime.choices)

    total_trades = models.PositiveIntegerField(default=0)
    winning_trades = models.PositiveIntegerField(default=0)
    losing_trades = models.PositiveIntegerField(default=0)
    win_rate = models.FloatField(default=0.0)
    avg_pnl_pct = models.FloatField(default=0.0)
    avg_duration_minutes = models.FloatField(default=0.0)
    total_pnl = models.DecimalField(**MONEY, default=0)
    max_drawdown_pct = models.FloatField(
        default=0.0, help_text="Largest fall of the cumulative pnl_pct from its peak, in recording order."
    )
    sharpe_ratio = models.FloatField(null=True, blank=True, help_text="Per trade: mean / standard deviation of pnl_pct.")

    sum_pnl_pct = models.FloatField(default=0.0)
    sum_sq_pnl_pct = models.FloatField(default=0.0)
    sum_win_pnl_pct = models.FloatField(default=0.0)
    sum_loss_pnl_pct = models.FloatField(default=0.0, help_text="Sum of losing trades' |pnl_pct|.")
    sum_duration_minutes = models.BigIntegerField(default=0)
    cum_pnl_pct = models.FloatField(default=0.0)
    peak_cum_pnl_pct = models.FloatField(default=0.0)
    last_updated = models.DateTimeField()

    class Meta:
        db_table = "strategy_performance_learning"
        verbose_name_plural = "strategy performance"
        constraints = [
            models.UniqueConstraint(
                fields=["strategy_type", "system_type", "confidence_range", "market_regime", "volatility_regime"],
                name="strategy_performance_unique_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.strategy_type}/{self.system_type} {self.confidence_range} {self.market_regime}/{self.volatility_regime}"


class SignalQuality(models.Model):
    """Calibration: the success rate a signal's confidence promised against the one it delivered."""

    signal_type = models.CharField(max_length=64)
    confidence_bucket = models.CharField(max_length=16)
    predicted_success_rate = models.FloatField(default=0.0, help_text="Mean confidence of the signals in the bucket.")
    actual_success_rate = models.FloatField(default=0.0)
    sample_size = models.PositiveIntegerField(default=0)
    market_conditions = models.JSONField(default=dict, help_text="Trades and wins per market and volatility regime.")
    calibration_score = models.FloatField(default=1.0, help_text="1 − |actual − predicted|: 1 is perfectly calibrated.")

    successes = models.PositiveIntegerField(default=0)
    sum_confidence = models.FloatField(default=0.0)
    last_updated = models.DateTimeField()

    class Meta:
        db_table = "signal_quality_learning"
        verbose_name_plural = "signal quality"
        constraints = [
            models.UniqueConstraint(fields=["signal_type", "confidence_bucket"], name="signal_quality_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.signal_type} {self.confidence_bucket}"


class MarketRegimeStats(models.Model):
    """Which strategy works best in each market and volatility regime."""

    market_regime = models.CharField(max_length=16, choices=MarketRegime.choices)
    volatility_regime = models.CharField(max_length=16, choices=VolatilityRegime.choices)
    best_strategy = models.CharField(max_length=64, blank=True)
    best_strategy_win_rate = models.FloatField(null=True, blank=True, help_text="Shrunk toward the regime's win rate.")
    total_trades_in_regime = models.PositiveIntegerField(default=0)
    avg_trade_duration_minutes = models.FloatField(default=0.0)
    regime_characteristics = models.JSONField(default=dict, help_text="Win rate, mean pnl and per-strategy tallies.")

    winning_trades = models.PositiveIntegerField(default=0)
    sum_pnl_pct = models.FloatField(default=0.0)
    sum_duration_minutes = models.BigIntegerField(default=0)
    last_updated = models.DateTimeField()

    class Meta:
        db_table = "market_regime_learning"
        verbose_name = "market regime"
        constraints = [
            models.UniqueConstraint(fields=["market_regime", "volatility_regime"], name="market_regime_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.market_regime}/{self.volatility_regime}"


class PositionSizing(models.Model):
    """The size that the evidence supports per confidence range and market conditions."""

    confidence_range = models.CharField(max_length=16)
    market_regime = models.CharField(max_length=16, choices=MarketRegime.choices)
    volatility_regime = models.CharField(max_length=16, choices=VolatilityRegime.choices)
    optimal_position_size_pct = models.FloatField(default=0.0, help_text="Capped fractional Kelly, of account equity.")
    risk_adjusted_return = models.FloatField(null=True, blank=True, help_text="Mean / standard deviation of pnl_pct.")
    sample_size = models.PositiveIntegerField(default=0)

    wins = models.PositiveIntegerField(default=0)
    sum_pnl_pct = models.FloatField(default=0.0)
    sum_sq_pnl_pct = models.FloatField(default=0.0)
    sum_win_pnl_pct = models.FloatField(default=0.0)
    sum_loss_pnl_pct = models.FloatField(default=0.0)
    last_updated = models.DateTimeField()

    class Meta:
        db_table = "position_sizing_learning"
        verbose_name_plural = "position sizing"
        constraints = [
            models.UniqueConstraint(
                fields=["confidence_range", "market_regime", "volatility_regime"], name="position_sizing_unique_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.confidence_range} {self.market_regime}/{self.volatility_regime}"


class FeatureImportance(models.Model):
    """How strongly each numeric feature at entry goes with success, per strategy."""

    feature_name = models.CharField(max_length=64)
    strategy_type = models.CharField(max_length=64)
    importance_score = models.FloatField(default=0.0, help_text="|correlation| shrunk by sample size.")
    correlation_with_success = models.FloatField(default=0.0, help_text="Point-biserial correlation with success.")
    sample_size = models.PositiveIntegerField(default=0)

    successes = models.PositiveIntegerField(default=0)
    sum_value = models.FloatField(default=0.0)
    sum_sq_value = models.FloatField(default=0.0)
    sum_value_success = models.FloatField(default=0.0)
    model_importance = models.FloatField(
        null=True,
        blank=True,
        help_text="Permutation importance in the active batch model (rise in log-loss when the feature is "
        "shuffled); on the rows with strategy_type '*', as the batch model serves all strategies.",
    )
    last_updated = models.DateTimeField()

    class Meta:
        db_table = "feature_importance_learning"
        verbose_name_plural = "feature importance"
        constraints = [
            models.UniqueConstraint(fields=["feature_name", "strategy_type"], name="feature_importance_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.feature_name} ({self.strategy_type})"


# RecentPerformance rows for a whole system (every symbol) carry this symbol.
ALL_SYMBOLS = "*"
# Outcomes a rolling window keeps: the 50 its figures read, and as many again for outcomes already
# stored when a decision about an earlier moment is made (an exit in the decision's own candle,
# a tick running late), which the figures at that moment must leave out.
RECENT_WINDOW_CAPACITY = 100


class RecentPerformance(models.Model):
    """The strategy's recent record: the last outcomes (shadow included) of a system, or of a system on one symbol.

    The rolling window beside the all-time aggregates: the decision-time features of
    learning.recent are read from `window`, and the figures below are those of its last 20
    and 50 outcomes, as of the latest one. Rebuilt from the training records like the others.
    """

    system_type = models.CharField(max_length=32, choices=SystemType.choices)
    symbol = models.CharField(max_length=32, help_text=f"'{ALL_SYMBOLS}' for every symbol of the system.")
    window = models.JSONField(
        default=list,
        help_text="The last outcomes in exit order, each [exit µs since 1970, entry µs, symbol, net P&L in "
        "units of 1e-10, success].",
    )
    total_outcomes = models.PositiveIntegerField(default=0, help_text="All outcomes ever folded in.")
    window_outcomes = models.PositiveSmallIntegerField(default=0, help_text="Outcomes the 50-window holds (at most 50).")
    pnl_pct_20 = models.FloatField(default=0.0, help_text="Mean net P&L of the last 20 outcomes (a fraction).")
    pnl_pct_50 = models.FloatField(default=0.0, help_text="Mean net P&L of the last 50 outcomes (a fraction).")
    win_rate_20 = models.FloatField(default=0.5, help_text="Win rate of the last 20 outcomes.")
    win_rate_50 = models.FloatField(default=0.5, help_text="Win rate of the last 50 outcomes.")
    last_entry_time = models.DateTimeField(null=True, blank=True, help_text="The latest signal among the last 50.")
    last_exit_time = models.DateTimeField(null=True, blank=True)
    last_updated = models.DateTimeField()

    class Meta:
        db_table = "recent_performance_learning"
        verbose_name_plural = "recent performance"
        constraints = [models.UniqueConstraint(fields=["system_type", "symbol"], name="recent_performance_unique_key")]

    def __str__(self) -> str:
        return f"{self.system_type} {self.symbol}"


class DailyOutcomes(models.Model):
    """Labelled outcomes (taken and shadow) per system and UTC exit day: the dashboard's learning progress,
    kept with the aggregates so the page never groups the whole training table."""

    system_type = models.CharField(max_length=32, choices=SystemType.choices)
    day = models.DateField(help_text="The outcomes' exit day (UTC).")
    outcomes = models.PositiveIntegerField(default=0)
    wins = models.PositiveIntegerField(default=0)
    shadow = models.PositiveIntegerField(default=0)
    last_updated = models.DateTimeField()

    class Meta:
        db_table = "daily_outcomes_learning"
        verbose_name_plural = "daily outcomes"
        constraints = [models.UniqueConstraint(fields=["system_type", "day"], name="daily_outcomes_unique_key")]

    def __str__(self) -> str:
        return f"{self.system_type} {self.day}"


class ModelScoreCalibration(models.Model):
    """The hybrid model's probability at entry (ml_score) against success, per tenth of probability:
    the dashboard's calibration of the model, kept with the aggregates."""

    bucket = models.PositiveSmallIntegerField(help_text="floor(ml_score × 10), 1.0 falling in 9.")
    outcomes = models.PositiveIntegerField(default=0)
    successes = models.PositiveIntegerField(default=0)
    sum_ml_score = models.FloatField(default=0.0)
    last_updated = models.DateTimeField()

    class Meta:
        db_table = "model_score_calibration_learning"
        constraints = [models.UniqueConstraint(fields=["bucket"], name="model_score_calibration_unique_key")]

    def __str__(self) -> str:
        return f"ml_score bucket {self.bucket}"


class ModelKind(models.TextChoices):
    ONLINE = "online", "Online ensemble"
    BATCH = "batch", "Batch model"


class ModelVersion(models.Model):
    """One trained model, serialized with skops, with what is needed to load, compare and audit it.

    At most one version per kind is active: that one serves predictions, and the online update
    continues learning from the active online version. `replaced` remembers the version that was
    active before this one was activated, so a roll-back returns to it.
    """

    kind = models.CharField(max_length=8, choices=ModelKind.choices)
    sequence = models.PositiveIntegerField(help_text="Number of this version among its kind.")
    version = models.CharField(max_length=32, unique=True)
    artifact = models.BinaryField(help_text="skops bytes of the model state (never pickle).")
    sha256 = models.CharField(max_length=64)
    sklearn_version = models.CharField(max_length=32)
    feature_schema = models.JSONField(help_text="Names and order of the features, with the schema version.")
    samples_seen = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(
        default=dict,
        blank=True,
        help_text="Batch: scores on the validation window. Online: per learner and for the ensemble, "
        "scores on its recent outcomes, each scored before the model learned it.",
    )
    validation_window = models.JSONField(
        default=dict, blank=True, help_text="Exit times and size of the trades the metrics were measured on."
    )
    feature_importance = models.JSONField(
        default=dict, blank=True, help_text="Batch: permutation importance (rise in log-loss) per feature."
    )
    trained_through_record_id = models.BigIntegerField(
        null=True, blank=True, help_text="The newest training record id this model had learned from."
    )
    trained_through_exit_time = models.DateTimeField(
        null=True, blank=True, help_text="The latest exit time of the trades it learned from."
    )
    is_interim = models.BooleanField(
        default=False,
        help_text="An online checkpoint written at the end of an update between milestones; the next "
        "checkpoint replaces it, so only milestones accumulate.",
    )
    replaced = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The version that was active before this one was activated.",
    )  # fmt: skip
    note = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=False)

    class Meta:
        db_table = "ml_model_versions"
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind"], condition=models.Q(active=True), name="model_version_one_active_per_kind"
            ),
            models.UniqueConstraint(fields=["kind", "sequence"], name="model_version_unique_sequence"),
        ]
        indexes = [models.Index(fields=["kind", "created_at"], name="ml_model_version_kind_idx")]

    def __str__(self) -> str:
        return f"{self.version}{' (active)' if self.active else ''}"


class TrainingExample(models.Model):
    """A labelled feature vector added through the API: not a trade (no prices), never aggregated.

    The next online update learns it and sets `learned_at`.
    """

    features = models.JSONField(help_text="Feature name to value, in the model feature schema.")
    target = models.BooleanField(help_text="True when the example is a net profit.")
    symbol = models.CharField(max_length=32)
    source = models.CharField(max_length=32, default="api")
    created_at = models.DateTimeField(auto_now_add=True)
    learned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "ml_training_examples"
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["id"], condition=models.Q(learned_at__isnull=True), name="ml_examples_pending_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"example {self.pk} {self.symbol} {'win' if self.target else 'loss'}"


class OnlineLearningState(models.Model):
    """The one row that serialises online updates (it is locked by each) and what they have learned.

    Which records and examples are learned is on those rows (`learned_at`, set by the claim of
    the update that learned them); this row counts what the updates did.
    """

    samples_learned = models.BigIntegerField(default=0)
    records_skipped = models.BigIntegerField(
        default=0, help_text="Records whose features do not fit the feature schema (never zero-filled)."
    )
    updates = models.PositiveIntegerField(default=0, help_text="Online updates that learned anything.")
    last_update_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "ml_online_state"
        verbose_name = "online learning state"
        verbose_name_plural = "online learning state"

    def __str__(self) -> str:
        return f"online learning: {self.samples_learned} samples in {self.updates} updates"


class LearningLease(models.Model):
    """A named lease that keeps a long job (the batch retrain) single-flight across processes.

    Claimed with a conditional UPDATE, so no transaction stays open while a model trains; it
    expires after the task time limit, so a killed worker does not block the job for ever.
    """

    name = models.CharField(max_length=64, primary_key=True)
    holder = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_result = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "ml_learning_leases"

    def __str__(self) -> str:
        return f"{self.name} ({'held by ' + self.holder if self.holder else 'free'})"
