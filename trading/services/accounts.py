"""Paper account services: create, pause and resume accounts, and their equity figures."""
import logging
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q, Sum

from trading.execution import MONEY_QUANTUM, direction
from trading.models import PaperAccount, PaperTrade
from trading.selectors import with_mark_price

logger = logging.getLogger(__name__)


@transaction.atomic
def account_create(
    *,
    name: str,
    system_type: str,
    starting_balance: Decimal,
    fee_rate: Decimal | None = None,
    slippage_rate: Decimal | None = None,
    max_open_positions: int | None = None,
    max_open_per_symbol: int | None = None,
    cooldown_minutes: int | None = None,
    daily_loss_limit_pct: Decimal | None = None,
    max_holding_minutes: int | None = None,
    is_paused: bool = False,
    symbols: list[str] | None = None,
    broker: str = "paper",
) -> PaperAccount:
    """A new account whose current balance is its starting balance; unset limits take the model defaults.

    `symbols` are the markets it trades (among TRADING_MARKETS); none: all of them.
    """
    if starting_balance <= 0:
        raise ValidationError({"starting_balance": "Must be greater than zero."})
    limits = {
        "fee_rate": fee_rate,
        "slippage_rate": slippage_rate,
        "max_open_positions": max_open_positions,
        "max_open_per_symbol": max_open_per_symbol,
        "cooldown_minutes": cooldown_minutes,
        "daily_loss_limit_pct": daily_loss_limit_pct,
        "max_holding_minutes": max_holding_minutes,
    }
    account = PaperAccount(
        name=name,
        system_type=system_type,
        starting_balance=starting_balance,
        current_balance=starting_balance,
        is_paused=is_paused,
        symbols=list(symbols or []),
        broker=broker,
        **{field: value for field, value in limits.items() if value is not None},
    )
    account.full_clean()
    account.save()
    logger.info("Created paper account %s with %s", account, starting_balance)
    return account


def _set_paused(account_id: int, paused: bool) -> PaperAccount:
    account = PaperAccount.objects.select_for_update(of=("self",)).get(pk=account_id)
    if account.is_paused != paused:
        account.is_paused = paused
        account.save(update_fields=["is_paused", "updated_at"])
        logger.info("Account %s %s", account, "paused" if paused else "resumed")
    return account


@transaction.atomic
def account_pause(*, account_id: int) -> PaperAccount:
    """Stop the account opening trades; its open trades keep being managed to their exits. Idempotent."""
    return _set_paused(account_id, True)


@transaction.atomic
def account_resume(*, account_id: int) -> PaperAccount:
    """Let a paused account open trades again. Idempotent."""
    return _set_paused(account_id, False)


@transaction.atomic
def account_set_symbols(*, account_id: int, symbols: list[str]) -> PaperAccount:
    """Trade only these markets from the next tick on (an empty list: all of TRADING_MARKETS); open trades elsewhere still run to their exits."""
    account = PaperAccount.objects.select_for_update(of=("self",)).get(pk=account_id)
    account.symbols = symbols
    account.full_clean()
    account.save(update_fields=["symbols", "updated_at"])
    logger.info("Account %s trades %s", account, ", ".join(account.traded_markets))
    return account


@dataclass(frozen=True, kw_only=True)
class AccountFigures:
    """Where an account stands. Unrealised P&L marks open trades to the last stored close of their symbol."""

    margin_in_use: Decimal
    free_balance: Decimal
    realised_pnl: Decimal
    unrealised_pnl: Decimal
    equity: Decimal
    return_pct: Decimal
    open_trades: int
    closed_trades: int
    winning_trades: int
    win_rate: float | None


def account_margin(open_trades) -> Decimal:
    """Margin committed to these open real trades (shadow trades commit none)."""
    return sum((trade.notional / trade.leverage for trade in open_trades), Decimal(0)).quantize(MONEY_QUANTUM)


def account_figures(*, account: PaperAccount) -> AccountFigures:
    """Balances, realised and unrealised P&L and counts of the account's real (non-shadow) trades."""
    real = PaperTrade.objects.filter(account=account, is_shadow=False)
    open_trades = list(with_mark_price(real.filter(status=PaperTrade.Status.OPEN)))
    closed = real.filter(status=PaperTrade.Status.CLOSED).aggregate(
        count=Count("id"), wins=Count("id", filter=Q(net_pnl__gt=0)), pnl=Sum("net_pnl")
    )
    margin = account_margin(open_trades)
    unrealised = Decimal(0)
    for trade in open_trades:
        if trade.mark_price is not None:
            unrealised += direction(trade.side) * trade.quantity * (trade.mark_price - trade.entry_price)
    unrealised = unrealised.quantize(MONEY_QUANTUM)
    equity = account.current_balance + unrealised
    return AccountFigures(
        margin_in_use=margin,
        free_balance=account.current_balance - margin,
        realised_pnl=closed["pnl"] or Decimal(0),
        unrealised_pnl=unrealised,
        equity=equity,
        return_pct=((equity - account.starting_balance) / account.starting_balance).quantize(Decimal("1e-6")),
        open_trades=len(open_trades),
        closed_trades=closed["count"],
        winning_trades=closed["wins"],
        win_rate=closed["wins"] / closed["count"] if closed["count"] else None,
    )


LIVE_ACCOUNT_PREFIX = "live-"


@transaction.atomic
def accounts_ensure_live(*, starting_balance: Decimal) -> list[tuple[PaperAccount, bool]]:
    """One live paper account per engine (`live-paper_trading`, `live-profit_scraping`), created if missing.

    Returns each account with whether it was created now. An existing one is left as it is
    (paused or not), so running this on every start-up changes nothing after the first.
    """
    from learning.models import SystemType

    accounts = []
    for system_type in SystemType.values:
        name = f"{LIVE_ACCOUNT_PREFIX}{system_type}"
        existing = PaperAccount.objects.filter(name=name).first()
        if existing is not None:
            accounts.append((existing, False))
            continue
        accounts.append((account_create(name=name, system_type=system_type, starting_balance=starting_balance), True))
    return accounts
