"""Exchange orders against Binance USDⓈ-M replies (only ccxt's HTTP layer stubbed): placed once, filled, rejected, reconciled, killed."""
import logging
from decimal import Decimal

import ccxt
import pytest
import requests
from django.core.exceptions import ImproperlyConfigured

from tests.trading.factories import PaperAccountFactory, SignalDecisionFactory
from tests.trading.orders.binance_futures import ScriptedBinanceFutures, fill_body, order_body, position_body
from trading.brokers import exchange_order_client
from trading.models import ExchangeOrder, PaperAccount
from trading.services.orders import account_reconcile, client_order_id, kill_switch, order_place

pytestmark = pytest.mark.django_db
MARKET = "BTC/USDT:USDT"
KEY, SECRET = "test-api-key-0123456789", "test-api-secret-abcdefghij"


@pytest.fixture(autouse=True)
def keys(monkeypatch, settings):
    settings.TRADING_EXCHANGE = "binanceusdm"
    monkeypatch.setenv("EXCHANGE_API_KEY", KEY)
    monkeypatch.setenv("EXCHANGE_API_SECRET", SECRET)


@pytest.fixture
def account():
    account = PaperAccountFactory(name="testnet", broker="exchange")
    SignalDecisionFactory(account=account, id=7)
    return account


def place(account, session, decision_id=7):
    client = exchange_order_client(account, session=session)
    return order_place(account=account, decision_id=decision_id, role="entry", market=MARKET, side="buy", amount=Decimal("0.010"), client=client)


def test_the_client_uses_demo_trading_unless_real_money_is_switched_on_twice(account, settings, caplog):
    caplog.set_level(logging.WARNING)
    assert "demo-fapi.binance.com" in exchange_order_client(account).urls["api"]["fapiPrivate"]
    account.real_money = True
    assert "demo-fapi" in exchange_order_client(account).urls["api"]["fapiPrivate"]  # the flag alone is not enough
    settings.EXCHANGE_REAL_MONEY = True
    assert exchange_order_client(account).urls["api"]["fapiPrivate"].startswith("https://fapi.binance.com")
    assert "REAL MONEY: account testnet" in caplog.text
    assert KEY not in caplog.text and SECRET not in caplog.text


def test_without_keys_in_the_environment_nothing_is_placed(account, monkeypatch):
    monkeypatch.delenv("EXCHANGE_API_SECRET")
    with pytest.raises(ImproperlyConfigured, match="EXCHANGE_API_KEY and EXCHANGE_API_SECRET"):
        exchange_order_client(account)


def test_a_filled_market_order_takes_its_fill_and_fee_from_the_exchange(account):
    cid = client_order_id(account_id=account.pk, decision_id=7, role="entry")
    session = ScriptedBinanceFutures()
    session.answer("POST", "/fapi/v1/order", order_body(cid, "FILLED", executed="0.010", average="42000.5"))
    session.answer("GET", "/fapi/v1/userTrades", [fill_body(4001, quantity="0.010", price="42000.5", commission="0.16800200", fill_id=1)])
    order = place(account, session)
    assert session.calls("POST", "/fapi/v1/order")[0]["newClientOrderId"] == cid == f"tl-{account.pk}-7-e"
    assert (order.status, order.filled, order.average_price, order.exchange_order_id) == ("filled", Decimal("0.010"), Decimal("42000.5"), "4001")
    assert (order.fee, order.fee_currency) == (Decimal("0.168002"), "USDT")
    assert not order.is_real_money
    # The same decision again (a redelivered task): the stored order, nothing sent.
    assert place(account, session).pk == order.pk and len(session.calls("POST", "/fapi/v1/order")) == 1


def test_a_rejected_order_says_why_and_is_not_sent_again(account):
    session = ScriptedBinanceFutures().answer("POST", "/fapi/v1/order", (400, {"code": -2019, "msg": "Margin is insufficient."}))
    order = place(account, session)
    assert order.status == "rejected" and "InsufficientFunds" in order.reject_reason and "Margin is insufficient" in order.reject_reason
    assert place(account, session).status == "rejected" and len(session.calls("POST", "/fapi/v1/order")) == 1


def test_a_retried_task_asks_about_its_order_instead_of_placing_it_twice(account):
    cid = client_order_id(account_id=account.pk, decision_id=7, role="entry")
    session = ScriptedBinanceFutures()
    # The order reached the exchange, but the answer was lost with the connection.
    session.answer("POST", "/fapi/v1/order", requests.ConnectionError("Connection aborted."))
    with pytest.raises(ccxt.NetworkError):
        place(account, session)
    assert ExchangeOrder.objects.get(client_order_id=cid).submitted_at is not None
    session.answer("GET", "/fapi/v1/order", order_body(cid, "FILLED", executed="0.010", average="42001"))
    session.answer("GET", "/fapi/v1/userTrades", [fill_body(4001, quantity="0.010", price="42001", commission="0.168", fill_id=1)])
    order = place(account, session)
    assert order.status == "filled" and order.fee == Decimal("0.168")
    assert session.calls("GET", "/fapi/v1/order")[0]["origClientOrderId"] == cid
    assert len(session.calls("POST", "/fapi/v1/order")) == 1


def test_a_retry_whose_order_never_arrived_sends_it(account):
    cid = client_order_id(account_id=account.pk, decision_id=7, role="entry")
    session = ScriptedBinanceFutures().answer("POST", "/fapi/v1/order", requests.ConnectionError("Connection refused"))
    with pytest.raises(ccxt.NetworkError):
        place(account, session)
    session.answer("GET", "/fapi/v1/order", (400, {"code": -2013, "msg": "Order does not exist."}))
    session.answer("POST", "/fapi/v1/order", order_body(cid, "NEW"))
    assert place(account, session).status == "new"
    assert [call["newClientOrderId"] for call in session.calls("POST", "/fapi/v1/order")] == [cid, cid]


def test_partial_fills_then_a_restart_mid_order_is_caught_up_by_reconciliation(account):
    cid = client_order_id(account_id=account.pk, decision_id=7, role="entry")
    session = ScriptedBinanceFutures()
    session.answer("POST", "/fapi/v1/order", order_body(cid, "PARTIALLY_FILLED", executed="0.004", average="42000"))
    session.answer("GET", "/fapi/v1/userTrades", [fill_body(4001, quantity="0.004", price="42000", commission="0.0672", fill_id=1)])
    order = place(account, session)
    assert (order.status, order.filled, order.fee) == ("partially_filled", Decimal("0.004"), Decimal("0.0672"))

    # The worker restarts. Reconciliation at start-up: the order is still open, further filled,
    # and later reported filled; a stale report (less filled) never moves it back.
    restarted = ScriptedBinanceFutures()
    restarted.answer("GET", "/fapi/v1/openOrders", [order_body(cid, "PARTIALLY_FILLED", executed="0.007", average="42000.2")])
    restarted.answer("GET", "/fapi/v3/positionRisk", [])
    client = exchange_order_client(account, session=restarted)
    report = account_reconcile(account=account, client=client, markets=[MARKET])
    assert report.unexplained == [] and not report.paused
    order.refresh_from_db()
    assert (order.status, order.filled) == ("partially_filled", Decimal("0.007"))

    restarted.answer("GET", "/fapi/v1/openOrders", [])
    restarted.answer("GET", "/fapi/v1/order", order_body(cid, "FILLED", executed="0.010", average="42000.4"))
    restarted.answer("GET", "/fapi/v1/userTrades", [
        fill_body(4001, quantity="0.004", price="42000", commission="0.0672", fill_id=1),
        fill_body(4001, quantity="0.006", price="42000.7", commission="0.1008", fill_id=2),
    ])  # fmt: skip
    restarted.answer("GET", "/fapi/v3/positionRisk", [])
    account_reconcile(account=account, client=client, markets=[MARKET])
    order.refresh_from_db()
    assert (order.status, order.filled, order.average_price, order.fee) == ("filled", Decimal("0.010"), Decimal("42000.4"), Decimal("0.1680"))


def test_reconciliation_reports_an_unknown_position_and_order_pauses_the_account_and_notifies(
    account, caplog, settings, django_capture_on_commit_callbacks
):
    from tests.notifications.test_notifications import Receiver

    receiver = Receiver()
    settings.NOTIFY_WEBHOOK_URL = f"{receiver.url}/hook"
    session = ScriptedBinanceFutures()
    session.answer("GET", "/fapi/v1/openOrders", [order_body("web_manual_1", "NEW", order_id=9001)])
    session.answer("GET", "/fapi/v3/positionRisk", [position_body("0.010")])
    with django_capture_on_commit_callbacks(execute=True):
        report = account_reconcile(account=account, client=exchange_order_client(account, session=session), markets=[MARKET])
    receiver.close()
    [(path, message)] = receiver.requests
    assert path == "/hook" and message["event"] == "reconciliation_mismatch" and message["text"].startswith("testnet paused: ")
    assert message["data"]["unexplained"] == report.unexplained
    assert report.paused and PaperAccount.objects.get(pk=account.pk).is_paused
    assert len(report.unexplained) == 2
    assert "client id 'web_manual_1'" in report.unexplained[0] and "was not placed by testnet" in report.unexplained[0]
    assert report.unexplained[1] == "position 0.01 BTC/USDT:USDT on the exchange; the books hold 0"
    assert "account paused" in caplog.text


def test_the_kill_switch_cancels_open_orders_and_pauses(account):
    cid = client_order_id(account_id=account.pk, decision_id=7, role="entry")
    session = ScriptedBinanceFutures().answer("POST", "/fapi/v1/order", order_body(cid, "NEW"))
    place(account, session)
    other = PaperAccountFactory(name="paper-only")
    session.answer("DELETE", "/fapi/v1/order", order_body(cid, "CANCELED"))
    cancelled = kill_switch(client_for=lambda acct: exchange_order_client(acct, session=session))
    assert cancelled == {"testnet": 1, "paper-only": 0}
    assert ExchangeOrder.objects.get(client_order_id=cid).status == "cancelled"
    assert PaperAccount.objects.filter(pk__in=[account.pk, other.pk], is_paused=True).count() == 2


def test_the_kill_switch_command_names_a_missing_account_and_pauses_one():
    from io import StringIO

    from django.core.management import CommandError, call_command

    PaperAccountFactory(name="solo")
    with pytest.raises(CommandError, match="No account named 'nobody'"):
        call_command("kill_switch", "--account", "nobody")
    out = StringIO()
    call_command("kill_switch", "--account", "solo", stdout=out)
    assert "solo: paused, 0 open orders cancelled" in out.getvalue()
    assert PaperAccount.objects.get(name="solo").is_paused
