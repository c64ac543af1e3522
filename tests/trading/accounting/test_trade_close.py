"""Closing trades: exits managed candle by candle, one transaction with the learning store, and the balance invariant."""
import sys
import threading
import types
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from learning.models import TrainingRecord
from tests.trading.accounting.helpers import assert_account_balanced, candle, candles, opened_at
from tests.trading.factories import PaperAccountFactory, TradeOpenRequestFactory
from trading.models import PaperTrade
from trading.services import trades as trade_services
from trading.services.trades import TradeNotOpen, trade_close, trade_close_manual, trade_open, trades_process_candle

pytestmark = pytest.mark.django_db


def run(account, symbol: str, first: str, last: str) -> list[PaperTrade]:
    """Feed the real candles from `first` to `last` to the account, as the engine does on each close."""
    closed = []
    for bar in candles(symbol, first, last):
        closed += trades_process_candle(account=account, symbol=symbol, timeframe="1h", candle=bar)
    return closed


def test_a_long_take_profit_on_btc_closes_updates_the_balance_and_stores_one_record():
    account = PaperAccountFactory()
    trade = opened_at(account, "BTCUSDT", "2022-02-28T22:00", stop_loss_price=Decimal("41000"), take_profit_price=Decimal("42500"))
    (closed,) = run(account, "BTCUSDT", "2022-02-28T22:00", "2022-03-01T03:00")
    assert closed.pk == trade.pk
    assert (closed.status, closed.exit_reason, closed.exit_price) == ("closed", "take_profit", Decimal("42500"))
    assert closed.exit_time == candle("BTCUSDT", "2022-02-28T22:00").open_time

    quantity, entry = Decimal("0.02401454"), Decimal("41641.42662")  # 10 % of 10,000 at 41633.1 × 1.0002
    entry_fee = Decimal("0.3999998821")  # 0.0004 × 999.9997052231, rounded up
    exit_fee = Decimal("0.0004") * quantity * Decimal("42500")  # 0.40824718
    gross = (quantity * (Decimal("42500") - entry)).quantize(Decimal("1e-10"))  # 20.6182447769452
    assert closed.fees == entry_fee + exit_fee == Decimal("0.8082470621")
    assert closed.net_pnl == gross - entry_fee - exit_fee == Decimal("19.8099977148")
    assert closed.pnl_pct == (closed.net_pnl / closed.notional).quantize(Decimal("1e-10"))
    account.refresh_from_db()
    assert account.current_balance == Decimal("10000") + closed.net_pnl == Decimal("10019.8099977148")
    assert_account_balanced(account)

    record = TrainingRecord.objects.get()
    assert record.trade_id == f"acct{account.pk}-trade{trade.pk}"
    assert (record.success, record.is_shadow, record.system_type, record.exit_reason) == (True, False, "paper_trading", "take_profit")
    assert (record.net_pnl, record.fees, record.pnl_pct) == (closed.net_pnl, closed.fees, closed.pnl_pct)
    assert record.features == trade.signal_features and record.model_versions == {"online": "v3", "batch": "v1"}
    assert (record.confidence_score, record.ml_score) == (0.66, 0.6)
    assert (record.market_regime, record.volatility_regime, record.duration_minutes) == ("trending_up", "medium", 0)


def test_a_long_stop_loss_on_eth_is_a_loss_and_labelled_unsuccessful():
    account = PaperAccountFactory()
    # Long ETH at the 2022-06-13 01:00 open (1386.02 × 1.0002); the candle falls to 1341.00 through the stop.
    trade = opened_at(account, "ETHUSDT", "2022-06-13T01:00", stop_loss_price=Decimal("1345"), take_profit_price=Decimal("1450"))
    assert trade.entry_price == Decimal("1386.297204")
    (closed,) = run(account, "ETHUSDT", "2022-06-13T01:00", "2022-06-13T05:00")
    assert (closed.exit_reason, closed.exit_price) == ("stop_loss", Decimal("1345") * Decimal("0.9998"))
    gross = (trade.quantity * (Decimal("1344.731") - Decimal("1386.297204"))).quantize(Decimal("1e-10"))
    exit_fee = (Decimal("0.0004") * trade.quantity * Decimal("1344.731")).quantize(Decimal("1e-10"), rounding="ROUND_CEILING")
    assert closed.net_pnl == gross - trade.fees - exit_fee < 0
    assert TrainingRecord.objects.get().success is False
    assert_account_balanced(account)


def test_a_time_exit_through_the_service_uses_the_trades_holding_time():
    account = PaperAccountFactory()
    opened_at(
        account, "ETHUSDT", "2023-03-10T00:00", side="short", max_holding_minutes=180,
        stop_loss_price=Decimal("1460"), take_profit_price=Decimal("1380"),
    )  # fmt: skip
    (closed,) = run(account, "ETHUSDT", "2023-03-10T00:00", "2023-03-10T09:00")
    assert (closed.exit_reason, closed.exit_price) == ("time_exit", Decimal("1425.575058"))
    assert TrainingRecord.objects.get().duration_minutes == 180
    assert_account_balanced(account)


def test_the_trailing_stop_state_lives_in_the_database_between_candles():
    account = PaperAccountFactory(system_type="profit_scraping")
    trade = opened_at(
        account, "ETHUSDT", "2022-01-01T04:00", stop_loss_price=Decimal("3600"), take_profit_price=Decimal("3900"),
        trailing_stop_pct=Decimal("0.01"), strategy_type="support_bounce",
    )  # fmt: skip
    assert trades_process_candle(account=account, symbol="ETHUSDT", timeframe="1h", candle=candle("ETHUSDT", "2022-01-01T04:00")) == []
    trade.refresh_from_db()
    assert trade.best_price == Decimal("3726.63")
    assert trades_process_candle(account=account, symbol="ETHUSDT", timeframe="1h", candle=candle("ETHUSDT", "2022-01-01T05:00")) == []
    trade.refresh_from_db()
    assert trade.best_price == Decimal("3764.03")
    (closed,) = trades_process_candle(account=account, symbol="ETHUSDT", timeframe="1h", candle=candle("ETHUSDT", "2022-01-01T06:00"))
    assert (closed.exit_reason, closed.exit_price) == ("trailing_stop", Decimal("3725.64442206"))
    assert TrainingRecord.objects.get().system_type == "profit_scraping"
    assert_account_balanced(account)


def test_a_breakeven_exit_through_the_service_nets_zero():
    account = PaperAccountFactory(system_type="profit_scraping")
    opened_at(
        account, "BTCUSDT", "2022-01-01T22:00", stop_loss_price=Decimal("46000"), take_profit_price=Decimal("49000"),
        breakeven_trigger_pct=Decimal("0.01"),
    )  # fmt: skip
    (closed,) = run(account, "BTCUSDT", "2022-01-01T22:00", "2022-01-02T03:00")
    assert closed.exit_reason == "breakeven_stop" and closed.exit_time == candle("BTCUSDT", "2022-01-02T00:00").open_time
    assert abs(closed.net_pnl) <= Decimal("1e-9")
    assert_account_balanced(account)


def test_candles_before_the_fill_and_other_symbols_leave_the_trade_alone():
    account = PaperAccountFactory()
    trade = opened_at(account, "BTCUSDT", "2022-02-28T22:00", stop_loss_price=Decimal("41610"))
    assert run(account, "BTCUSDT", "2022-02-28T18:00", "2022-02-28T21:00") == []  # 19:00 went below 41610
    assert run(account, "ETHUSDT", "2022-02-28T22:00", "2022-02-28T23:00") == []
    trade.refresh_from_db()
    assert trade.status == "open" and trade.best_price is None


def test_a_shadow_trade_closes_into_learning_without_touching_the_balance():
    account = PaperAccountFactory()
    opened_at(account, "BTCUSDT", "2022-02-28T22:00", is_shadow=True, take_profit_price=Decimal("42500"))
    (closed,) = run(account, "BTCUSDT", "2022-02-28T22:00", "2022-02-28T23:00")
    assert closed.net_pnl == Decimal("19.8099977148")  # the same fill rules as the real trade above
    account.refresh_from_db()
    assert account.current_balance == Decimal("10000")
    record = TrainingRecord.objects.get()
    assert record.is_shadow and record.success
    assert_account_balanced(account)


def test_the_invariant_holds_over_many_trades_on_both_symbols():
    account = PaperAccountFactory(max_open_positions=4, max_open_per_symbol=2, cooldown_minutes=0, daily_loss_limit_pct=Decimal("1"))
    for symbol in ("BTCUSDT", "ETHUSDT"):
        bars = candles(symbol, "2022-06-01T00:00", "2022-06-20T23:00")
        for index, bar in enumerate(bars[:-1]):
            trades_process_candle(account=account, symbol=symbol, timeframe="1h", candle=bar)
            if index % 7 == 0:  # a decision on this close fills at the next open
                nxt = bars[index + 1]
                side = "long" if index % 2 == 0 else "short"
                sign = 1 if side == "long" else -1
                trade_open(
                    account=account,
                    request=TradeOpenRequestFactory(
                        fill_time=nxt.open_time, fill_price=nxt.open,
                        symbol=symbol, side=side, size_fraction=Decimal("0.2"), max_holding_minutes=12 * 60,
                        stop_loss_price=nxt.open * (1 - sign * Decimal("0.015")),
                        take_profit_price=nxt.open * (1 + sign * Decimal("0.02")),
                    ),
                )  # fmt: skip
            assert_account_balanced(account)
        for trade in PaperTrade.objects.filter(account=account, symbol=symbol, status="open"):
            trade_close_manual(trade_id=trade.pk, price=bars[-1].open, time=bars[-1].open_time)
    assert not PaperTrade.objects.filter(status="open").exists()
    closed = PaperTrade.objects.filter(account=account)
    assert closed.count() > 50 and {t.exit_reason for t in closed} >= {"take_profit", "stop_loss", "time_exit"}
    assert TrainingRecord.objects.count() == closed.count()
    assert_account_balanced(account)


def test_a_failure_inside_the_close_rolls_all_of_it_back(monkeypatch):
    account = PaperAccountFactory()
    trade = opened_at(account, "BTCUSDT", "2022-02-28T22:00", take_profit_price=Decimal("42500"))
    account.refresh_from_db()
    balance = account.current_balance

    def broken_store(*, outcome):
        raise RuntimeError("learning store unavailable")

    monkeypatch.setattr(trade_services, "store_trade_outcome", broken_store)
    with pytest.raises(RuntimeError, match="unavailable"):
        run(account, "BTCUSDT", "2022-02-28T22:00", "2022-02-28T22:00")
    trade.refresh_from_db()
    account.refresh_from_db()
    assert (trade.status, trade.net_pnl, trade.exit_reason) == ("open", None, "")
    assert account.current_balance == balance
    assert not TrainingRecord.objects.exists()
    assert_account_balanced(account)


def test_the_model_update_is_queued_after_commit_once_per_close(django_capture_on_commit_callbacks, monkeypatch):
    calls = []
    monkeypatch.setitem(sys.modules, "learning.tasks", types.SimpleNamespace(learning_online_update_queue=lambda: calls.append(1)))
    account = PaperAccountFactory()
    opened_at(account, "BTCUSDT", "2022-02-28T22:00", take_profit_price=Decimal("42500"))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run(account, "BTCUSDT", "2022-02-28T22:00", "2022-02-28T22:00")
    assert calls == [] and len(callbacks) == 1  # nothing runs before the close commits
    callbacks[0]()
    assert calls == [1]


def test_a_replay_can_defer_model_updates(django_capture_on_commit_callbacks, monkeypatch):
    calls = []
    monkeypatch.setitem(sys.modules, "learning.tasks", types.SimpleNamespace(learning_online_update_queue=lambda: calls.append(1)))
    account = PaperAccountFactory()
    opened_at(account, "BTCUSDT", "2022-02-28T22:00", take_profit_price=Decimal("42500"))
    with trade_services.model_updates_deferred(), django_capture_on_commit_callbacks(execute=True):
        run(account, "BTCUSDT", "2022-02-28T22:00", "2022-02-28T22:00")
    assert calls == [] and TrainingRecord.objects.count() == 1


def test_closing_twice_is_refused_and_stores_nothing_more():
    account = PaperAccountFactory()
    trade = opened_at(account, "BTCUSDT", "2022-02-28T22:00")
    trade_close(trade=trade, exit_time=trade.entry_time, exit_price=Decimal("42000"), exit_reason="signal_exit")
    with pytest.raises(TradeNotOpen):
        trade_close(trade=trade, exit_time=trade.entry_time, exit_price=Decimal("43000"), exit_reason="signal_exit")
    assert TrainingRecord.objects.count() == 1
    assert_account_balanced(account)


def test_a_manual_close_is_a_market_exit_paying_slippage():
    account = PaperAccountFactory()
    trade = opened_at(account, "BTCUSDT", "2022-02-28T22:00")
    closed = trade_close_manual(trade_id=trade.pk, price=Decimal("43000"), time=trade.entry_time + timedelta(hours=2))
    assert (closed.exit_reason, closed.exit_price) == ("manual", Decimal("43000") * Decimal("0.9998"))
    assert TrainingRecord.objects.get().exit_reason == "manual"
    assert_account_balanced(account)


@pytest.mark.parametrize(
    ("price", "shift", "field"),
    [
        (Decimal("0"), timedelta(hours=1), "price"),
        (Decimal("43000"), -timedelta(hours=1), "time"),
        (Decimal("43000"), None, "time"),
    ],
)
def test_a_manual_close_checks_its_price_and_time(price, shift, field):
    trade = opened_at(PaperAccountFactory(), "BTCUSDT", "2022-02-28T22:00")
    when = timezone.now() + timedelta(days=1) if shift is None else trade.entry_time + shift
    with pytest.raises(ValidationError) as error:
        trade_close_manual(trade_id=trade.pk, price=price, time=when)
    assert field in error.value.message_dict
    trade.refresh_from_db()
    assert trade.status == "open"


@pytest.mark.django_db(transaction=True)
def test_two_workers_closing_one_trade_close_it_once():
    account = PaperAccountFactory()
    trade = opened_at(account, "BTCUSDT", "2022-02-28T22:00")
    barrier = threading.Barrier(2)
    outcomes = []

    def close(price: str) -> None:
        try:
            barrier.wait()
            trade_close(trade=trade, exit_time=trade.entry_time, exit_price=Decimal(price), exit_reason="signal_exit")
            outcomes.append("closed")
        except TradeNotOpen:
            outcomes.append("refused")
        finally:
            connection.close()

    workers = [threading.Thread(target=close, args=(price,)) for price in ("42000", "43000")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(outcomes) == ["closed", "refused"]
    assert TrainingRecord.objects.count() == 1
    assert_account_balanced(account)
