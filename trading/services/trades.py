"""Paper trade services: open under the account's risk limits, manage exits candle by candle, close into learning."""
import logging
import math
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from learning.models import ExitReason, MarketRegime, Side, VolatilityRegime
from learning.services import store_trade_outcome
from learning.types import TradeOutcome
from tradelearn.notifications import notify
from trading import execution
from trading.models import FillSource, PaperAccount, PaperTrade, SignalDecision
from trading.services.accounts import account_margin
from trading.services.summaries import account_summaries_add

logger = logging.getLogger(__name__)

# Lock order, everywhere in this module: the account row first, then its trade rows by primary
# key. trade_open, trades_process_candle and trade_close all follow it, so two workers never
# deadlock on one account. Shadow trades touch no account row and lock only themselves.


class Refusal(StrEnum):
    """Why trade_open declined a trade: normal outcomes under the risk limits, not errors."""

    ACCOUNT_PAUSED = "account_paused"
    MAX_OPEN_POSITIONS = "max_open_positions"
    MAX_OPEN_PER_SYMBOL = "max_open_per_symbol"
    COOLDOWN = "cooldown"
    DAILY_LOSS_LIMIT = "daily_loss_limit"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    EXIT_CROSSED_AT_FILL = "exit_crossed_at_fill"
    NOT_FILLED = "not_filled"  # an exchange account's entry order was not placed, or filled nothing


@dataclass(frozen=True, kw_only=True)
class ReportedFill:
    """A fill as the exchange reported it: average price, quantity and fee (in the quote currency)."""

    price: Decimal
    quantity: Decimal
    fee: Decimal


@dataclass(frozen=True, kw_only=True)
class TradeOpenResult:
    trade: PaperTrade | None = None
    refusal: Refusal | None = None
    detail: str = ""

    @property
    def opened(self) -> bool:
        return self.trade is not None


@dataclass(frozen=True, kw_only=True)
class TradeOpenRequest:
    """A trade to open, decided on a candle's close and filled at the next open: what trade_open and a replay's books take.

    The signal's side, features, confidence and regimes are stored with the trade (learning reads
    them when it closes); the exits are prices or fractions of the entry. Checked by trade_open
    (ValidationError naming every bad field), not here, so a bad request is reported whole.
    """

    decision: SignalDecision | None
    symbol: str
    timeframe: str
    side: str
    strategy_type: str
    fill_time: datetime
    fill_price: Decimal
    size_fraction: Decimal
    stop_loss_price: Decimal | None
    take_profit_price: Decimal | None
    signal_features: dict[str, float]
    signal_confidence: float
    market_regime: str
    volatility_regime: str
    ml_score: float | None = None
    model_versions: dict[str, str] | None = None
    trailing_stop_pct: Decimal | None = None
    breakeven_trigger_pct: Decimal | None = None
    max_holding_minutes: int | None = None
    leverage: Decimal = Decimal(1)
    is_shadow: bool = False


class TradeNotOpen(Exception):
    """The trade is closed already (by an exit, another worker or a person)."""


def _lock_account(account_id: int) -> PaperAccount:
    return PaperAccount.objects.select_for_update(of=("self",)).get(pk=account_id)


def _positive(value, name: str, errors: dict, *, required: bool = True) -> None:
    if value is None:
        if required:
            errors[name] = "This field is required."
    elif not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
        errors[name] = "Must be a positive Decimal."


def _is_probability(value) -> bool:
    # NaN fails the comparison, so it is refused too.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1


def _validate_open(*, account: PaperAccount, request: TradeOpenRequest, check_decision: bool) -> None:
    """Raise one ValidationError naming every bad field of trade_open's request."""
    r = request
    errors: dict[str, str] = {}
    if not r.symbol:
        errors["symbol"] = "Must not be empty."
    if not r.timeframe:
        errors["timeframe"] = "Must not be empty."
    if r.side not in Side.values:
        errors["side"] = f"Unknown side {r.side!r}; expected long or short."
    if not isinstance(r.fill_time, datetime) or r.fill_time.utcoffset() is None:
        errors["fill_time"] = "Must be a timezone-aware datetime."
    _positive(r.fill_price, "fill_price", errors)
    if not isinstance(r.size_fraction, Decimal) or not 0 < r.size_fraction <= 1:
        errors["size_fraction"] = "Must be a Decimal in (0, 1]."
    _positive(r.stop_loss_price, "stop_loss_price", errors, required=False)
    _positive(r.take_profit_price, "take_profit_price", errors, required=False)
    _positive(r.trailing_stop_pct, "trailing_stop_pct", errors, required=False)
    _positive(r.breakeven_trigger_pct, "breakeven_trigger_pct", errors, required=False)
    if r.trailing_stop_pct is not None and "trailing_stop_pct" not in errors and r.trailing_stop_pct >= 1:
        errors["trailing_stop_pct"] = "Must be below 1."
    if not isinstance(r.leverage, Decimal) or not r.leverage >= 1:
        errors["leverage"] = "Must be a Decimal of at least 1."
    if r.max_holding_minutes is not None and (not isinstance(r.max_holding_minutes, int) or r.max_holding_minutes <= 0):
        errors["max_holding_minutes"] = "Must be a positive number of minutes."
    # The outcome of this trade must be storable when it closes: check now what learning will check then.
    if not _is_probability(r.signal_confidence):
        errors["signal_confidence"] = "Must be a number in [0, 1]."
    if r.ml_score is not None and not _is_probability(r.ml_score):
        errors["ml_score"] = "Must be a number in [0, 1]."
    if not isinstance(r.signal_features, dict) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in r.signal_features.values()
    ):
        errors["signal_features"] = "Must map feature names to finite numbers."
    if r.market_regime not in MarketRegime.values:
        errors["market_regime"] = f"Unknown market regime {r.market_regime!r}."
    if r.volatility_regime not in VolatilityRegime.values:
        errors["volatility_regime"] = f"Unknown volatility regime {r.volatility_regime!r}."
    if r.decision is not None and r.decision.pk is not None:
        if r.decision.account_id != account.pk:
            errors["decision"] = "Belongs to another account."
        elif check_decision and PaperTrade.objects.filter(decision=r.decision).exists():
            errors["decision"] = "Already has a trade."
    if errors:
        raise ValidationError(errors)


@dataclass(frozen=True, kw_only=True)
class RiskFacts:
    """What the risk limits read about an account's real trades at the moment of a fill."""

    open_total: int
    open_in_symbol: int
    last_exit: datetime | None  # the symbol's latest exit at or before the fill
    realised_today: Decimal  # net P&L closed on the fill's UTC day, up to the fill
    margin_in_use: Decimal  # margin of the open trades


def utc_day_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def trade_risk_facts(account: PaperAccount, symbol: str, fill_time: datetime) -> RiskFacts:
    """The account's risk facts (from the database) for a real trade in `symbol` filled at `fill_time`."""
    real = PaperTrade.objects.filter(account=account, is_shadow=False)
    open_trades = list(real.filter(status=PaperTrade.Status.OPEN).only("symbol", "notional", "leverage"))
    closed = real.filter(status=PaperTrade.Status.CLOSED, exit_time__lte=fill_time)
    realised = closed.filter(exit_time__gte=utc_day_start(fill_time)).aggregate(pnl=Sum("net_pnl"))["pnl"]
    return RiskFacts(
        open_total=len(open_trades),
        open_in_symbol=sum(1 for trade in open_trades if trade.symbol == symbol),
        last_exit=closed.filter(symbol=symbol).order_by("-exit_time").values_list("exit_time", flat=True).first(),
        realised_today=realised or Decimal(0),
        margin_in_use=account_margin(open_trades),
    )


def risk_refusal(account: PaperAccount, symbol: str, fill_time: datetime, facts: RiskFacts) -> tuple[Refusal, str] | None:
    """The first risk limit of the account that this trade would break, if any."""
    if account.is_paused:
        return Refusal.ACCOUNT_PAUSED, "The account is paused."
    if facts.open_total >= account.max_open_positions:
        return Refusal.MAX_OPEN_POSITIONS, f"{facts.open_total} trades open, the limit is {account.max_open_positions}."
    if facts.open_in_symbol >= account.max_open_per_symbol:
        return Refusal.MAX_OPEN_PER_SYMBOL, f"{facts.open_in_symbol} {symbol} trades open, the limit is {account.max_open_per_symbol}."
    cooldown = timedelta(minutes=account.cooldown_minutes)
    last_exit = facts.last_exit
    if last_exit is not None and fill_time < last_exit + cooldown:
        return Refusal.COOLDOWN, f"{symbol} closed at {last_exit:%Y-%m-%d %H:%M}; cooling down until {last_exit + cooldown:%Y-%m-%d %H:%M}."
    # The UTC day of the fill (the simulated clock, so replays refuse exactly as live would).
    realised_today = facts.realised_today
    if realised_today < 0:
        # The balance the day began with, give or take the entry fees of trades still open.
        day_start_balance = account.current_balance - realised_today
        if -realised_today >= account.daily_loss_limit_pct * day_start_balance:
            return Refusal.DAILY_LOSS_LIMIT, (
                f"Lost {-realised_today:.2f} today, at or over {account.daily_loss_limit_pct:%} of {day_start_balance:.2f}."
            )
    return None


def _exit_crossed(side: str, entry_price: Decimal, stop_loss_price, take_profit_price) -> str | None:
    sign = execution.direction(side)
    if stop_loss_price is not None and sign * (entry_price - stop_loss_price) <= 0:
        return f"The stop {stop_loss_price} is not on the losing side of the fill {entry_price}."
    if take_profit_price is not None and sign * (take_profit_price - entry_price) <= 0:
        return f"The target {take_profit_price} is not on the winning side of the fill {entry_price}."
    return None


@transaction.atomic
def trade_open(*, account: PaperAccount, request: TradeOpenRequest, fill: ReportedFill | None = None) -> TradeOpenResult:
    """Open a trade decided on the close of a candle, filled at `fill_price`, the next candle's open.

    The fill moves against the trade by the account's slippage. A real trade must pass the
    account's risk limits (paused, open positions in total and per symbol, the per-symbol
    cooldown after a close, the daily loss limit on the fill's UTC day, free balance); a
    refusal is returned, not raised. Its margin is `size_fraction` of the balance, cut to the
    free balance (balance minus the margin of open trades). The entry fee is recorded on the
    trade and taken from the balance now, as an exchange would; the exit fee and the gross P&L
    reach it at close. A shadow trade (a skipped signal followed with the same fill rules)
    passes no risk limit, is sized on the balance alone and never touches it. A bad request
    raises ValidationError naming each bad field.

    With `fill` (an exchange account's entry, already filled there) the trade takes the exchange's
    price, quantity and fee instead of the simulator's, and no risk limit is checked: they were
    checked before the order was placed, and the books must hold what the exchange holds.
    """
    _validate_open(account=account, request=request, check_decision=True)
    facts = None
    if request.is_shadow:
        # Sized on the balance as it is now (the caller's copy may be older); no lock, no write.
        account = PaperAccount.objects.get(pk=account.pk)
    else:
        account = _lock_account(account.pk)
        facts = None if fill is not None else trade_risk_facts(account, request.symbol, request.fill_time)
    result = trade_prepare_open(account=account, facts=facts, request=request, validated=True, fill=fill)
    if result.trade is not None:
        result.trade.save(force_insert=True)
        account_summaries_add(opened_trades=[result.trade])
        if not request.is_shadow:
            account.save(update_fields=["current_balance", "updated_at"])
        logger.info("Opened %s%s", result.trade, " (shadow)" if request.is_shadow else "")
        if not request.is_shadow:
            trade = result.trade
            notify(
                "trade_opened", f"{account.name}: opened {trade.side} {trade.quantity.normalize()} {trade.symbol} at {trade.entry_price.normalize()}",
                account=account.name, trade_id=trade.pk, symbol=trade.symbol, side=trade.side, entry_price=str(trade.entry_price), quantity=str(trade.quantity),
            )  # fmt: skip
    return result


def trade_prepare_open(
    *, account: PaperAccount, facts: RiskFacts | None, request: TradeOpenRequest, validated: bool = False,
    fill: ReportedFill | None = None,
) -> TradeOpenResult:
    """trade_open's rules without the database: the unsaved trade, the account's balance charged its entry fee, or a refusal.

    `facts` are the account's risk facts (None for a shadow trade, which passes no limit). A
    replay keeps its books in memory and calls this directly; trade_open saves what it returns.
    """
    if not validated:
        _validate_open(account=account, request=request, check_decision=False)
    symbol, side, fill_time = request.symbol, request.side, request.fill_time
    if facts is not None:
        refusal = risk_refusal(account, symbol, fill_time, facts)
        if refusal is not None:
            logger.info("Refused %s %s on %s: %s", side, symbol, account, refusal[1])
            return TradeOpenResult(refusal=refusal[0], detail=refusal[1])

    if fill is not None:
        return TradeOpenResult(trade=_new_trade(account, request, fill.price, fill.quantity, fill.fee, fill_source=FillSource.EXCHANGE))
    entry_price = execution.entry_fill_price(side=side, open_price=request.fill_price, slippage_rate=account.slippage_rate)
    crossed = _exit_crossed(side, entry_price, request.stop_loss_price, request.take_profit_price)
    if crossed is not None:
        logger.info("Refused %s %s on %s: %s", side, symbol, account, crossed)
        return TradeOpenResult(refusal=Refusal.EXIT_CROSSED_AT_FILL, detail=crossed)

    free_balance = account.current_balance - (facts.margin_in_use if facts is not None else 0)
    leverage = request.leverage
    quantity = execution.position_quantity(
        equity=account.current_balance,
        free_balance=free_balance,
        size_fraction=request.size_fraction,
        entry_price=entry_price,
        fee_rate=account.fee_rate,
        leverage=leverage,
    )
    if quantity <= 0:
        detail = f"Free balance {free_balance} buys no {symbol} at {entry_price}."
        logger.info("Refused %s %s on %s: %s", side, symbol, account, detail)
        return TradeOpenResult(refusal=Refusal.INSUFFICIENT_BALANCE, detail=detail)

    entry_fee = execution.fee_for(notional=execution.notional_for(quantity=quantity, price=entry_price), fee_rate=account.fee_rate)
    return TradeOpenResult(trade=_new_trade(account, request, entry_price, quantity, entry_fee, fill_source=FillSource.PAPER))


def _new_trade(account: PaperAccount, request: TradeOpenRequest, entry_price: Decimal, quantity: Decimal, entry_fee: Decimal, *, fill_source: str) -> PaperTrade:
    """The unsaved trade at this fill; a real trade's entry fee leaves the account's balance now."""
    trade = PaperTrade(
        account=account,
        decision=request.decision,
        is_shadow=request.is_shadow,
        fill_source=fill_source,
        symbol=request.symbol,
        timeframe=request.timeframe,
        side=request.side,
        strategy_type=request.strategy_type,
        entry_time=request.fill_time,
        entry_price=entry_price,
        quantity=quantity,
        notional=execution.notional_for(quantity=quantity, price=entry_price),
        leverage=request.leverage,
        stop_loss_price=request.stop_loss_price,
        take_profit_price=request.take_profit_price,
        trailing_stop_pct=request.trailing_stop_pct,
        breakeven_trigger_pct=request.breakeven_trigger_pct,
        max_holding_minutes=request.max_holding_minutes or account.max_holding_minutes,
        fees=entry_fee,
        signal_features=request.signal_features,
        signal_confidence=request.signal_confidence,
        ml_score=request.ml_score,
        market_regime=request.market_regime,
        volatility_regime=request.volatility_regime,
        model_versions=request.model_versions or {},
    )
    if not request.is_shadow:
        account.current_balance -= entry_fee
    return trade


def trade_position(*, trade: PaperTrade, account: PaperAccount) -> execution.Position:
    """The simulator's view of an open trade, with the account's current fee and slippage rates."""
    return execution.Position(
        side=trade.side,
        entry_time=trade.entry_time,
        entry_price=trade.entry_price,
        quantity=trade.quantity,
        fee_rate=account.fee_rate,
        slippage_rate=account.slippage_rate,
        stop_loss_price=trade.stop_loss_price,
        take_profit_price=trade.take_profit_price,
        max_holding=timedelta(minutes=trade.max_holding_minutes),
        breakeven_trigger_pct=trade.breakeven_trigger_pct,
        trailing_stop_pct=trade.trailing_stop_pct,
        best_price=trade.best_price,
    )


@transaction.atomic
def trades_process_candle(
    *, account: PaperAccount, symbol: str, timeframe: str, candle: execution.CandleLike
) -> list[PaperTrade]:
    """Manage the exits of the account's open trades (real and shadow) in `symbol` on one closed candle.

    Call it for every closed candle in order, from the candle a trade filled in (its open is the
    entry) onwards; trades that filled after this candle's open are left alone. Each exit goes
    through trade_close; a trade that stays open keeps the candle in its best price, which moves
    breakeven and trailing stops from the next candle on. Returns the trades closed.
    """
    open_trades = PaperTrade.objects.filter(
        account_id=account.pk,
        symbol=symbol,
        timeframe=timeframe,
        status=PaperTrade.Status.OPEN,
        entry_time__lte=candle.open_time,
    )
    # Most candles find nothing open: skip the account lock then, so workers on other symbols never wait.
    if not open_trades.exists():
        return []
    account = _lock_account(account.pk)
    closed = []
    for trade in open_trades.select_for_update(of=("self",)).order_by("pk"):
        exited = trade_manage_exit(trade=trade, account=account, candle=candle)
        if exited is not None:
            closed.append(exited)
    return closed


def trade_manage_exit(*, trade: PaperTrade, account: PaperAccount, candle: execution.CandleLike) -> PaperTrade | None:
    """Close `trade` if `candle` exits it (returning the closed trade); otherwise take the candle into its best price.

    The one place an open trade meets a candle: trades_process_candle and the engine both use it.
    """
    fill, best_price_moved = trade_exit_step(trade=trade, account=account, candle=candle)
    if fill is not None:
        return trade_close(trade=trade, exit_time=fill.time, exit_price=fill.price, exit_reason=fill.kind)
    if best_price_moved:
        trade.save(update_fields=["best_price"])
    return None


def _tracks_best_price(trade: PaperTrade) -> bool:
    # Only breakeven and trailing stops read the best price; other trades skip the write.
    return bool(trade.trailing_stop_pct or trade.breakeven_trigger_pct)


def trade_quiet_range(*, trade: PaperTrade, account: PaperAccount) -> execution.QuietRange:
    """The candles on which trade_exit_step leaves `trade` untouched: no exit and no new best price.

    It holds until trade_exit_step next changes the trade; the engine looks at it first so
    that most candles need no exact exit check at all.
    """
    return execution.quiet_range(trade_position(trade=trade, account=account), track_best=_tracks_best_price(trade))


def trade_exit_step(*, trade: PaperTrade, account: PaperAccount, candle: execution.CandleLike) -> tuple[execution.ExitFill | None, bool]:
    """The exit `candle` gives `trade`, if any; else the candle moves its best price (True when that changed it)."""
    position = trade_position(trade=trade, account=account)
    fill = execution.check_exit(position, candle)
    if fill is not None:
        return fill, False
    if not _tracks_best_price(trade):
        return None, False
    best_price = execution.after_candle(position, candle).best_price
    if best_price == trade.best_price:
        return None, False
    trade.best_price = best_price
    return None, True


def trade_learning_id(trade: PaperTrade) -> str:
    # Trade ids are unique across accounts already; the account makes the id readable and stable.
    return f"acct{trade.account_id}-trade{trade.pk}"


def trade_outcome(trade: PaperTrade, account: PaperAccount) -> TradeOutcome:
    """What learning stores of a closed trade."""
    return TradeOutcome(
        trade_id=trade_learning_id(trade),
        symbol=trade.symbol,
        strategy_type=trade.strategy_type,
        system_type=account.system_type,
        side=trade.side,
        confidence_score=trade.signal_confidence,
        ml_score=trade.ml_score,
        entry_price=trade.entry_price,
        exit_price=trade.exit_price,
        pnl_pct=trade.pnl_pct,
        net_pnl=trade.net_pnl,
        fees=trade.fees,
        market_regime=trade.market_regime,
        volatility_regime=trade.volatility_regime,
        exit_reason=trade.exit_reason,
        entry_time=trade.entry_time,
        exit_time=trade.exit_time,
        success=trade.net_pnl > 0,
        features=dict(trade.signal_features),
        model_versions=dict(trade.model_versions),
        is_shadow=trade.is_shadow,
        fill_source=trade.fill_source,
    )


_updates_deferred: ContextVar[bool] = ContextVar("model_updates_deferred", default=False)


@contextmanager
def model_updates_deferred():
    """Within this block closes queue no model update: the caller drives the updates itself."""
    token = _updates_deferred.set(True)
    try:
        yield
    finally:
        _updates_deferred.reset(token)


def _queue_model_update() -> None:
    """Queue the online model update; run by on_commit, so it never sees an uncommitted close."""
    if _updates_deferred.get():
        return
    # Imported when needed: learning.tasks loads the Celery app, which importing trading need not.
    from learning.tasks import learning_online_update_queue

    learning_online_update_queue()


@transaction.atomic
def trade_close(
    *, trade: PaperTrade, exit_time: datetime, exit_price: Decimal, exit_reason: str, exit_fee: Decimal | None = None
) -> PaperTrade:
    """Close an open trade at `exit_price` (the fill, slippage included) in one transaction.

    The trade gets its exit, total fees and net P&L; a real trade's account receives the gross
    P&L minus the exit fee (its entry fee left the balance at open); learning stores the
    outcome (success = net P&L after fees > 0), and after commit the online model update is
    queued. Anything failing rolls all of it back. Raises TradeNotOpen if already closed.
    `exit_fee` is the exchange's reported fee for an exchange fill; else the account's fee rate applies.
    """
    errors: dict[str, str] = {}
    _positive(exit_price, "exit_price", errors)
    if exit_reason not in ExitReason.values:
        errors["exit_reason"] = f"Unknown exit reason {exit_reason!r}."
    if not isinstance(exit_time, datetime) or exit_time.utcoffset() is None:
        errors["exit_time"] = "Must be a timezone-aware datetime."
    if errors:
        raise ValidationError(errors)

    account = None if trade.is_shadow else _lock_account(trade.account_id)
    trade = PaperTrade.objects.select_for_update(of=("self",)).get(pk=trade.pk)
    if trade.status != PaperTrade.Status.OPEN:
        raise TradeNotOpen(f"Trade {trade.pk} is already closed ({trade.exit_reason} at {trade.exit_time}).")
    if exit_time < trade.entry_time:
        raise ValidationError({"exit_time": f"Must not be before the entry at {trade.entry_time}."})
    if account is None:
        account = trade.account

    trade_settle(trade=trade, account=account, exit_time=exit_time, exit_price=exit_price, exit_reason=exit_reason, exit_fee=exit_fee)
    trade.save(update_fields=["status", "exit_time", "exit_price", "exit_reason", "fees", "net_pnl", "pnl_pct"])
    if not trade.is_shadow:
        account.save(update_fields=["current_balance", "updated_at"])
        account_summaries_add(closed_trades=[trade])

    stored = store_trade_outcome(outcome=trade_outcome(trade, account))
    if stored.duplicate:
        logger.warning("Outcome of %s was stored already; learning left unchanged", trade)
    transaction.on_commit(_queue_model_update, robust=True)
    logger.info("Closed %s: %s at %s, net %s", trade, exit_reason, exit_price, trade.net_pnl)
    if not trade.is_shadow:
        notify(
            "trade_closed", f"{account.name}: closed {trade.side} {trade.symbol} ({exit_reason}) at {exit_price.normalize()}, net P&L {trade.net_pnl:.2f}",
            account=account.name, trade_id=trade.pk, symbol=trade.symbol, side=trade.side, exit_reason=exit_reason,
            exit_price=str(exit_price), net_pnl=str(trade.net_pnl),
        )  # fmt: skip
    return trade


def trade_settle(
    *, trade: PaperTrade, account: PaperAccount, exit_time: datetime, exit_price: Decimal, exit_reason: str, exit_fee: Decimal | None = None
) -> None:
    """trade_close's accounting without the database: the trade's exit, fees and net P&L, and the account's balance.

    A real trade's account receives the gross P&L minus the exit fee (its entry fee left the
    balance at open). A replay keeps its books in memory and calls this directly.
    """
    pnl = execution.trade_pnl(
        side=trade.side,
        quantity=trade.quantity,
        entry_price=trade.entry_price,
        exit_price=exit_price,
        entry_fee=trade.fees,
        fee_rate=account.fee_rate,
        exit_fee=exit_fee,
    )
    trade.status = PaperTrade.Status.CLOSED
    trade.exit_time = exit_time
    trade.exit_price = exit_price
    trade.exit_reason = exit_reason
    trade.fees = pnl.fees
    trade.net_pnl = pnl.net_pnl
    trade.pnl_pct = pnl.pnl_pct
    if not trade.is_shadow:
        account.current_balance += pnl.gross_pnl - pnl.exit_fee


@transaction.atomic
def trade_close_manual(*, trade_id: int, price: Decimal, time: datetime | None = None) -> PaperTrade:
    """Close a trade by hand (API, admin): a market exit at `price`, which pays the account's slippage.

    `time` defaults to now; it may not precede the entry nor lie in the future.
    """
    trade = PaperTrade.objects.select_related("account").get(pk=trade_id)
    now = timezone.now()
    exit_time = now if time is None else time
    errors: dict[str, str] = {}
    _positive(price, "price", errors)
    if exit_time.utcoffset() is None:
        errors["time"] = "Must be a timezone-aware datetime."
    elif exit_time < trade.entry_time:
        errors["time"] = f"Must not be before the entry at {trade.entry_time:%Y-%m-%dT%H:%M:%SZ}."
    elif exit_time > now:
        errors["time"] = "Must not be in the future."
    if errors:
        raise ValidationError(errors)
    exit_price = execution.market_exit_price(side=trade.side, price=price, slippage_rate=trade.account.slippage_rate)
    return trade_close(trade=trade, exit_time=exit_time, exit_price=exit_price, exit_reason=ExitReason.MANUAL)
