"""Admin for accounts, trades, decisions and ticks: pages load, money is read-only, actions go through services."""
import csv
import io
from decimal import Decimal

import pytest

from learning.models import TrainingRecord
from tests.trading.accounting.helpers import assert_account_balanced, candle, opened_at
from tests.trading.factories import PaperAccountFactory, SignalDecisionFactory
from trading.models import EngineTick
from trading.services.trades import trade_close_manual

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", ["paperaccount", "papertrade", "signaldecision", "enginetick"])
def test_changelists_load_with_filters(admin_client, model):
    account = PaperAccountFactory()
    opened_at(account, "BTCUSDT", "2022-02-28T22:00", decision=SignalDecisionFactory(account=account))
    EngineTick.objects.create(account=account, symbol="BTCUSDT", timeframe="1h", candle_time=candle("BTCUSDT", "2022-02-28T21:00").open_time)
    response = admin_client.get(f"/admin/trading/{model}/", {"q": "BTC"} if model != "enginetick" else {})
    assert response.status_code == 200


def test_pause_and_resume_actions(admin_client):
    account = PaperAccountFactory()
    admin_client.post("/admin/trading/paperaccount/", {"action": "pause_accounts", "_selected_action": [account.pk]})
    account.refresh_from_db()
    assert account.is_paused
    admin_client.post("/admin/trading/paperaccount/", {"action": "resume_accounts", "_selected_action": [account.pk]})
    account.refresh_from_db()
    assert not account.is_paused


def test_an_open_trades_exits_are_editable_and_its_money_is_not(admin_client):
    account = PaperAccountFactory()
    trade = opened_at(account, "BTCUSDT", "2022-02-28T22:00", decision=SignalDecisionFactory(account=account, reason="took it"))
    page = admin_client.get(f"/admin/trading/papertrade/{trade.pk}/change/").content.decode()
    assert 'name="stop_loss_price"' in page and 'name="entry_price"' not in page and 'name="fees"' not in page
    assert "/admin/trading/signaldecision/" in page and "took it" in page


def test_a_closed_trade_is_read_only(admin_client):
    trade = opened_at(PaperAccountFactory(), "BTCUSDT", "2022-02-28T22:00")
    trade_close_manual(trade_id=trade.pk, price=Decimal("43000"), time=trade.entry_time)
    page = admin_client.get(f"/admin/trading/papertrade/{trade.pk}/change/").content.decode()
    assert 'name="stop_loss_price"' not in page and 'name="take_profit_price"' not in page


def test_export_selected_trades_to_csv(admin_client):
    trades = [opened_at(PaperAccountFactory(), "BTCUSDT", "2022-02-28T22:00") for _ in range(2)]
    response = admin_client.post(
        "/admin/trading/papertrade/", {"action": "export_csv", "_selected_action": [t.pk for t in trades]}
    )
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [int(row["id"]) for row in rows] == [t.pk for t in trades]
    assert Decimal(rows[0]["entry_price"]) == trades[0].entry_price


def test_close_at_the_last_stored_close_action(admin_client):
    account = PaperAccountFactory()
    trade = opened_at(account, "BTCUSDT", "2022-02-28T22:00")
    candle("BTCUSDT", "2022-02-28T23:00").save()  # close 43155.0
    admin_client.post("/admin/trading/papertrade/", {"action": "close_at_last_close", "_selected_action": [trade.pk]})
    trade.refresh_from_db()
    assert (trade.status, trade.exit_reason, trade.exit_price) == ("closed", "manual", Decimal("43155.0") * Decimal("0.9998"))
    assert TrainingRecord.objects.count() == 1
    assert_account_balanced(account)


def test_a_decision_cannot_be_deleted_from_the_admin(admin_client):
    decision = SignalDecisionFactory()
    admin_client.post("/admin/trading/signaldecision/", {"action": "delete_selected", "_selected_action": [decision.pk], "post": "yes"})
    assert admin_client.get(f"/admin/trading/signaldecision/{decision.pk}/delete/").status_code == 403
    decision.refresh_from_db()  # still there
