"""Property-based: a candle inside a position's quiet range is one check_exit and after_candle leave it alone on."""
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from trading import execution

PROPERTY_SETTINGS = settings(max_examples=2000, deadline=None)
ENTRY_TIME = datetime(2023, 3, 1, tzinfo=UTC)
ENTRY = Decimal(100)

# Prices around the entry on a coarse grid, so that candles often touch stops, targets and best prices exactly.
prices = st.decimals(min_value=Decimal(90), max_value=Decimal(110), places=1)
rates = st.none() | st.decimals(min_value=Decimal(0), max_value=Decimal("0.05"), places=3)


@st.composite
def positions(draw) -> execution.Position:
    return execution.Position(
        side=draw(st.sampled_from(["long", "short"])), entry_time=ENTRY_TIME, entry_price=ENTRY, quantity=Decimal(1),
        fee_rate=Decimal("0.0004"), slippage_rate=Decimal("0.0002"),
        stop_loss_price=draw(st.none() | prices), take_profit_price=draw(st.none() | prices),
        max_holding=draw(st.none() | st.just(timedelta(hours=12))),
        breakeven_trigger_pct=draw(rates), trailing_stop_pct=draw(rates), best_price=draw(st.none() | prices),
    )  # fmt: skip


@st.composite
def candles(draw) -> SimpleNamespace:
    low, high = sorted(draw(st.lists(prices, min_size=2, max_size=2)))
    open_, close = (draw(st.decimals(min_value=low, max_value=high, places=1)) for _ in range(2))
    open_time = ENTRY_TIME + timedelta(hours=draw(st.integers(min_value=0, max_value=24)))
    return SimpleNamespace(open_time=open_time, open=open_, high=high, low=low, close=close)


def inside(quiet: execution.QuietRange, candle) -> bool:
    before_time_exit = quiet.until is None or candle.open_time < quiet.until
    return quiet.low_above < candle.low and candle.high < quiet.high_below and before_time_exit


@PROPERTY_SETTINGS
@given(position=positions(), candle=candles(), track_best=st.booleans())
def test_a_quiet_candle_neither_exits_nor_moves_the_best_price(position, candle, track_best):
    if not inside(execution.quiet_range(position, track_best=track_best), candle):
        return
    assert execution.check_exit(position, candle) is None
    if track_best:
        assert execution.after_candle(position, candle).best_price == position.best_price


@PROPERTY_SETTINGS
@given(position=positions(), candle=candles(), track_best=st.booleans())
def test_a_candle_outside_the_quiet_range_exits_moves_or_touches_the_best_price(position, candle, track_best):
    # The range is no wider than it must be, so the exact check runs only where something may happen.
    if inside(execution.quiet_range(position, track_best=track_best), candle):
        return
    best = position.entry_price if position.best_price is None else position.best_price
    favourable = candle.high if position.side == "long" else candle.low
    assert (
        execution.check_exit(position, candle) is not None
        or (track_best and execution.after_candle(position, candle).best_price != position.best_price)
        or (track_best and favourable == best)
    )
