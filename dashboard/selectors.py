"""Dashboard reads: every figure is aggregated in the database, so a page costs the same number of queries at any size."""
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import (
    Case,
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    Max,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.expressions import RowRange
from django.db.models.functions import Coalesce

from learning import selectors as learning_selectors
from learning.buckets import bucket_label
from learning.models import DailyOutcomes as DailyOutcomeCounts
from learning.models import (
    FeatureImportance,
    MarketRegimeStats,
    ModelKind,
    ModelScoreCalibration,
    ModelVersion,
    Side,
    SignalQuality,
)
from learning.services.aggregates import MODEL_IMPORTANCE_STRATEGY
from learning.skill import RunningSkill
from trading.execution import MONEY_QUANTUM
from trading.models import AccountDay, AccountDecisionCounts, PaperAccount, PaperTrade, SignalDecision
from trading.selectors import with_mark_price

# The rolling win rate spans this many days that had outcomes (rows, so SQLite computes it too).
ROLLING_DAYS = 30
RECENT_DECISIONS = 25
MODEL_VERSIONS_SHOWN = 20
TOP_FEATURES = 15
OPEN_TRADES_SHOWN = 50
# An account whose engine kept deciding this long after its last real trade has stopped trading: the page says why.
STOPPED_AFTER = timedelta(days=30)
METRIC_NAMES = ("n", "log_loss", "brier", "accuracy", "roc_auc", "ece")

OPEN_REAL = Q(is_shadow=False, status=PaperTrade.Status.OPEN)
PNL = {"max_digits": 40, "decimal_places": 20}


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# --- Learning progress ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DailyOutcomes:
    system_type: str
    day: date
    outcomes: int
    wins: int
    shadow: int
    rolling_outcomes: int
    rolling_wins: int

    @property
    def win_rate(self) -> float | None:
        return _rate(self.wins, self.outcomes)

    @property
    def rolling_win_rate(self) -> float | None:
        return _rate(self.rolling_wins, self.rolling_outcomes)


@dataclass(frozen=True, kw_only=True)
class SystemTotals:
    system_type: str
    outcomes: int
    wins: int
    shadow: int

    @property
    def win_rate(self) -> float | None:
        return _rate(self.wins, self.outcomes)


def learning_progress(*, rolling_days: int = ROLLING_DAYS) -> list[DailyOutcomes]:
    """Labelled outcomes (taken and shadow) per system and UTC exit day, with a rolling win rate.

    Read from the daily summary the store keeps with the aggregates (a row per system and day),
    so the page costs the same at any number of records.
    """
    rolling = {
        "partition_by": [F("system_type")],
        "order_by": F("day").asc(),
        "frame": RowRange(start=-(rolling_days - 1), end=0),
    }
    fields = ("system_type", "day", "outcomes", "wins", "shadow", "rolling_outcomes", "rolling_wins")
    rows = (
        DailyOutcomeCounts.objects.filter(outcomes__gt=0)
        .annotate(
            rolling_outcomes=Window(Sum("outcomes"), **rolling),
            rolling_wins=Window(Sum("wins"), **rolling),
        )
        .order_by("system_type", "day")
        .values_list(*fields)
    )
    return [DailyOutcomes(**dict(zip(fields, row))) for row in rows]


def system_totals(progress: list[DailyOutcomes]) -> list[SystemTotals]:
    """Per-system totals of the daily rows (already aggregated: one row per system and day)."""
    totals: dict[str, list[int]] = {}
    for row in progress:
        tally = totals.setdefault(row.system_type, [0, 0, 0])
        tally[0] += row.outcomes
        tally[1] += row.wins
        tally[2] += row.shadow
    return [SystemTotals(system_type=system, outcomes=n, wins=w, shadow=s) for system, (n, w, s) in totals.items()]


@dataclass(frozen=True, kw_only=True)
class WeeklyOutcomes:
    system_type: str
    week: date  # its Monday
    outcomes: int
    rolling_win_rate: float | None  # at the week's last day with outcomes


def outcomes_by_week(progress: list[DailyOutcomes]) -> list[WeeklyOutcomes]:
    """The daily rows rolled up per system and ISO week: a count per day swings too much to read."""
    weeks: dict[tuple[str, date], list] = {}  # outcomes, and the last day's rolling rate
    for row in progress:
        tally = weeks.setdefault((row.system_type, row.day - timedelta(days=row.day.weekday())), [0, None])
        tally[0] += row.outcomes
        tally[1] = row
    return [
        WeeklyOutcomes(system_type=system, week=week, outcomes=outcomes, rolling_win_rate=last.rolling_win_rate)
        for (system, week), (outcomes, last) in weeks.items()
    ]


@dataclass(frozen=True, kw_only=True)
class MonthlyOutcomes:
    system_type: str
    month: date
    outcomes: int
    wins: int
    shadow: int
    rolling_win_rate: float | None

    @property
    def win_rate(self) -> float | None:
        return _rate(self.wins, self.outcomes)


def outcomes_by_month(progress: list[DailyOutcomes]) -> list[MonthlyOutcomes]:
    """The daily rows rolled up per system and month (a table short enough to read); rolling rate at the month's last day."""
    months: dict[tuple[str, date], list] = {}  # outcomes, wins, shadow, and the last day
    for row in progress:
        tally = months.setdefault((row.system_type, row.day.replace(day=1)), [0, 0, 0, None])
        tally[0] += row.outcomes
        tally[1] += row.wins
        tally[2] += row.shadow
        tally[3] = row
    return [
        MonthlyOutcomes(system_type=system, month=month, outcomes=n, wins=w, shadow=s, rolling_win_rate=last.rolling_win_rate)
        for (system, month), (n, w, s, last) in months.items()
    ]


# --- Calibration ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CalibrationBucket:
    bucket: str
    count: int
    predicted: float
    realised: float


def calibration_by_confidence() -> list[CalibrationBucket]:
    """signal_quality_learning pooled over signal types: mean confidence promised against success delivered."""
    rows = (
        SignalQuality.objects.values("confidence_bucket")
        .annotate(count=Sum("sample_size"), successes=Sum("successes"), confidence=Sum("sum_confidence"))
        .filter(count__gt=0)
        .order_by("confidence_bucket")
    )
    return [
        CalibrationBucket(
            bucket=row["confidence_bucket"],
            count=row["count"],
            predicted=row["confidence"] / row["count"],
            realised=row["successes"] / row["count"],
        )
        for row in rows
    ]


def calibration_by_model_score() -> list[CalibrationBucket]:
    """The hybrid model's ml_score at entry against success, in the confidence buckets' ten ranges (from their summary)."""
    rows = ModelScoreCalibration.objects.filter(outcomes__gt=0).order_by("bucket").values("bucket", "outcomes", "successes", "sum_ml_score")
    return [
        CalibrationBucket(
            bucket=bucket_label(row["bucket"]),
            count=row["outcomes"],
            predicted=row["sum_ml_score"] / row["outcomes"],
            realised=row["successes"] / row["outcomes"],
        )
        for row in rows
    ]


@dataclass(frozen=True, kw_only=True)
class ModelSkillRow:
    system_type: str
    skill: RunningSkill


def model_skill() -> list[ModelSkillRow]:
    """The learner's running out-of-sample skill per system, and whether it has earned a say (learning.skill)."""
    return [ModelSkillRow(system_type=system, skill=skill) for system, skill in learning_selectors.model_skill_by_system().items()]


# --- Accounts, equity and open trades ---------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class EquityPoint:
    day: date
    trades: int
    wins: int
    net_pnl: Decimal
    equity: Decimal


@dataclass(frozen=True, kw_only=True)
class MonthlyEquity:
    month: date
    trades: int
    net_pnl: Decimal
    equity: Decimal


def equity_by_month(curve: list[EquityPoint]) -> list[MonthlyEquity]:
    """An equity curve's days rolled up per month: trades and net P&L in it, equity at its end."""
    months: dict[date, list] = {}  # trades, net P&L, and the equity at the last day
    for point in curve:
        tally = months.setdefault(point.day.replace(day=1), [0, Decimal(0), None])
        tally[0] += point.trades
        tally[1] += point.net_pnl
        tally[2] = point.equity
    return [
        MonthlyEquity(month=month, trades=trades, net_pnl=net_pnl, equity=equity) for month, (trades, net_pnl, equity) in months.items()
    ]


@dataclass(frozen=True, kw_only=True)
class AccountRow:
    id: int
    name: str
    system_type: str
    starting_balance: Decimal
    current_balance: Decimal
    closed_trades: int
    winning_trades: int
    realised_pnl: Decimal
    open_trades: int
    unrealised_pnl: Decimal
    curve: list[EquityPoint]
    stopped: "Inactivity | None" = None

    @property
    def win_rate(self) -> float | None:
        return _rate(self.winning_trades, self.closed_trades)

    @property
    def equity(self) -> Decimal:
        return self.current_balance + self.unrealised_pnl

    @property
    def by_month(self) -> list[MonthlyEquity]:
        return equity_by_month(self.curve)


@dataclass(frozen=True, kw_only=True)
class OpenTrade:
    id: int
    account_id: int
    account: str
    symbol: str
    side: str
    entry_time: datetime
    entry_price: Decimal
    quantity: Decimal
    mark_price: Decimal | None
    unrealised_pnl: Decimal | None


def _equity_curves(starting_balances: dict[int, Decimal]) -> dict[int, list[EquityPoint]]:
    """Per account: starting balance plus the cumulative net P&L of closed real trades, at each exit day's end.

    Read from the per-account daily summary the trade services keep (trading.services.summaries),
    a row per account and exit day, instead of grouping every closed trade.
    """
    rows = (
        AccountDay.objects.filter(closed_trades__gt=0)
        .order_by("account_id", "day")
        .values_list("account_id", "day", "closed_trades", "winning_trades", "net_pnl")
    )
    curves: dict[int, list[EquityPoint]] = {}
    for account_id, day, trades, wins, day_pnl in rows:
        curve = curves.setdefault(account_id, [])
        equity = (curve[-1].equity if curve else starting_balances[account_id]) + day_pnl
        curve.append(EquityPoint(day=day, trades=trades, wins=wins, net_pnl=day_pnl, equity=equity))
    return curves


def _open_real_trades():
    """Open real trades marked to the last close their account has seen (trading.selectors.with_mark_price, as account_figures does)."""
    direction = Case(When(side=Side.LONG, then=Value(1)), default=Value(-1))
    return with_mark_price(PaperTrade.objects.filter(OPEN_REAL)).annotate(
        unrealised_pnl=ExpressionWrapper(
            direction * F("quantity") * (F("mark_price") - F("entry_price")), output_field=DecimalField(**PNL)
        ),
    )


@dataclass(frozen=True, kw_only=True)
class Inactivity:
    """An account whose engine kept deciding but stopped opening trades, and what it did instead."""

    last_entry: datetime | None  # the newest real trade's entry (None: it never opened one)
    latest_signal: datetime
    signals: int  # decided since the last entry
    skipped: int
    refused: int
    paused: bool

    @property
    def why(self) -> str:
        since = f"No trade opened since {self.last_entry:%Y-%m-%d}" if self.last_entry else "No trade opened yet"
        parts = [f"{since}: of its {self.signals:,} signals to {self.latest_signal:%Y-%m-%d}"]
        if self.skipped:
            parts.append(
                f"the learner skipped {self.skipped:,} (expected net P&L after fees not above "
                f"{settings.LEARNING_MIN_EXPECTED_PNL_PCT:.2%} per trade)"
            )
        if self.refused:
            parts.append(f"risk limits refused {self.refused:,} taken ones")
        text = parts[0] + ", " + " and ".join(parts[1:]) + "." if len(parts) > 1 else parts[0] + "."
        return text + (" The account is paused." if self.paused else "")


def _inactivity(accounts: list[PaperAccount]) -> dict[int, Inactivity]:
    """Per account that made no real trade in its last STOPPED_AFTER of signals: what its signals became.

    Each account comes annotated with `last_entry`, its newest real trade's entry (see `accounts`).
    """
    if not accounts:
        return {}
    by_id = {account.pk: account for account in accounts}
    since_last_entry = Q()
    for account in accounts:
        last = account.last_entry
        since_last_entry |= Q(account_id=account.pk, **({"candle_time__gte": last} if last else {}))
    rows = (
        SignalDecision.objects.filter(since_last_entry)
        .values("account_id")
        .annotate(
            signals=Count("id"),
            skipped=Count("id", filter=Q(taken=False)),
            refused=Count("id", filter=Q(taken=True, trade__is_shadow=True)),
            latest_signal=Max("candle_time"),
        )
        .order_by()
    )
    result = {}
    for row in rows:
        account = by_id[row["account_id"]]
        since = account.last_entry
        if since is not None and row["latest_signal"] - since < STOPPED_AFTER:
            continue
        result[account.pk] = Inactivity(
            last_entry=since, latest_signal=row["latest_signal"], signals=row["signals"], skipped=row["skipped"],
            refused=row["refused"], paused=account.is_paused,
        )  # fmt: skip
    return result


def accounts(*, open_trades: list[OpenTrade]) -> list[AccountRow]:
    """Every paper account: balances, realised P&L and equity curve of its real trades, unrealised P&L of `open_trades`."""
    unrealised: dict[int, Decimal] = {}
    open_counts: dict[int, int] = {}
    for trade in open_trades:
        open_counts[trade.account_id] = open_counts.get(trade.account_id, 0) + 1
        if trade.unrealised_pnl is not None:
            unrealised[trade.account_id] = unrealised.get(trade.account_id, Decimal(0)) + trade.unrealised_pnl
    # The newest real entry per account: an index read each (trade_account_real_entry_idx), not a GROUP BY of every trade.
    last_real = PaperTrade.objects.filter(account=OuterRef("pk"), is_shadow=False).order_by("-entry_time")
    rows = list(PaperAccount.objects.annotate(last_entry=Subquery(last_real.values("entry_time")[:1])).order_by("pk"))
    curves = _equity_curves({account.pk: account.starting_balance for account in rows})
    stopped = _inactivity(rows)
    result = []
    for account in rows:
        curve = curves.get(account.pk, [])
        result.append(
            AccountRow(
                id=account.pk,
                name=account.name,
                system_type=account.system_type,
                starting_balance=account.starting_balance,
                current_balance=account.current_balance,
                closed_trades=sum(point.trades for point in curve),
                winning_trades=sum(point.wins for point in curve),
                realised_pnl=curve[-1].equity - account.starting_balance if curve else Decimal(0),
                open_trades=open_counts.get(account.pk, 0),
                unrealised_pnl=unrealised.get(account.pk, Decimal(0)).quantize(MONEY_QUANTUM),
                curve=curve,
                stopped=stopped.get(account.pk),
            )
        )
    return result


def open_trades() -> list[OpenTrade]:
    """Every open real trade (the accounts' risk limits keep them few), newest first, with its mark and unrealised P&L.

    Both are None when no candle of the symbol has been stored since the entry.
    """
    rows = _open_real_trades().order_by("-entry_time", "-pk").values(
        "id", "account_id", "account__name", "symbol", "side", "entry_time", "entry_price", "quantity", "mark_price",
        "unrealised_pnl",
    )  # fmt: skip
    return [
        OpenTrade(
            id=row["id"],
            account_id=row["account_id"],
            account=row["account__name"],
            symbol=row["symbol"],
            side=row["side"],
            entry_time=row["entry_time"],
            entry_price=row["entry_price"],
            quantity=row["quantity"],
            mark_price=row["mark_price"],
            unrealised_pnl=row["unrealised_pnl"],
        )
        for row in rows
    ]


# --- Decisions --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DecisionRow:
    id: int
    candle_time: datetime
    account: str
    symbol: str
    side: str
    strategy_type: str
    technical_score: float
    model_probability: float | None
    combined_confidence: float
    taken: bool
    reasoning: str
    reason: str
    trade_id: int | None
    trade_is_shadow: bool | None

    @property
    def explanation(self) -> str:
        return SignalDecision.explain(self.reasoning, self.reason)

    @property
    def headline(self) -> str:
        return SignalDecision.headline(self.reasoning, self.reason)

    @property
    def outcome(self) -> str:
        """The README's words: opened, taken but refused by risk limits, skipped (followed as a shadow trade)."""
        if not self.taken:
            return "skipped"
        if self.trade_id is None:
            return "taken, not filled"
        return "taken, refused by risk limits" if self.trade_is_shadow else "opened"


def decision_counts() -> dict[str, int]:
    """Signals in the README's words: taken (opened, or refused by risk limits) and skipped.

    A taken signal the risk limits refuse is followed as a shadow trade, as a skipped one is;
    one that has no trade yet waits for the next candle's open (or expired in a gap). Summed over
    the per-account counts the books keep (trading.services.summaries), not counted row by row.
    """
    counts = AccountDecisionCounts.objects.aggregate(
        signals=Coalesce(Sum("signals"), 0), taken=Coalesce(Sum("taken"), 0),
        opened=Coalesce(Sum("opened"), 0), refused=Coalesce(Sum("refused"), 0),
    )  # fmt: skip
    counts["skipped"] = counts["signals"] - counts["taken"]
    counts["not_filled"] = counts["taken"] - counts["opened"] - counts["refused"]
    return counts


def recent_decisions(*, limit: int = RECENT_DECISIONS) -> list[DecisionRow]:
    """The latest decisions of every account, by candle time, with why they went as they did."""
    rows = (
        SignalDecision.objects.order_by("-candle_time", "-pk")
        .annotate(reasoning=F("recommendation__reasoning"))
        .values(
            "id", "candle_time", "account__name", "symbol", "side", "strategy_type", "technical_score",
            "model_probability", "combined_confidence", "taken", "reasoning", "reason", "trade__id", "trade__is_shadow",
        )[:limit]
    )  # fmt: skip
    return [
        DecisionRow(
            id=row["id"],
            candle_time=row["candle_time"],
            account=row["account__name"],
            symbol=row["symbol"],
            side=row["side"],
            strategy_type=row["strategy_type"],
            technical_score=row["technical_score"],
            model_probability=row["model_probability"],
            combined_confidence=row["combined_confidence"],
            taken=row["taken"],
            reasoning=row["reasoning"] or "",
            reason=row["reason"],
            trade_id=row["trade__id"],
            trade_is_shadow=row["trade__is_shadow"],
        )
        for row in rows
    ]


# --- Models, regimes and features -------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class VersionRow:
    id: int
    version: str
    kind: str
    sequence: int
    active: bool
    is_interim: bool
    samples_seen: int
    created_at: datetime
    note: str
    metrics: dict[str, float | int | None]


def model_versions(*, limit: int = MODEL_VERSIONS_SHOWN) -> list[VersionRow]:
    """Active versions first, then the newest, with their headline validation metrics."""
    rows = ModelVersion.objects.order_by("-active", "-pk").values(
        "id", "version", "kind", "sequence", "active", "is_interim", "samples_seen", "created_at", "note", "metrics"
    )[:limit]
    result = []
    for row in rows:
        metrics = row.pop("metrics") or {}
        # Batch versions store flat validation scores; online ones per learner, with the ensemble's.
        scores = metrics.get("ensemble", metrics) if row["kind"] == ModelKind.ONLINE else metrics
        result.append(VersionRow(**row, metrics={name: scores.get(name) for name in METRIC_NAMES}))
    return result


@dataclass(frozen=True, kw_only=True)
class RegimeRow:
    market_regime: str
    volatility_regime: str
    trades: int
    win_rate: float | None
    avg_pnl_pct: float | None
    avg_duration_minutes: float
    best_strategy: str
    best_strategy_win_rate: float | None


def regimes() -> list[RegimeRow]:
    """market_regime_learning: how each regime went and the strategy that did best in it."""
    rows = MarketRegimeStats.objects.order_by("market_regime", "volatility_regime").values(
        "market_regime", "volatility_regime", "total_trades_in_regime", "winning_trades", "sum_pnl_pct",
        "avg_trade_duration_minutes", "best_strategy", "best_strategy_win_rate",
    )  # fmt: skip
    return [
        RegimeRow(
            market_regime=row["market_regime"],
            volatility_regime=row["volatility_regime"],
            trades=row["total_trades_in_regime"],
            win_rate=_rate(row["winning_trades"], row["total_trades_in_regime"]),
            avg_pnl_pct=_rate(row["sum_pnl_pct"], row["total_trades_in_regime"]),
            avg_duration_minutes=row["avg_trade_duration_minutes"],
            best_strategy=row["best_strategy"],
            best_strategy_win_rate=row["best_strategy_win_rate"],
        )
        for row in rows
    ]


@dataclass(frozen=True, kw_only=True)
class FeatureRow:
    feature_name: str
    strategy_type: str
    sample_size: int
    correlation_with_success: float
    importance_score: float


@dataclass(frozen=True, kw_only=True)
class ModelImportanceRow:
    feature_name: str
    model_importance: float


def feature_correlations(*, limit: int = TOP_FEATURES) -> list[FeatureRow]:
    """The features most correlated with success (shrunk by sample size), per strategy."""
    rows = (
        FeatureImportance.objects.exclude(strategy_type=MODEL_IMPORTANCE_STRATEGY)
        .order_by("-importance_score", "feature_name", "strategy_type")
        .values("feature_name", "strategy_type", "sample_size", "correlation_with_success", "importance_score")[:limit]
    )
    return [FeatureRow(**row) for row in rows]


def model_importance(*, limit: int = TOP_FEATURES) -> list[ModelImportanceRow]:
    """Permutation importance of each feature in the active batch model (rise in log-loss when shuffled)."""
    rows = (
        FeatureImportance.objects.filter(strategy_type=MODEL_IMPORTANCE_STRATEGY, model_importance__isnull=False)
        .order_by("-model_importance", "feature_name")
        .values("feature_name", "model_importance")[:limit]
    )
    return [ModelImportanceRow(**row) for row in rows]
