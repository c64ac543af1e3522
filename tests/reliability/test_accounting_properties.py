"""Property-based: the execution simulator's money and fills obey the accounting conventions for any prices and sizes."""
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from trading import execution

PROPERTY_SETTINGS = settings(max_examples=300, deadline=None)
ENTRY_TIME = datetime(2023, 3, 1, tzinfo=UTC)

prices = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("200000"), places=4)
rates = st.decimals(min_value=Decimal(0), max_value=Decimal("0.01"), places=6)
quantities = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("1000"), places=8)
sides = st.sampled_from(["long", "short"])


@st.composite
def candles(draw, open_time: datetime):
    low, high = sorted(draw(st.lists(prices, min_size=2, max_size=2)))
    open_ = draw(st.decimals(min_value=low, max_value=high, places=4))
    close = draw(st.decimals(min_value=low, max_value=high, places=4))
    return SimpleNamespace(open_time=open_time, open=open_, high=high, low=low, close=close)


@PROPERTY_SETTINGS
@given(side=sides, quantity=quantities, entry=prices, exit_=prices, fee_rate=rates)
def test_fees_are_never_negative_and_net_is_gross_minus_both_fees(side, quantity, entry, exit_, fee_rate):
    # An entry notional that rounds to zero at the money scale has no pnl_pct; position_quantity
    # never sizes one (its smallest lot at any listed price is worth far more).
    assume(execution.notional_for(quantity=quantity, price=entry) > 0)
    entry_fee = execution.fee_for(notional=execution.notional_for(quantity=quantity, price=entry), fee_rate=fee_rate)
    pnl = execution.trade_pnl(side=side, quantity=quantity, entry_price=entry, exit_price=exit_, entry_fee=entry_fee, fee_rate=fee_rate)
    assert entry_fee >= 0 and pnl.exit_fee >= 0
    assert pnl.fees == entry_fee + pnl.exit_fee
    assert pnl.net_pnl == pnl.gross_pnl - pnl.fees
    # The gross P&L is direction × quantity × (exit − entry), to the money scale.
    assert abs(pnl.gross_pnl - execution.direction(side) * quantity * (exit_ - entry)) <= execution.MONEY_QUANTUM / 2
    # Fees round up: never less than the exact rate × notional.
    assert pnl.exit_fee >= abs(quantity * exit_) * fee_rate - execution.MONEY_QUANTUM
    if exit_ == entry:
        assert pnl.net_pnl == -pnl.fees and (pnl.net_pnl < 0 or pnl.fees == 0)


@PROPERTY_SETTINGS
@given(side=sides, price=prices, slippage=rates)
def test_slippage_always_moves_fills_against_the_trade(side, price, slippage):
    entry = execution.entry_fill_price(side=side, open_price=price, slippage_rate=slippage)
    exit_ = execution.market_exit_price(side=side, price=price, slippage_rate=slippage)
    sign = execution.direction(side)
    assert sign * (entry - price) >= 0  # a long buys no lower, a short sells no higher
    assert sign * (price - exit_) >= 0


@PROPERTY_SETTINGS
@given(
    equity=st.decimals(min_value=Decimal("1"), max_value=Decimal("1e7"), places=2),
    free_share=st.decimals(min_value=Decimal(0), max_value=Decimal(1), places=4),
    size=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(1), places=4),
    entry=prices,
    fee_rate=rates,
    leverage=st.sampled_from([Decimal(1), Decimal(2), Decimal(5), Decimal(20)]),
)
def test_a_position_never_costs_more_than_the_free_balance_nor_the_wanted_size(equity, free_share, size, entry, fee_rate, leverage):
    free = (equity * free_share).quantize(Decimal("0.01"))
    quantity = execution.position_quantity(
        equity=equity, free_balance=free, size_fraction=size, entry_price=entry, fee_rate=fee_rate, leverage=leverage
    )
    assert quantity >= 0 and quantity % execution.QUANTITY_STEP == 0
    notional = execution.notional_for(quantity=quantity, price=entry)
    # Within the money scale: at sub-cent prices with leverage one lot moves the margin by less
    # than 1e-10, so the single lot position_quantity takes off can leave a sub-quantum excess.
    assert notional / leverage + execution.fee_for(notional=notional, fee_rate=fee_rate) <= free + execution.MONEY_QUANTUM
    assert quantity * entry <= equity * size * leverage


@st.composite
def positions_and_candles(draw):
    side = draw(sides)
    entry = draw(prices)
    sign = execution.direction(side)
    stop_distance = draw(st.decimals(min_value=Decimal("0.001"), max_value=Decimal("0.5"), places=4))
    target_distance = draw(st.decimals(min_value=Decimal("0.001"), max_value=Decimal("0.9"), places=4))
    position = execution.Position(
        side=side,
        entry_time=ENTRY_TIME,
        entry_price=entry,
        quantity=Decimal(1),
        fee_rate=draw(rates),
        slippage_rate=draw(rates),
        stop_loss_price=(entry * (1 - sign * stop_distance)).quantize(execution.PRICE_QUANTUM),
        take_profit_price=(entry * (1 + sign * target_distance)).quantize(execution.PRICE_QUANTUM),
        max_holding=draw(st.none() | st.just(timedelta(hours=48))),
    )
    candle = draw(candles(ENTRY_TIME + timedelta(hours=draw(st.integers(0, 100)))))
    return position, candle


@PROPERTY_SETTINGS
@given(case=positions_and_candles())
def test_exits_fill_inside_reachable_prices_and_the_stop_comes_first(case):
    position, candle = case
    sign = execution.direction(position.side)
    fill = execution.check_exit(position, candle)
    if fill is None:
        return
    assert fill.time == candle.open_time >= position.entry_time
    stop_touched = sign * ((candle.low if sign == 1 else candle.high) - position.stop_loss_price) <= 0
    target_touched = sign * ((candle.high if sign == 1 else candle.low) - position.take_profit_price) >= 0
    opened_beyond_target = sign * (candle.open - position.take_profit_price) >= 0
    timed_out = position.max_holding is not None and candle.open_time >= position.entry_time + position.max_holding
    if stop_touched and target_touched and not opened_beyond_target and not timed_out:
        assert fill.kind == execution.ExitKind.STOP_LOSS  # both inside one candle: the stop is assumed first
    if fill.kind == execution.ExitKind.TAKE_PROFIT:
        # A resting limit: filled at the target, or better when the candle opened through it.
        assert sign * (fill.price - position.take_profit_price) >= 0
        assert candle.low <= fill.price <= candle.high
    else:
        # A market exit at a price the candle traded (its open, or the stop inside its range),
        # moved against the trade by the slippage.
        reference = candle.open if fill.kind == execution.ExitKind.TIME_EXIT else None
        if fill.kind == execution.ExitKind.STOP_LOSS:
            gapped = sign * (candle.open - position.stop_loss_price) <= 0
            reference = candle.open if gapped else position.stop_loss_price
        assert candle.low <= reference <= candle.high
        assert fill.price == execution.market_exit_price(side=position.side, price=reference, slippage_rate=position.slippage_rate)
        assert sign * (reference - fill.price) >= 0

@PROPERTY_SETTINGS
@given(case=positions_and_candles(), hours_before=st.integers(1, 1000))
def test_no_exit_before_the_entry(case, hours_before):
    position, candle = case
    candle.open_time = position.entry_time - timedelta(hours=hours_before)
    with pytest.raises(ValueError, match="before the entry"):
        execution.check_exit(position, candle)
