"""The reconciliation task imports with the worker's task modules and reconciles each exchange account."""
import pytest

from tests.trading.factories import PaperAccountFactory
from tests.trading.orders.binance_futures import ScriptedBinanceFutures, position_body
from trading.models import PaperAccount

pytestmark = pytest.mark.django_db


def test_every_exchange_account_is_reconciled_and_a_paper_account_is_left_alone(monkeypatch, settings):
    from trading import brokers
    from trading.tasks import reconcile_exchange_accounts_task

    settings.TRADING_EXCHANGE = "binanceusdm"
    settings.TRADING_MARKETS = ["BTC/USDT:USDT"]
    monkeypatch.setenv("EXCHANGE_API_KEY", "key")
    monkeypatch.setenv("EXCHANGE_API_SECRET", "secret")
    session = ScriptedBinanceFutures()
    session.answer("GET", "/fapi/v1/openOrders", [])
    session.answer("GET", "/fapi/v3/positionRisk", [position_body("-0.002")])
    real_client = brokers.exchange_order_client
    monkeypatch.setattr(brokers, "exchange_order_client", lambda account: real_client(account, session=session))
    PaperAccountFactory(name="exchange-one", broker="exchange")
    PaperAccountFactory(name="paper-one")
    assert reconcile_exchange_accounts_task.delay().get() == {
        "exchange-one": ["position -0.002 BTC/USDT:USDT on the exchange; the books hold 0"]
    }
    assert list(PaperAccount.objects.filter(is_paused=True).values_list("name", flat=True)) == ["exchange-one"]
