"""The execution simulator on real candles, against fills, fees and P&L computed by hand."""
from datetime import timedelta
from decimal import Decimal

import pytest

from learning.models import ExitReason
from tests.trading.accounting.helpers import candle, candles
from trading import execution
from trading.execution import ExitKind, Position

FEE = Decimal("0.0004")  # taker fee, charged on entry and on exit notional
SLIP = Decimal("0.0002")


def position(symbol: str, when: str, side: str, quantity: str, **exits) -> Position:
    """A position filled at the open of the real candle `when` (decided on the close of the one before)."""
    entry_candle = candle(symbol, when)
    entry = execution.entry_fill_price(side=side, open_price=entry_candle.open, slippage_rate=SLIP)
    return Position(
        side=side, entry_time=entry_candle.open_time, entry_price=entry, quantity=Decimal(quantity),
        fee_rate=FEE, slippage_rate=SLIP, **exits,
    )  # fmt: skip


def walk(pos: Position, bars) -> tuple[execution.ExitFill | None, Position]:
    """Feed closed candles in order until one exits, as the trade service does."""
    for bar in bars:
        fill = execution.check_exit(pos, bar)
        if fill is not None:
            return fill, pos
        pos = execution.after_candle(pos, bar)
    return None, pos


def money(side: str, quantity: str, entry: Decimal, exit_: Decimal) -> execution.TradePnl:
    notional = execution.notional_for(quantity=Decimal(quantity), price=entry)
    entry_fee = execution.fee_for(notional=notional, fee_rate=FEE)
    return execution.trade_pnl(
        side=side, quantity=Decimal(quantity), entry_price=entry, exit_price=exit_, entry_fee=entry_fee, fee_rate=FEE
    )


def test_exit_kinds_are_learning_exit_reasons():
    assert {kind.value for kind in ExitKind} <= set(ExitReason.values)


def test_long_take_profit_btc_with_fees_on_both_sides():
    # Decided on the close of 2022-02-28 21:00; fills at the 22:00 open 41633.1 plus slippage.
    pos = position("BTCUSDT", "2022-02-28T22:00", "long", "0.024", stop_loss_price=Decimal("41000"), take_profit_price=Decimal("42500"))
    assert pos.entry_price == Decimal("41633.1") * Decimal("1.0002") == Decimal("41641.42662")
    fill, _ = walk(pos, candles("BTCUSDT", "2022-02-28T22:00", "2022-03-01T03:00"))
    # 22:00 runs from 41601.0 (above the stop) to 44341.0: the target's resting limit fills at 42500 exactly.
    assert (fill.kind, fill.price, fill.time) == (ExitKind.TAKE_PROFIT, Decimal("42500"), candle("BTCUSDT", "2022-02-28T22:00").open_time)

    pnl = money("long", "0.024", pos.entry_price, fill.price)
    entry_notional = Decimal("0.024") * Decimal("41641.42662")  # 999.39423888
    entry_fee = Decimal("0.0004") * entry_notional  # 0.399757695552, rounded up: 0.3997576956
    exit_fee = Decimal("0.0004") * Decimal("0.024") * Decimal("42500")  # 0.408
    gross = Decimal("0.024") * (Decimal("42500") - Decimal("41641.42662"))  # 20.60576112
    assert pnl.gross_pnl == gross == Decimal("20.60576112")
    assert pnl.fees == Decimal("0.3997576956") + exit_fee == Decimal("0.8077576956")
    assert abs(pnl.fees - (entry_fee + exit_fee)) < Decimal("1e-10")
    assert pnl.net_pnl == gross - pnl.fees == Decimal("19.7980034244")
    assert pnl.pnl_pct == (pnl.net_pnl / entry_notional).quantize(Decimal("1e-10")) == Decimal("0.0198100036")


def test_short_take_profit_eth_over_several_candles():
    # Decided on the close of 2023-03-10 03:00; sells at the 04:00 open 1425.68 minus slippage.
    pos = position("ETHUSDT", "2023-03-10T04:00", "short", "0.7", stop_loss_price=Decimal("1440"), take_profit_price=Decimal("1400"))
    assert pos.entry_price == Decimal("1425.68") * Decimal("0.9998") == Decimal("1425.394864")
    # Lows 1411.55, 1409.60, 1403.31 stay above the target; 07:00 reaches 1388.74; highs stay below 1440.
    fill, _ = walk(pos, candles("ETHUSDT", "2023-03-10T04:00", "2023-03-10T09:00"))
    assert (fill.kind, fill.price, fill.time) == (ExitKind.TAKE_PROFIT, Decimal("1400"), candle("ETHUSDT", "2023-03-10T07:00").open_time)

    pnl = money("short", "0.7", pos.entry_price, fill.price)
    gross = -1 * Decimal("0.7") * (Decimal("1400") - Decimal("1425.394864"))  # 17.7764048
    entry_fee = Decimal("0.3991105620")  # 0.0004 × 997.7764048 = 0.39911056192, rounded up
    exit_fee = Decimal("0.0004") * Decimal("0.7") * Decimal("1400")  # 0.392
    assert pnl.gross_pnl == gross == Decimal("17.7764048")
    assert pnl.fees == entry_fee + exit_fee
    assert pnl.net_pnl == gross - entry_fee - exit_fee == Decimal("16.985294238")


@pytest.mark.parametrize(
    ("side", "stop", "target", "expected_fill"),
    [
        # BTC 2022-02-28 22:00 spans 41601.0–44341.0: both exits lie inside; the stop is taken first.
        ("long", "41610", "44000", Decimal("41610") * Decimal("0.9998")),  # a sell: 41601.678
        ("short", "44000", "41610", Decimal("44000") * Decimal("1.0002")),  # a buy back: 44008.8
    ],
)
def test_stop_first_when_stop_and_target_lie_in_one_candle(side, stop, target, expected_fill):
    pos = position("BTCUSDT", "2022-02-28T22:00", side, "0.02", stop_loss_price=Decimal(stop), take_profit_price=Decimal(target))
    fill = execution.check_exit(pos, candle("BTCUSDT", "2022-02-28T22:00"))
    assert (fill.kind, fill.price) == (ExitKind.STOP_LOSS, expected_fill)
    assert money(side, "0.02", pos.entry_price, fill.price).net_pnl < 0


def test_time_exit_at_the_open_once_the_holding_time_has_run_out():
    # Short ETH at the 2023-03-10 00:00 open (1436.42 × 0.9998), held at most 3 hours; exits far away.
    pos = position(
        "ETHUSDT", "2023-03-10T00:00", "short", "0.5",
        stop_loss_price=Decimal("1460"), take_profit_price=Decimal("1380"), max_holding=timedelta(hours=3),
    )  # fmt: skip
    assert pos.entry_price == Decimal("1436.132716")
    fill, _ = walk(pos, candles("ETHUSDT", "2023-03-10T00:00", "2023-03-10T09:00"))
    # 00:00, 01:00, 02:00 touch neither exit; the 03:00 candle opens exactly 3 h after entry.
    assert fill.kind == ExitKind.TIME_EXIT
    assert fill.time == candle("ETHUSDT", "2023-03-10T03:00").open_time
    assert fill.price == Decimal("1425.29") * Decimal("1.0002") == Decimal("1425.575058")  # market buy-back pays slippage
    pnl = money("short", "0.5", pos.entry_price, fill.price)
    assert pnl.gross_pnl == Decimal("0.5") * (Decimal("1436.132716") - Decimal("1425.575058")) == Decimal("5.278829")


def test_long_gap_through_the_stop_fills_at_the_open():
    # BTC 2023-01-09 19:00 bottoms at 17285.7 and closes there; 20:00 opens at 17285.6, below the stop.
    pos = position("BTCUSDT", "2023-01-09T19:00", "long", "0.05", stop_loss_price=Decimal("17285.65"), take_profit_price=Decimal("18000"))
    assert execution.check_exit(pos, candle("BTCUSDT", "2023-01-09T19:00")) is None
    fill = execution.check_exit(pos, candle("BTCUSDT", "2023-01-09T20:00"))
    assert fill.kind == ExitKind.STOP_LOSS
    assert fill.price == Decimal("17285.6") * Decimal("0.9998") == Decimal("17282.14288")  # the open, not the stop
    assert fill.price < Decimal("17285.65") * Decimal("0.9998")


def test_short_gap_through_the_stop_fills_at_the_open():
    # BTC 2022-08-16 07:00 tops at 24054.3; 08:00 opens at 24054.4, above the short's stop.
    pos = position("BTCUSDT", "2022-08-16T07:00", "short", "0.05", stop_loss_price=Decimal("24054.35"), take_profit_price=Decimal("23000"))
    assert execution.check_exit(pos, candle("BTCUSDT", "2022-08-16T07:00")) is None
    fill = execution.check_exit(pos, candle("BTCUSDT", "2022-08-16T08:00"))
    assert (fill.kind, fill.price) == (ExitKind.STOP_LOSS, Decimal("24054.4") * Decimal("1.0002"))


@pytest.mark.parametrize(
    ("side", "entry", "target", "gap_candle", "expected_fill"),
    [
        # BTC 2022-08-16 07:00 tops at 24054.3; 08:00 opens at 24054.4, above the long's target.
        ("long", "2022-08-16T07:00", "24054.35", "2022-08-16T08:00", Decimal("24054.4")),
        # BTC 2023-01-09 19:00 bottoms at 17285.7; 20:00 opens at 17285.6, below the short's target.
        ("short", "2023-01-09T19:00", "17285.65", "2023-01-09T20:00", Decimal("17285.6")),
    ],
)
def test_gap_through_the_target_fills_at_the_open_without_slippage(side, entry, target, gap_candle, expected_fill):
    stop = Decimal("20000") if side == "long" else Decimal("18000")
    pos = position("BTCUSDT", entry, side, "0.05", stop_loss_price=stop, take_profit_price=Decimal(target))
    assert execution.check_exit(pos, candle("BTCUSDT", entry)) is None
    fill = execution.check_exit(pos, candle("BTCUSDT", gap_candle))
    # A resting limit order fills at the first price beyond it: the open, better than the target.
    assert (fill.kind, fill.price) == (ExitKind.TAKE_PROFIT, expected_fill)


def test_breakeven_moves_the_stop_from_the_next_candle_on():
    # Long BTC at the 2022-01-01 22:00 open: 47322.19 × 1.0002; breakeven after a 1 % favourable move.
    pos = position(
        "BTCUSDT", "2022-01-01T22:00", "long", "0.02",
        stop_loss_price=Decimal("46000"), take_profit_price=Decimal("49000"), breakeven_trigger_pct=Decimal("0.01"),
    )  # fmt: skip
    entry = Decimal("47331.654438")
    assert pos.entry_price == entry
    breakeven = (entry * Decimal("1.0004") / (Decimal("0.9996") * Decimal("0.9998"))).quantize(Decimal("1e-10"), rounding="ROUND_CEILING")
    assert execution.breakeven_stop_price(pos) == breakeven == Decimal("47379.0107158839")

    bars = candles("BTCUSDT", "2022-01-01T22:00", "2022-01-02T01:00")
    assert execution.check_exit(pos, bars[0]) is None
    pos = execution.after_candle(pos, bars[0])  # best 47484.48: +0.32 %, not yet
    assert execution.active_stop(pos).kind == ExitKind.STOP_LOSS
    # 23:00 reaches 47813.43 (+1.018 %) but also dips to 47267.08, below the breakeven stop: the stop
    # moves only once 23:00 has closed, so a simulator that let 23:00 move its own stop would exit here.
    assert bars[1].low < breakeven and bars[1].high >= entry * Decimal("1.01")
    assert execution.check_exit(pos, bars[1]) is None
    pos = execution.after_candle(pos, bars[1])
    assert execution.active_stop(pos) == execution.ActiveStop(price=breakeven, kind=ExitKind.BREAKEVEN_STOP)
    # 2022-01-02 00:00 falls to 47352.58: out at the breakeven stop, a market sell.
    fill = execution.check_exit(pos, bars[2])
    assert (fill.kind, fill.time) == (ExitKind.BREAKEVEN_STOP, bars[2].open_time)
    assert fill.price == (breakeven * Decimal("0.9998")).quantize(Decimal("1e-10"), rounding="ROUND_FLOOR")
    # Net of both fees and the slippage it is zero, to the money scale's rounding of the two fees.
    assert abs(money("long", "0.02", entry, fill.price).net_pnl) <= Decimal("1e-9")


def test_trailing_stop_uses_only_closed_candles():
    # Long ETH at the 2022-01-01 04:00 open (3722.07 × 1.0002 = 3722.814414), trailing 1 %.
    pos = position(
        "ETHUSDT", "2022-01-01T04:00", "long", "0.3",
        stop_loss_price=Decimal("3600"), take_profit_price=Decimal("3900"), trailing_stop_pct=Decimal("0.01"),
    )  # fmt: skip
    bars = candles("ETHUSDT", "2022-01-01T04:00", "2022-01-01T08:00")
    # 04:00: trailing from the entry, 3722.814414 × 0.99 = 3685.58626986; the low 3706.00 is above it.
    assert execution.active_stop(pos).price == Decimal("3685.58626986")
    assert execution.check_exit(pos, bars[0]) is None
    pos = execution.after_candle(pos, bars[0])
    # 05:00: trailing from 04:00's high 3726.63: 3689.3637. The candle's own high 3764.03 would put
    # the stop at 3726.3897, above its low 3702.33; it must not count until 05:00 has closed.
    assert execution.active_stop(pos).price == Decimal("3726.63") * Decimal("0.99") == Decimal("3689.3637")
    assert bars[1].low < bars[1].high * Decimal("0.99")
    assert execution.check_exit(pos, bars[1]) is None
    pos = execution.after_candle(pos, bars[1])
    # 06:00 opens at 3735.39, above the new stop 3726.3897, and falls to 3706.80 through it.
    fill = execution.check_exit(pos, bars[2])
    assert (fill.kind, fill.time) == (ExitKind.TRAILING_STOP, bars[2].open_time)
    assert fill.price == Decimal("3764.03") * Decimal("0.99") * Decimal("0.9998") == Decimal("3725.64442206")


def test_trailing_stop_raised_at_a_close_fills_at_the_next_open_when_price_is_already_past_it():
    # Short BTC at the 2022-01-02 00:00 open (47704.35 × 0.9998 = 47694.80913), trailing 0.5 %.
    pos = position(
        "BTCUSDT", "2022-01-02T00:00", "short", "0.02",
        stop_loss_price=Decimal("49000"), take_profit_price=Decimal("46000"), trailing_stop_pct=Decimal("0.005"),
    )  # fmt: skip
    bars = candles("BTCUSDT", "2022-01-02T00:00", "2022-01-02T02:00")
    assert execution.check_exit(pos, bars[0]) is None  # the high 47745.61 is far below 47694.80913 × 1.005
    pos = execution.after_candle(pos, bars[0])
    assert pos.best_price == Decimal("47352.58")
    # The stop, 47352.58 × 1.005 = 47589.3429, is set at 00:00's close; 01:00 opens at 47622.14, past it.
    fill = execution.check_exit(pos, bars[1])
    assert (fill.kind, fill.price) == (ExitKind.TRAILING_STOP, Decimal("47622.14") * Decimal("1.0002"))


def test_a_candle_before_the_entry_is_refused():
    pos = position("BTCUSDT", "2022-02-28T22:00", "long", "0.02", stop_loss_price=Decimal("41000"))
    with pytest.raises(ValueError, match="before the entry"):
        execution.check_exit(pos, candle("BTCUSDT", "2022-02-28T21:00"))


def test_position_quantity_from_a_fraction_of_equity_rounded_down():
    # 10 % of 10,000 at 41641.42662: 1000 / 41641.42662 = 0.024014547…, rounded down to a 1e-8 lot.
    quantity = execution.position_quantity(
        equity=Decimal("10000"), free_balance=Decimal("10000"), size_fraction=Decimal("0.1"),
        entry_price=Decimal("41641.42662"), fee_rate=FEE,
    )  # fmt: skip
    assert quantity == Decimal("0.02401454")


def test_position_quantity_is_bounded_by_free_balance_including_the_entry_fee():
    # Only 500 free: notional ≤ 500 / (1 + 0.0004) = 499.80008; / 41641.42662 = 0.012002472…
    quantity = execution.position_quantity(
        equity=Decimal("10000"), free_balance=Decimal("500"), size_fraction=Decimal("0.1"),
        entry_price=Decimal("41641.42662"), fee_rate=FEE,
    )  # fmt: skip
    assert quantity == Decimal("0.01200247")
    cost = execution.notional_for(quantity=quantity, price=Decimal("41641.42662"))
    assert cost + execution.fee_for(notional=cost, fee_rate=FEE) <= Decimal("500")
    assert execution.position_quantity(
        equity=Decimal("10000"), free_balance=Decimal("0"), size_fraction=Decimal("0.1"), entry_price=Decimal("100"), fee_rate=FEE
    ) == 0


def test_position_quantity_with_leverage_commits_margin_not_notional():
    quantity = execution.position_quantity(
        equity=Decimal("1000"), free_balance=Decimal("1000"), size_fraction=Decimal("0.5"),
        entry_price=Decimal("100"), fee_rate=Decimal("0"), leverage=Decimal("3"),
    )  # fmt: skip
    assert quantity == Decimal("15")  # margin 500 × 3 = 1500 notional at 100


@pytest.mark.parametrize("size_fraction", [Decimal("0"), Decimal("-0.1"), Decimal("1.5")])
def test_position_quantity_refuses_a_fraction_outside_0_1(size_fraction):
    with pytest.raises(ValueError, match="size_fraction"):
        execution.position_quantity(
            equity=Decimal("1000"), free_balance=Decimal("1000"), size_fraction=size_fraction, entry_price=Decimal("100"), fee_rate=FEE
        )


def test_atr_exits_default_to_two_and_three_atr():
    assert execution.atr_exit_prices(side="long", entry_price=Decimal("100"), atr=Decimal("2")) == (Decimal("96"), Decimal("106"))
    assert execution.atr_exit_prices(side="short", entry_price=Decimal("100"), atr=Decimal("2")) == (Decimal("104"), Decimal("94"))
    assert execution.atr_exit_prices(
        side="long", entry_price=Decimal("100"), atr=Decimal("2"), stop_multiple=Decimal("1"), target_multiple=Decimal("1.5")
    ) == (Decimal("98"), Decimal("103"))
    with pytest.raises(ValueError, match="too wide"):
        execution.atr_exit_prices(side="short", entry_price=Decimal("100"), atr=Decimal("40"))
    with pytest.raises(ValueError, match="Unknown side"):
        execution.atr_exit_prices(side="up", entry_price=Decimal("100"), atr=Decimal("1"))
