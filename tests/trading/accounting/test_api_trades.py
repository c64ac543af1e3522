"""/api/v1/trades/ and /api/v1/decisions/: filters, cursor pagination, detail, and the manual close."""
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from learning.models import TrainingRecord
from tests.trading.accounting.helpers import opened_at
from tests.trading.factories import PaperAccountFactory, PaperTradeFactory, SignalDecisionFactory

pytestmark = pytest.mark.django_db


def test_list_filters(token_client):
    account = PaperAccountFactory()
    at = datetime(2022, 3, 1, tzinfo=UTC)
    PaperTradeFactory(account=account, symbol="BTCUSDT", side="long", entry_time=at)
    PaperTradeFactory(account=account, symbol="ETHUSDT", side="short", is_shadow=True, entry_time=at + timedelta(hours=1))
    PaperTradeFactory(
        account=account, symbol="ETHUSDT", entry_time=at + timedelta(hours=2),
        status="closed", exit_reason="stop_loss", exit_time=at + timedelta(hours=4),
    )  # fmt: skip
    PaperTradeFactory(entry_time=at - timedelta(days=1))  # another account

    def count(**params):
        response = token_client.get("/api/v1/trades/", params)
        assert response.status_code == 200, response.json()
        return len(response.json()["results"])

    assert count(account=account.pk) == 3
    assert count(account=account.pk, symbol="ETHUSDT") == 2
    assert count(account=account.pk, status="open", side="short") == 1
    assert count(is_shadow="true") == 1
    assert count(exit_reason="stop_loss") == 1
    assert count(account=account.pk, entry_time_after="2022-03-01T01:00:00Z", entry_time_before="2022-03-01T02:00:00Z") == 2
    assert count(exit_time_before="2022-03-01T05:00:00Z") == 1


def test_list_rejects_a_bad_filter_in_the_error_shape(token_client):
    response = token_client.get("/api/v1/trades/", {"status": "pending", "entry_time_after": "yesterday"})
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "Validation error" and {"status", "entry_time"} <= set(body["extra"]["fields"])


def test_list_is_cursor_paginated_newest_first(token_client):
    trades = [PaperTradeFactory() for _ in range(5)]
    first = token_client.get("/api/v1/trades/", {"page_size": 2}).json()
    assert [row["id"] for row in first["results"]] == [trades[4].pk, trades[3].pk]
    second = token_client.get(first["next"]).json()
    assert [row["id"] for row in second["results"]] == [trades[2].pk, trades[1].pk]


def test_detail_shows_the_stop_in_force(token_client):
    trade = opened_at(PaperAccountFactory(), "BTCUSDT", "2022-02-28T22:00", stop_loss_price=Decimal("41000"), trailing_stop_pct=Decimal("0.005"))
    body = token_client.get(f"/api/v1/trades/{trade.pk}/").json()
    # Trailing 0.5 % from the fill 41641.42662: 41433.21948690, tighter than the initial 41000.
    assert Decimal(body["active_stop_price"]) == Decimal("41433.2194869")
    assert body["active_stop_kind"] == "trailing_stop" and body["signal_features"] == trade.signal_features
    assert token_client.get("/api/v1/trades/999999/").status_code == 404


def test_close_needs_authentication(anonymous_client):
    trade = opened_at(PaperAccountFactory(), "BTCUSDT", "2022-02-28T22:00")
    response = anonymous_client.post(f"/api/v1/trades/{trade.pk}/close/", {"price": "43000"}, format="json")
    assert response.status_code == 401 and set(response.json()) == {"message", "extra"}
    trade.refresh_from_db()
    assert trade.status == "open"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "price"),
        ({"price": "abc"}, "price"),
        ({"price": "-5"}, "price"),
        ({"price": "0"}, "price"),
        ({"price": "1e30"}, "price"),
        ({"price": "43000", "time": "not a time"}, "time"),
        ({"price": "43000", "time": "2022-02-28T21:00:00Z"}, "time"),  # before the entry
        ({"price": "43000", "time": "2999-01-01T00:00:00Z"}, "time"),  # in the future
    ],
)
def test_close_rejects_bad_input_with_field_messages(token_client, payload, field):
    trade = opened_at(PaperAccountFactory(), "BTCUSDT", "2022-02-28T22:00")
    response = token_client.post(f"/api/v1/trades/{trade.pk}/close/", payload, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["extra"]["fields"]
    trade.refresh_from_db()
    assert trade.status == "open"


def test_close_at_a_price_then_closing_again_is_a_conflict(token_client):
    account = PaperAccountFactory()
    trade = opened_at(account, "BTCUSDT", "2022-02-28T22:00")
    response = token_client.post(
        f"/api/v1/trades/{trade.pk}/close/", {"price": "43000", "time": "2022-03-01T02:00:00Z"}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["exit_reason"]) == ("closed", "manual")
    assert Decimal(body["exit_price"]) == Decimal("43000") * Decimal("0.9998")  # a market sell pays slippage
    assert body["active_stop_price"] is None
    assert TrainingRecord.objects.filter(trade_id=f"acct{account.pk}-trade{trade.pk}").count() == 1

    again = token_client.post(f"/api/v1/trades/{trade.pk}/close/", {"price": "44000"}, format="json")
    assert again.status_code == 409 and "already closed" in again.json()["message"]
    assert token_client.post("/api/v1/trades/999999/close/", {"price": "1"}, format="json").status_code == 404


def test_decisions_list_filters_and_paginates(token_client):
    account = PaperAccountFactory()
    taken = SignalDecisionFactory(account=account, taken=True)
    skipped = [SignalDecisionFactory(account=account, taken=False, reason="expected pnl below threshold") for _ in range(3)]
    SignalDecisionFactory(taken=False)  # another account
    response = token_client.get("/api/v1/decisions/", {"account": account.pk, "taken": "false", "page_size": 2})
    body = response.json()
    assert [row["id"] for row in body["results"]] == [skipped[2].pk, skipped[1].pk] and body["next"]
    response = token_client.get("/api/v1/decisions/", {"account": account.pk, "taken": "true"})
    assert [row["id"] for row in response.json()["results"]] == [taken.pk]
    response = token_client.get("/api/v1/decisions/", {"candle_time_after": "nonsense"})
    assert response.status_code == 400 and "candle_time" in response.json()["extra"]["fields"]


def test_the_schema_documents_these_endpoints(token_client):
    response = token_client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"/api/v1/accounts/{id}/pause/", "/api/v1/trades/{id}/close/", "/api/v1/decisions/"} <= set(paths)
    assert "409" in paths["/api/v1/trades/{id}/close/"]["post"]["responses"]
