"""/api/v1/accounts/: list, detail with equity figures, pause and resume (writes need authentication)."""
from decimal import Decimal

import pytest

from tests.trading.accounting.helpers import candle
from tests.trading.factories import PaperAccountFactory, TradeOpenRequestFactory
from trading.services.trades import trade_open

pytestmark = pytest.mark.django_db


def test_list_is_paginated_and_filterable(token_client):
    PaperAccountFactory(system_type="paper_trading")
    PaperAccountFactory(system_type="profit_scraping", is_paused=True)
    response = token_client.get("/api/v1/accounts/")
    assert response.status_code == 200 and response.json()["count"] == 2
    response = token_client.get("/api/v1/accounts/", {"system_type": "profit_scraping"})
    assert [row["is_paused"] for row in response.json()["results"]] == [True]


def test_detail_shows_equity_figures_with_open_trades_marked_to_the_last_close(token_client):
    account = PaperAccountFactory()
    entry_bar = candle("BTCUSDT", "2022-02-28T22:00")
    trade = trade_open(account=account, request=TradeOpenRequestFactory(fill_time=entry_bar.open_time, fill_price=entry_bar.open)).trade
    mark = candle("BTCUSDT", "2022-02-28T23:00")
    mark.save()  # the last stored close: 43155.0
    body = token_client.get(f"/api/v1/accounts/{account.pk}/").json()
    figures = body["figures"]
    balance = Decimal("10000") - trade.fees
    assert Decimal(body["current_balance"]) == balance
    assert Decimal(figures["margin_in_use"]) == trade.notional
    assert Decimal(figures["free_balance"]) == balance - trade.notional
    unrealised = (trade.quantity * (Decimal("43155.0") - trade.entry_price)).quantize(Decimal("1e-10"))
    assert Decimal(figures["unrealised_pnl"]) == unrealised
    assert Decimal(figures["equity"]) == balance + unrealised
    assert (figures["open_trades"], figures["closed_trades"], figures["win_rate"]) == (1, 0, None)


def test_missing_account_is_a_404_in_the_error_shape(token_client):
    response = token_client.get("/api/v1/accounts/999999/")
    assert response.status_code == 404
    assert set(response.json()) == {"message", "extra"}


def test_pause_and_resume_need_authentication(anonymous_client):
    account = PaperAccountFactory()
    response = anonymous_client.post(f"/api/v1/accounts/{account.pk}/pause/")
    assert response.status_code == 401
    assert response.json() == {"message": "Authentication credentials were not provided.", "extra": {}}
    account.refresh_from_db()
    assert not account.is_paused


def test_pause_then_resume(token_client):
    account = PaperAccountFactory()
    response = token_client.post(f"/api/v1/accounts/{account.pk}/pause/")
    assert response.status_code == 200 and response.json()["is_paused"] is True
    assert token_client.post(f"/api/v1/accounts/{account.pk}/pause/").json()["is_paused"] is True  # idempotent
    response = token_client.post(f"/api/v1/accounts/{account.pk}/resume/")
    assert response.status_code == 200 and response.json()["is_paused"] is False
    assert token_client.post("/api/v1/accounts/999999/pause/").status_code == 404


def test_create_needs_authentication(anonymous_client):
    response = anonymous_client.post("/api/v1/accounts/", {"name": "x", "system_type": "paper_trading", "starting_balance": "100"})
    assert response.status_code == 401


def test_create_makes_an_account_whose_balance_is_its_start(token_client):
    response = token_client.post(
        "/api/v1/accounts/", {"name": "swing", "system_type": "profit_scraping", "starting_balance": "2500", "is_paused": True}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["name"], body["system_type"], body["is_paused"]) == ("swing", "profit_scraping", True)
    assert Decimal(body["current_balance"]) == Decimal("2500") == Decimal(body["figures"]["equity"])
    assert token_client.get("/api/v1/accounts/", {"system_type": "profit_scraping"}).json()["count"] == 1


def test_create_rejects_bad_input_with_field_messages(token_client):
    PaperAccountFactory(name="taken")
    response = token_client.post(
        "/api/v1/accounts/", {"name": "taken", "system_type": "hodl", "starting_balance": "-5"}, format="json"
    )
    assert response.status_code == 400
    assert set(response.json()["extra"]["fields"]) >= {"system_type", "starting_balance"}
    duplicate = token_client.post("/api/v1/accounts/", {"name": "taken", "system_type": "paper_trading", "starting_balance": "5"}, format="json")
    assert duplicate.status_code == 400 and "name" in duplicate.json()["extra"]["fields"]


def test_the_symbols_an_account_trades_are_set_by_patch_and_checked_against_trading_markets(token_client, settings):
    settings.TRADING_MARKETS = ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    account = PaperAccountFactory()
    body = token_client.get(f"/api/v1/accounts/{account.pk}/").json()
    assert (body["symbols"], body["traded_markets"], body["broker"], body["real_money"]) == ([], ["BTC/USDT:USDT", "ETH/USDT:USDT"], "paper", False)
    response = token_client.patch(f"/api/v1/accounts/{account.pk}/", {"symbols": ["ethusdt"]}, format="json")
    assert response.status_code == 200 and response.json()["symbols"] == ["ETH/USDT:USDT"] == response.json()["traded_markets"]
    response = token_client.patch(f"/api/v1/accounts/{account.pk}/", {"symbols": ["ETH/USDT:USDT", "DOGE/USDT:USDT"]}, format="json")
    assert response.status_code == 400
    assert "DOGE/USDT:USDT not among TRADING_MARKETS" in str(response.json()["extra"]["fields"]["symbols"])
    assert token_client.patch(f"/api/v1/accounts/{account.pk}/", {"symbols": "BTC"}, format="json").status_code == 400
    assert token_client.patch(f"/api/v1/accounts/{account.pk}/", {"symbols": []}, format="json").json()["traded_markets"] == settings.TRADING_MARKETS
    created = token_client.post(
        "/api/v1/accounts/", {"name": "eth-only", "system_type": "paper_trading", "starting_balance": "1000", "symbols": ["ETH/USDT:USDT"]}, format="json"
    )  # fmt: skip
    assert created.status_code == 201 and created.json()["traded_markets"] == ["ETH/USDT:USDT"]


def test_a_live_account_is_marked_to_the_last_candle_it_ticked_not_to_stored_candles_ahead_of_it(token_client):
    # The clock feed stores the whole history at start: candles after the account's market time
    # are in the database, and must not price its open trades (nor the dashboard's).
    from dashboard.selectors import open_trades
    from tests.trading.accounting.helpers import candles
    from trading.models import Candle, EngineTick
    from trading.services.accounts import account_figures

    account = PaperAccountFactory()
    stored = candles("BTCUSDT", "2022-02-28T22:00", "2022-03-01T06:00")
    Candle.objects.bulk_create(stored)
    trade = trade_open(account=account, request=TradeOpenRequestFactory(fill_time=stored[0].open_time, fill_price=stored[0].open)).trade
    for bar in stored[:3]:
        EngineTick.objects.create(account=account, symbol="BTCUSDT", timeframe="1h", candle_time=bar.open_time)
    seen_close, latest_close = stored[2].close, stored[-1].close
    assert seen_close != latest_close
    expected = (trade.quantity * (seen_close - trade.entry_price)).quantize(Decimal("1e-10"))
    assert account_figures(account=account).unrealised_pnl == expected
    assert Decimal(token_client.get(f"/api/v1/accounts/{account.pk}/").json()["figures"]["unrealised_pnl"]) == expected
    (row,) = open_trades()
    assert row.mark_price == seen_close
