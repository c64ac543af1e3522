"""The execution simulator: entry and exit fills on candles, fees, stops, targets, breakeven and trailing stops."""
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Protocol

# Prices and money are kept at the scale of their database columns (10 decimal places), so
# what the simulator computes is exactly what is stored and the account balances add up.
PRICE_QUANTUM = Decimal("1e-10")
MONEY_QUANTUM = Decimal("1e-10")
PCT_QUANTUM = Decimal("1e-10")
# Exchanges size orders in lots; 1e-8 is the finest lot of the major spot and futures venues.
QUANTITY_STEP = Decimal("1e-8")
DEFAULT_STOP_ATR_MULTIPLE = Decimal(2)
DEFAULT_TARGET_ATR_MULTIPLE = Decimal(3)
ONE = Decimal(1)
INFINITY = Decimal("Infinity")  # a bound that never binds


class Side(StrEnum):
    LONG = "long"
    SHORT = "short"


class ExitKind(StrEnum):
    """Why the simulator closed a position; the values are learning's ExitReason values."""

    TAKE_PROFIT = "take_profit"
    STOP_LOSS = "stop_loss"
    BREAKEVEN_STOP = "breakeven_stop"
    TRAILING_STOP = "trailing_stop"
    TIME_EXIT = "time_exit"


class CandleLike(Protocol):
    """A closed candle: `trading.models.Candle` or anything with the same fields."""

    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


def direction(side: str) -> int:
    """+1 for a long, -1 for a short: P&L is direction × quantity × (exit − entry)."""
    if side == Side.LONG:
        return 1
    if side == Side.SHORT:
        return -1
    raise ValueError(f"Unknown side {side!r}; expected 'long' or 'short'.")


def _against(price: Decimal, rate: Decimal, *, buying: bool) -> Decimal:
    # A buy fills higher and a sell lower; rounding also goes against the trade, never for it.
    if buying:
        return (price * (ONE + rate)).quantize(PRICE_QUANTUM, rounding=ROUND_CEILING)
    return (price * (ONE - rate)).quantize(PRICE_QUANTUM, rounding=ROUND_FLOOR)


def entry_fill_price(*, side: str, open_price: Decimal, slippage_rate: Decimal) -> Decimal:
    """The fill of a trade decided on the close of candle t: the open of t+1, moved against the trade.

    A long buys at open × (1 + slippage); a short sells at open × (1 − slippage).
    """
    return _against(open_price, slippage_rate, buying=direction(side) == 1)


def market_exit_price(*, side: str, price: Decimal, slippage_rate: Decimal) -> Decimal:
    """The fill of a market exit (stop, time exit, manual close) at `price`, moved against the trade."""
    return _against(price, slippage_rate, buying=direction(side) == -1)


def fee_for(*, notional: Decimal, fee_rate: Decimal) -> Decimal:
    """The fee on one fill: fee_rate × notional, rounded up to the money scale.

    Fees are charged on the entry notional and again on the exit notional, the convention of
    freqtrade, Jesse and the exchanges themselves (a taker fee on each fill).
    """
    return (abs(notional) * fee_rate).quantize(MONEY_QUANTUM, rounding=ROUND_CEILING)


def notional_for(*, quantity: Decimal, price: Decimal) -> Decimal:
    return (quantity * price).quantize(MONEY_QUANTUM, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, kw_only=True)
class TradePnl:
    """The money of a closed trade. net_pnl = direction × qty × (exit − entry) − fees."""

    gross_pnl: Decimal
    exit_fee: Decimal
    fees: Decimal
    net_pnl: Decimal
    pnl_pct: Decimal


def trade_pnl(
    *, side: str, quantity: Decimal, entry_price: Decimal, exit_price: Decimal, entry_fee: Decimal, fee_rate: Decimal,
    exit_fee: Decimal | None = None,
) -> TradePnl:
    """Net P&L after fees on both sides; pnl_pct is net P&L over the entry notional.

    The exit fee is `fee_rate` of the exit notional, unless an exchange reported it (`exit_fee`).
    """
    gross_pnl = (direction(side) * quantity * (exit_price - entry_price)).quantize(MONEY_QUANTUM, rounding=ROUND_HALF_EVEN)
    if exit_fee is None:
        exit_fee = fee_for(notional=notional_for(quantity=quantity, price=exit_price), fee_rate=fee_rate)
    fees = entry_fee + exit_fee
    net_pnl = gross_pnl - fees
    entry_notional = notional_for(quantity=quantity, price=entry_price)
    pnl_pct = (net_pnl / entry_notional).quantize(PCT_QUANTUM, rounding=ROUND_HALF_EVEN)
    return TradePnl(gross_pnl=gross_pnl, exit_fee=exit_fee, fees=fees, net_pnl=net_pnl, pnl_pct=pnl_pct)


def position_quantity(
    *,
    equity: Decimal,
    free_balance: Decimal,
    size_fraction: Decimal,
    entry_price: Decimal,
    fee_rate: Decimal,
    leverage: Decimal = ONE,
    quantity_step: Decimal = QUANTITY_STEP,
) -> Decimal:
    """The quantity whose margin is `size_fraction` of equity, cut so margin plus entry fee fit in free balance.

    Rounded down to `quantity_step`, so the position never costs more than allowed; 0 when not
    even one step is affordable.
    """
    if not 0 < size_fraction <= 1:
        raise ValueError(f"size_fraction must lie in (0, 1], got {size_fraction}.")
    if entry_price <= 0 or leverage <= 0:
        raise ValueError("entry_price and leverage must be positive.")
    wanted_notional = equity * size_fraction * leverage
    # margin + entry fee = notional / leverage + notional × fee_rate must not exceed free balance.
    affordable_notional = free_balance / (ONE / leverage + fee_rate)
    notional = min(wanted_notional, affordable_notional)
    if notional <= 0:
        return Decimal(0)
    quantity = (notional / entry_price).quantize(quantity_step, rounding=ROUND_DOWN)
    # Rounding the notional to the money scale and the fee up can overshoot by a unit or two
    # of 1e-10 at the exact bound; one lot less always makes up for that.
    cost = notional_for(quantity=quantity, price=entry_price)
    if cost / leverage + fee_for(notional=cost, fee_rate=fee_rate) > free_balance:
        quantity -= quantity_step
    return max(quantity, Decimal(0))


def atr_exit_prices(
    *,
    side: str,
    entry_price: Decimal,
    atr: Decimal,
    stop_multiple: Decimal = DEFAULT_STOP_ATR_MULTIPLE,
    target_multiple: Decimal = DEFAULT_TARGET_ATR_MULTIPLE,
) -> tuple[Decimal, Decimal]:
    """Default (stop_loss_price, take_profit_price): stop_multiple × ATR against, target_multiple × ATR for.

    `atr` is in price units (the feature set carries ATR as a fraction of price: multiply first).
    """
    if atr <= 0:
        raise ValueError(f"atr must be positive, got {atr}.")
    sign = direction(side)
    stop = (entry_price - sign * stop_multiple * atr).quantize(PRICE_QUANTUM, rounding=ROUND_HALF_EVEN)
    target = (entry_price + sign * target_multiple * atr).quantize(PRICE_QUANTUM, rounding=ROUND_HALF_EVEN)
    if stop <= 0 or target <= 0:
        raise ValueError(f"ATR {atr} is too wide for entry {entry_price}: an exit price would not be positive.")
    return stop, target


@dataclass(frozen=True, kw_only=True)
class Position:
    """An open position as the simulator sees it.

    `stop_loss_price` is the initial stop and never changes; the stop in force is derived from it,
    the breakeven rule and the trailing rule by `active_stop`. The only state that evolves is
    `best_price`, the most favourable price of the candles closed since entry (None: none yet).
    """

    side: str
    entry_time: datetime
    entry_price: Decimal
    quantity: Decimal
    fee_rate: Decimal
    slippage_rate: Decimal
    stop_loss_price: Decimal | None = None
    take_profit_price: Decimal | None = None
    max_holding: timedelta | None = None
    breakeven_trigger_pct: Decimal | None = None
    trailing_stop_pct: Decimal | None = None
    best_price: Decimal | None = None


@dataclass(frozen=True, kw_only=True)
class ActiveStop:
    price: Decimal
    kind: ExitKind


@dataclass(frozen=True, kw_only=True)
class ExitFill:
    """Where and why a position closes. `price` is the fill, slippage included where it applies."""

    time: datetime
    price: Decimal
    kind: ExitKind


def breakeven_stop_price(position: Position) -> Decimal:
    """The stop at which a market exit nets exactly zero after both fees and the exit slippage.

    Long: q(x − e) − f·q·e − f·q·x = 0 gives x = e(1 + f)/(1 − f), and the stop fills at
    stop × (1 − slippage), so stop = e(1 + f) / ((1 − f)(1 − s)); a short mirrors it.
    Rounded away from a loss.
    """
    entry, fee, slip = position.entry_price, position.fee_rate, position.slippage_rate
    if direction(position.side) == 1:
        return (entry * (ONE + fee) / ((ONE - fee) * (ONE - slip))).quantize(PRICE_QUANTUM, rounding=ROUND_CEILING)
    return (entry * (ONE - fee) / ((ONE + fee) * (ONE + slip))).quantize(PRICE_QUANTUM, rounding=ROUND_FLOOR)


def _favourable_move(position: Position) -> Decimal:
    best = position.entry_price if position.best_price is None else position.best_price
    return direction(position.side) * (best - position.entry_price) / position.entry_price


def active_stop(position: Position) -> ActiveStop | None:
    """The stop in force: the tightest of the initial stop, the breakeven stop (once triggered) and the trailing stop.

    All three come from `best_price`, which holds only candles already closed: the stop used
    within candle t+k is known at the close of t+k−1, so no candle ever moves its own stop.
    The trailing stop follows the best price from entry on (freqtrade's plain trailing stop).
    """
    sign = direction(position.side)
    candidates: list[ActiveStop] = []
    if position.stop_loss_price is not None:
        candidates.append(ActiveStop(price=position.stop_loss_price, kind=ExitKind.STOP_LOSS))
    if position.breakeven_trigger_pct is not None and _favourable_move(position) >= position.breakeven_trigger_pct:
        candidates.append(ActiveStop(price=breakeven_stop_price(position), kind=ExitKind.BREAKEVEN_STOP))
    if position.trailing_stop_pct is not None:
        best = position.entry_price if position.best_price is None else position.best_price
        trail = (best * (ONE - sign * position.trailing_stop_pct)).quantize(PRICE_QUANTUM, rounding=ROUND_HALF_EVEN)
        candidates.append(ActiveStop(price=trail, kind=ExitKind.TRAILING_STOP))
    if not candidates:
        return None
    # The tightest stop is the highest for a long, the lowest for a short; on a tie the
    # earlier rule in the list above names the exit.
    tightest = candidates[0]
    for candidate in candidates[1:]:
        if sign * (candidate.price - tightest.price) > 0:
            tightest = candidate
    return tightest


def check_exit(position: Position, candle: CandleLike) -> ExitFill | None:
    """Whether `candle` (a candle at or after the entry candle) closes the position, and at what fill.

    In this order:
    1. At the open: an open beyond the stop fills at the open (a gap through the stop: worse than
       the stop, with slippage); an open beyond the target fills at the open (better than the
       target; a resting limit order, so no slippage).
    2. Time exit: on the first candle opening at or after entry_time + max_holding, a market exit
       at that open (the first price available once the holding time has run out).
    3. Within the candle: stop first, then target. Which of high and low came first is unknown,
       so when both lie inside one candle the stop is assumed hit first (the pessimistic reading).
       A stop fills at the stop with slippage (a market order once triggered); a target fills at
       the target exactly (a resting limit order).
    The exit time is the open time of the candle in which the exit happened (freqtrade's convention).
    """
    if candle.open_time < position.entry_time:
        raise ValueError(f"Candle {candle.open_time} is before the entry at {position.entry_time}.")
    sign = direction(position.side)
    stop = active_stop(position)
    target = position.take_profit_price

    def market(price: Decimal, kind: ExitKind) -> ExitFill:
        fill = market_exit_price(side=position.side, price=price, slippage_rate=position.slippage_rate)
        return ExitFill(time=candle.open_time, price=fill, kind=kind)

    if stop is not None and sign * (candle.open - stop.price) <= 0:
        return market(candle.open, stop.kind)
    if target is not None and sign * (candle.open - target) >= 0:
        return ExitFill(time=candle.open_time, price=candle.open, kind=ExitKind.TAKE_PROFIT)
    if position.max_holding is not None and candle.open_time >= position.entry_time + position.max_holding:
        return market(candle.open, ExitKind.TIME_EXIT)
    adverse_extreme = candle.low if sign == 1 else candle.high
    if stop is not None and sign * (adverse_extreme - stop.price) <= 0:
        return market(stop.price, stop.kind)
    favourable_extreme = candle.high if sign == 1 else candle.low
    if target is not None and sign * (favourable_extreme - target) >= 0:
        return ExitFill(time=candle.open_time, price=target, kind=ExitKind.TAKE_PROFIT)
    return None


@dataclass(frozen=True, kw_only=True)
class QuietRange:
    """The candles that leave a position exactly as it is: no exit, and (if tracked) no new best price.

    A candle opening before `until` whose low lies above `low_above` and whose high lies below
    `high_below` is one of them. Infinite bounds leave a side open (a position without a stop
    or target) or shut it (nothing is quiet).
    """

    low_above: Decimal
    high_below: Decimal
    until: datetime | None


def quiet_range(position: Position, *, track_best: bool) -> QuietRange:
    """The candles on which `check_exit` returns None and, with `track_best`, `after_candle` keeps the best price.

    check_exit's tests at the open need no bound of their own: the open lies between the low and
    the high. The stop in force moves only with the best price, so the range holds until a
    candle moves that. A tracked position without a best price yet is never quiet: its first
    candle records one whatever its prices.
    """
    # In signed prices (sign × price) a short reads like a long: the stop is hit at or below the
    # floor, the target at or above the ceiling, and the best price moves above it.
    sign = direction(position.side)
    stop = active_stop(position)
    floor = -INFINITY if stop is None else sign * stop.price
    ceiling = INFINITY if position.take_profit_price is None else sign * position.take_profit_price
    if track_best:
        ceiling = -INFINITY if position.best_price is None else min(ceiling, sign * position.best_price)
    until = None if position.max_holding is None else position.entry_time + position.max_holding
    if sign == 1:
        return QuietRange(low_above=floor, high_below=ceiling, until=until)
    return QuietRange(low_above=-ceiling, high_below=-floor, until=until)


def after_candle(position: Position, candle: CandleLike) -> Position:
    """The position once `candle` has closed without an exit: its best price now includes this candle.

    Call it only after `check_exit(position, candle)` returned None, so that the stop used
    within a candle never depends on that same candle.
    """
    favourable_extreme = candle.high if direction(position.side) == 1 else candle.low
    best = position.entry_price if position.best_price is None else position.best_price
    if direction(position.side) * (favourable_extreme - best) > 0:
        best = favourable_extreme
    return position if best == position.best_price else replace(position, best_price=best)
