"""Real candles from data/candles, trades opened on them, the account balance invariant, and the per-account summaries."""
import csv
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache

from django.db.models import Sum

from tests.conftest import BUNDLED_CANDLES
from tests.trading.factories import TradeOpenRequestFactory
from trading.models import AccountDay, AccountDecisionCounts, Candle, PaperAccount, PaperTrade
from trading.services.trades import TradeOpenResult, trade_open

CANDLES_DIR = BUNDLED_CANDLES


@cache
def _rows(symbol: str) -> dict[datetime, tuple[str, ...]]:
    with open(CANDLES_DIR / f"{symbol}-1h.csv", newline="") as handle:
        return {datetime.fromtimestamp(int(row[0]) / 1000, UTC): tuple(row) for row in csv.reader(handle) if row[0].isdigit()}


def candle(symbol: str, when: str) -> Candle:
    """The real hourly candle opening at `when` (ISO, UTC), as an unsaved Candle with Decimal prices."""
    open_time = datetime.fromisoformat(when).replace(tzinfo=UTC)
    _, open_, high, low, close, volume = _rows(symbol)[open_time]
    return Candle(
        symbol=symbol, timeframe="1h", open_time=open_time,
        open=Decimal(open_), high=Decimal(high), low=Decimal(low), close=Decimal(close), volume=Decimal(volume),
    )  # fmt: skip


def candles(symbol: str, first: str, last: str) -> list[Candle]:
    """The real hourly candles from `first` to `last` inclusive, in order."""
    start, end = (datetime.fromisoformat(when).replace(tzinfo=UTC) for when in (first, last))
    return [candle(symbol, f"{t:%Y-%m-%dT%H:%M}") for t in sorted(_rows(symbol)) if start <= t <= end]


def open_at(account: PaperAccount, symbol: str, when: str, **overrides) -> TradeOpenResult:
    """trade_open on the real candle `when`: decided on the previous close, filled at this open."""
    bar = candle(symbol, when)
    request = TradeOpenRequestFactory(symbol=symbol, fill_time=bar.open_time, fill_price=bar.open, **overrides)
    return trade_open(account=account, request=request)


def opened_at(account: PaperAccount, symbol: str, when: str, **overrides) -> PaperTrade:
    """The trade open_at opened; the test fails if it was refused."""
    result = open_at(account, symbol, when, **overrides)
    assert result.opened, result.detail
    return result.trade


def assert_account_balanced(account: PaperAccount) -> None:
    """current_balance == starting_balance + Σ net P&L of closed real trades − Σ entry fees of open ones.

    With no trade open this is the invariant: the balance is the start plus every closed real
    trade's net P&L. Shadow trades never count.
    """
    account.refresh_from_db()
    real = PaperTrade.objects.filter(account=account, is_shadow=False)
    closed_pnl = real.filter(status=PaperTrade.Status.CLOSED).aggregate(total=Sum("net_pnl"))["total"] or Decimal(0)
    open_fees = real.filter(status=PaperTrade.Status.OPEN).aggregate(total=Sum("fees"))["total"] or Decimal(0)
    assert account.current_balance == account.starting_balance + closed_pnl - open_fees, (
        f"{account}: balance {account.current_balance} != {account.starting_balance} + {closed_pnl} - {open_fees}"
    )


def account_summaries() -> tuple[list[tuple], list[tuple]]:
    """Every AccountDay and AccountDecisionCounts row, in key order, to compare the kept summaries with a rebuild."""
    days = AccountDay.objects.order_by("account_id", "day").values_list("account_id", "day", "closed_trades", "winning_trades", "net_pnl")
    counts = AccountDecisionCounts.objects.order_by("account_id").values_list("account_id", "signals", "taken", "opened", "refused")
    return list(days), list(counts)
