"""trade_open: fills at the next open with slippage, sizing, the entry fee, and every risk limit refusing with a reason."""
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from tests.trading.accounting.helpers import assert_account_balanced, candle, open_at
from tests.trading.factories import PaperAccountFactory, SignalDecisionFactory, TradeOpenRequestFactory
from trading.models import PaperTrade
from trading.services.trades import Refusal, trade_close, trade_open, trades_process_candle

pytestmark = pytest.mark.django_db


def test_a_long_fills_at_the_next_open_plus_slippage_sized_on_equity_and_pays_the_entry_fee():
    account = PaperAccountFactory()
    result = open_at(account, "BTCUSDT", "2022-02-28T22:00", stop_loss_price=Decimal("41000"), take_profit_price=Decimal("42500"))
    assert result.opened and result.refusal is None
    trade = result.trade
    assert trade.entry_price == Decimal("41633.1") * Decimal("1.0002") == Decimal("41641.42662")
    # 10 % of 10,000 = 1000 of notional: 1000 / 41641.42662 = 0.024014547…, rounded down to 1e-8.
    assert trade.quantity == Decimal("0.02401454")
    # 0.02401454 × 41641.42662 = 999.9997052230548, kept at the column's 10 decimal places.
    assert trade.notional == (Decimal("0.02401454") * Decimal("41641.42662")).quantize(Decimal("1e-10")) == Decimal("999.9997052231")
    # 0.0004 × 999.9997052231 = 0.39999988208924, rounded up: fees are never understated.
    assert trade.fees == Decimal("0.3999998821") >= Decimal("0.0004") * trade.notional
    account.refresh_from_db()
    assert account.current_balance == Decimal("10000") - trade.fees  # the entry fee leaves the balance at the fill
    assert trade.status == PaperTrade.Status.OPEN and trade.max_holding_minutes == account.max_holding_minutes
    assert_account_balanced(account)


def test_a_short_receives_the_open_minus_slippage():
    trade = open_at(PaperAccountFactory(), "ETHUSDT", "2023-03-10T04:00", side="short").trade
    assert trade.entry_price == Decimal("1425.68") * Decimal("0.9998")


def test_a_paused_account_opens_nothing():
    account = PaperAccountFactory(is_paused=True)
    result = open_at(account, "BTCUSDT", "2022-02-28T22:00")
    assert (result.opened, result.refusal) == (False, Refusal.ACCOUNT_PAUSED)
    assert not PaperTrade.objects.exists()


def test_max_open_positions_in_total():
    account = PaperAccountFactory(max_open_positions=1)
    assert open_at(account, "ETHUSDT", "2023-03-10T04:00").opened
    result = open_at(account, "BTCUSDT", "2023-03-10T04:00")
    assert result.refusal == Refusal.MAX_OPEN_POSITIONS and "limit is 1" in result.detail


def test_max_open_positions_per_symbol():
    account = PaperAccountFactory(max_open_positions=4, max_open_per_symbol=1)
    assert open_at(account, "BTCUSDT", "2022-02-28T21:00").opened
    assert open_at(account, "BTCUSDT", "2022-02-28T22:00").refusal == Refusal.MAX_OPEN_PER_SYMBOL
    assert open_at(account, "ETHUSDT", "2022-02-28T22:00").opened


def test_cooldown_after_a_close_in_the_same_symbol():
    account = PaperAccountFactory(cooldown_minutes=120)
    trade = open_at(account, "BTCUSDT", "2022-02-28T22:00", take_profit_price=Decimal("42500")).trade
    (closed,) = trades_process_candle(account=account, symbol="BTCUSDT", timeframe="1h", candle=candle("BTCUSDT", "2022-02-28T22:00"))
    assert closed.pk == trade.pk and closed.exit_time == candle("BTCUSDT", "2022-02-28T22:00").open_time
    result = open_at(account, "BTCUSDT", "2022-02-28T23:00")
    assert result.refusal == Refusal.COOLDOWN and "2022-03-01 00:00" in result.detail
    assert open_at(account, "ETHUSDT", "2022-02-28T23:00").opened  # other symbols are not cooling down
    assert open_at(account, "BTCUSDT", "2022-03-01T00:00").opened  # 120 minutes after the exit


def test_daily_loss_limit_on_the_utc_day_of_the_fill():
    account = PaperAccountFactory(daily_loss_limit_pct=Decimal("0.0001"), cooldown_minutes=0)
    # A stop-out on BTC 2022-02-28 22:00 (stop 41610 inside the candle) loses about 1.75 on a 10,000 balance.
    open_at(account, "BTCUSDT", "2022-02-28T22:00", stop_loss_price=Decimal("41610"))
    (closed,) = trades_process_candle(account=account, symbol="BTCUSDT", timeframe="1h", candle=candle("BTCUSDT", "2022-02-28T22:00"))
    assert closed.exit_reason == "stop_loss" and closed.net_pnl < -Decimal("0.0001") * Decimal("10000")
    result = open_at(account, "ETHUSDT", "2022-02-28T23:00")
    assert result.refusal == Refusal.DAILY_LOSS_LIMIT
    assert open_at(account, "ETHUSDT", "2022-03-01T00:00").opened  # a new UTC day


def test_size_is_bounded_by_free_balance():
    account = PaperAccountFactory(max_open_positions=4)
    first = open_at(account, "BTCUSDT", "2022-02-28T22:00", size_fraction=Decimal("0.8")).trade
    account.refresh_from_db()
    free = account.current_balance - first.notional  # the balance not committed as margin
    assert free < Decimal("2000")
    # Half the balance is asked for; the margin plus the entry fee must fit in what is free.
    second = open_at(account, "ETHUSDT", "2022-02-28T22:00", size_fraction=Decimal("0.5")).trade
    assert second.notional + second.fees <= free
    affordable = free / Decimal("1.0004")
    assert affordable - second.notional < Decimal("1e-8") * second.entry_price  # within one lot of all of it
    assert_account_balanced(account)


def test_a_balance_that_buys_not_one_lot_is_refused():
    account = PaperAccountFactory(starting_balance=Decimal("0.0001"))
    result = open_at(account, "BTCUSDT", "2022-02-28T22:00")
    assert result.refusal == Refusal.INSUFFICIENT_BALANCE


def test_a_stop_already_crossed_at_the_fill_is_refused():
    # The decision's stop sits above the long's fill 41641.42662: the trade would be stopped at once.
    result = open_at(PaperAccountFactory(), "BTCUSDT", "2022-02-28T22:00", stop_loss_price=Decimal("41700"))
    assert result.refusal == Refusal.EXIT_CROSSED_AT_FILL and "41700" in result.detail


def test_shadow_trades_pass_no_risk_limit_and_never_touch_the_balance():
    account = PaperAccountFactory(is_paused=True, max_open_positions=1, max_open_per_symbol=1)
    decision = SignalDecisionFactory(account=account, taken=False)
    first = open_at(account, "BTCUSDT", "2022-02-28T22:00", is_shadow=True, decision=decision, take_profit_price=Decimal("42500"))
    second = open_at(account, "BTCUSDT", "2022-02-28T22:00", is_shadow=True)
    assert first.opened and second.opened and first.trade.decision == decision
    assert first.trade.quantity == Decimal("0.02401454")  # sized as a real trade would be
    account.refresh_from_db()
    assert account.current_balance == Decimal("10000")
    trade_close(trade=first.trade, exit_time=first.trade.entry_time, exit_price=Decimal("42500"), exit_reason="take_profit")
    account.refresh_from_db()
    assert account.current_balance == Decimal("10000")
    # Shadow trades take no slot from real ones either.
    account.is_paused = False
    account.save()
    assert open_at(account, "BTCUSDT", "2022-02-28T23:00").opened


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"side": "up"}, "side"),
        ({"size_fraction": Decimal("0")}, "size_fraction"),
        ({"size_fraction": Decimal("1.2")}, "size_fraction"),
        ({"signal_confidence": 1.5}, "signal_confidence"),
        ({"ml_score": float("nan")}, "ml_score"),
        ({"signal_features": {"rsi_14": float("inf")}}, "signal_features"),
        ({"market_regime": "sideways"}, "market_regime"),
        ({"stop_loss_price": Decimal("-1")}, "stop_loss_price"),
        ({"trailing_stop_pct": Decimal("1")}, "trailing_stop_pct"),
        ({"leverage": Decimal("0.5")}, "leverage"),
    ],
)
def test_bad_arguments_raise_naming_the_field(overrides, field):
    with pytest.raises(ValidationError) as error:
        open_at(PaperAccountFactory(), "BTCUSDT", "2022-02-28T22:00", **overrides)
    assert field in error.value.message_dict
    assert not PaperTrade.objects.exists()


def test_a_naive_fill_time_is_refused():
    bar = candle("BTCUSDT", "2022-02-28T22:00")
    request = TradeOpenRequestFactory(fill_time=bar.open_time.replace(tzinfo=None), fill_price=bar.open)
    with pytest.raises(ValidationError) as error:
        trade_open(account=PaperAccountFactory(), request=request)
    assert "fill_time" in error.value.message_dict


def test_a_decision_belongs_to_its_account_and_to_one_trade():
    account = PaperAccountFactory()
    other = SignalDecisionFactory()
    with pytest.raises(ValidationError, match="another account"):
        open_at(account, "BTCUSDT", "2022-02-28T22:00", decision=other)
    decision = SignalDecisionFactory(account=account)
    assert open_at(account, "BTCUSDT", "2022-02-28T22:00", decision=decision).opened
    with pytest.raises(ValidationError, match="Already has a trade"):
        open_at(account, "ETHUSDT", "2022-02-28T22:00", decision=decision)
