"""The learning API: good input stored or answered, bad input a 4xx in the one error shape, nothing stored."""
import json
from dataclasses import asdict
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from learning.models import StrategyPerformance, TrainingRecord
from learning.services import store_trade_outcomes
from tests.factories import TradeOutcomeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> APIClient:
    user = get_user_model().objects.create_user("trader", password="x")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return api


def outcome_json(**overrides) -> dict:
    data = asdict(TradeOutcomeFactory())
    data.update(overrides)
    return json.loads(json.dumps(data, default=str))


def assert_error_shape(response, *fields):
    body = response.json()
    assert set(body) == {"message", "extra"}
    for field in fields:
        assert field in json.dumps(body["extra"]["fields"]), body


def test_post_one_outcome_stores_it(client):
    response = client.post("/api/v1/trade-outcomes/", outcome_json(trade_id="api-1"), format="json")
    assert response.status_code == 201 and response.json() == {"stored": 1, "duplicates": []}
    assert TrainingRecord.objects.filter(trade_id="api-1").exists()
    again = client.post("/api/v1/trade-outcomes/", outcome_json(trade_id="api-1"), format="json")
    assert again.status_code == 200 and again.json() == {"stored": 0, "duplicates": ["api-1"]}


def test_stored_outcomes_cannot_be_changed_or_deleted_through_the_api(client):
    """Records are append-only: corrections are the admin's audited action, never an API write."""
    client.post("/api/v1/trade-outcomes/", outcome_json(trade_id="api-fixed", net_pnl="-5", pnl_pct="-0.005"), format="json")
    record = TrainingRecord.objects.get(trade_id="api-fixed")
    for method in ("put", "patch", "delete"):
        response = getattr(client, method)("/api/v1/trade-outcomes/", {"trade_id": "api-fixed", "net_pnl": "407"}, format="json")
        assert response.status_code == 405, (method, response.status_code)
        assert getattr(client, method)(f"/api/v1/trade-outcomes/{record.pk}/", {"net_pnl": "407"}, format="json").status_code == 404
    # Storing the same trade again with another P&L is a duplicate, not an overwrite.
    again = client.post("/api/v1/trade-outcomes/", outcome_json(trade_id="api-fixed", net_pnl="407", pnl_pct="0.407"), format="json")
    assert again.json() == {"stored": 0, "duplicates": ["api-fixed"]}
    record.refresh_from_db()
    assert record.net_pnl == -5 and TrainingRecord.objects.count() == 1


def test_post_a_list_stores_all_or_nothing(client):
    good = [outcome_json(), outcome_json()]
    assert client.post("/api/v1/trade-outcomes/", good, format="json").json()["stored"] == 2
    bad = [outcome_json(), outcome_json(entry_price="0")]
    response = client.post("/api/v1/trade-outcomes/", bad, format="json")
    assert response.status_code == 400
    assert TrainingRecord.objects.count() == 2


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"entry_price": "NaN"}, "entry_price"),
        ({"exit_price": "Infinity"}, "exit_price"),
        ({"confidence_score": "nan"}, "confidence_score"),
        ({"confidence_score": 2}, "confidence_score"),
        ({"side": "up"}, "side"),
        ({"entry_time": "yesterday"}, "entry_time"),
        ({"features": {"rsi_14": "inf"}}, "rsi_14"),
        ({"features": {"rsi_14": "high"}}, "rsi_14"),
        ({"entry_price": "0"}, "entry_price"),
        ({"exit_time": "2020-01-01T00:00:00Z"}, "exit_time"),
        ({"fees": "-1"}, "fees"),
        ({"trade_id": None}, "trade_id"),
    ],
)
def test_bad_outcomes_are_400_with_the_field_named_and_nothing_stored(client, overrides, field):
    response = client.post("/api/v1/trade-outcomes/", outcome_json(**overrides), format="json")
    assert response.status_code == 400
    assert_error_shape(response, field)
    assert TrainingRecord.objects.count() == 0 and StrategyPerformance.objects.count() == 0


def test_missing_fields_wrong_types_and_oversized_batches_are_400(client):
    response = client.post("/api/v1/trade-outcomes/", {"trade_id": "x"}, format="json")
    assert response.status_code == 400
    assert_error_shape(response, "symbol", "entry_price")
    assert client.post("/api/v1/trade-outcomes/", "just a string", format="json").status_code == 400
    assert client.post("/api/v1/trade-outcomes/", [], format="json").status_code == 400
    oversized = client.post("/api/v1/trade-outcomes/", [outcome_json()] * 1001, format="json")
    assert oversized.status_code == 400 and "at most 1000" in oversized.content.decode()
    raw_nan = client.generic("POST", "/api/v1/trade-outcomes/", '{"trade_id": NaN}', content_type="application/json")
    assert raw_nan.status_code == 400 and set(raw_nan.json()) == {"message", "extra"}
    assert TrainingRecord.objects.count() == 0


def test_unauthenticated_writes_are_refused():
    response = APIClient().post("/api/v1/trade-outcomes/", outcome_json(), format="json")
    assert response.status_code == 401
    assert set(response.json()) == {"message", "extra"}
    assert TrainingRecord.objects.count() == 0


def test_list_filters_and_cursor_pagination(client):
    store_trade_outcomes(outcomes=TradeOutcomeFactory.build_batch(30, system_type="paper_trading"))
    store_trade_outcomes(outcomes=TradeOutcomeFactory.build_batch(5, system_type="profit_scraping"))
    page = client.get("/api/v1/trade-outcomes/", {"system_type": "profit_scraping"}).json()
    assert len(page["results"]) == 5
    first = client.get("/api/v1/trade-outcomes/", {"page_size": 20}).json()
    second = client.get(first["next"]).json()
    ids = [row["id"] for row in first["results"] + second["results"]]
    assert len(ids) == 35 == len(set(ids)) and ids == sorted(ids, reverse=True)
    assert client.get("/api/v1/trade-outcomes/", {"exit_time_after": "not a date"}).status_code == 400


def test_recommendation(client):
    body = {"strategy_type": "trend_following", "system_type": "paper_trading", "confidence_score": 0.6,
            "market_regime": "ranging", "volatility_regime": "low", "take_profit_pct": 0.02, "stop_loss_pct": 0.01}  # fmt: skip
    response = client.post("/api/v1/recommendation/", body, format="json")
    assert response.status_code == 200
    assert response.json()["should_take_trade"] is True and "rests on 0" in response.json()["reasoning"]
    bad = client.post("/api/v1/recommendation/", {**body, "confidence_score": "nan", "market_regime": "moon"}, format="json")
    assert bad.status_code == 400
    assert_error_shape(bad, "confidence_score", "market_regime")


def test_a_strategy_never_seen_gets_the_conservative_default_size_and_is_told_so(client, settings):
    body = {"strategy_type": "brand_new", "system_type": "paper_trading", "confidence_score": 0.9,
            "market_regime": "trending_up", "volatility_regime": "low", "take_profit_pct": 0.05, "stop_loss_pct": 0.01}  # fmt: skip
    advice = client.post("/api/v1/recommendation/", body, format="json").json()
    # Its priors promise a big edge, which sized it at the 5 % maximum before; nothing backs them yet.
    assert advice["should_take_trade"] is True and advice["sample_size"] == 0
    assert advice["recommended_position_size"] == settings.LEARNING_MIN_POSITION_SIZE < settings.LEARNING_MAX_POSITION_SIZE
    assert "the conservative default, as brand_new has no history yet" in advice["reasoning"]
    # Once it has history, Kelly sizes it.
    store_trade_outcomes(outcomes=TradeOutcomeFactory.build_batch(30, strategy_type="brand_new", system_type="paper_trading", move_pct=Decimal("0.03"), side="long"))
    seen = client.post("/api/v1/recommendation/", body, format="json").json()
    assert "conservative default" not in seen["reasoning"] and seen["recommended_position_size"] > settings.LEARNING_MIN_POSITION_SIZE


@pytest.mark.parametrize("field", ["confidence_score", "take_profit_pct"])
def test_a_recommendation_refuses_numbers_sent_as_strings(client, field):
    body = {"strategy_type": "trend_following", "system_type": "paper_trading", "confidence_score": 0.6,
            "market_regime": "ranging", "volatility_regime": "low", "take_profit_pct": 0.02, "stop_loss_pct": 0.01}  # fmt: skip
    response = client.post("/api/v1/recommendation/", {**body, field: "0.5"}, format="json")
    assert response.status_code == 400
    assert response.json()["extra"]["fields"] == {field: ["Must be a number, not a string."]}


@pytest.mark.parametrize(("features", "name"), [({"rsi_14": 1e308}, "rsi_14"), ({"side": 7.0}, "side"), ({"atr_pct": "42"}, "atr_pct")])
def test_an_outcome_with_an_impossible_feature_is_a_400_naming_it(client, features, name):
    response = client.post("/api/v1/trade-outcomes/", outcome_json(features=features), format="json")
    assert response.status_code == 400 and list(response.json()["extra"]["fields"]["features"]) == [name]
    assert not TrainingRecord.objects.exists()


def test_insights_and_summary(client):
    store_trade_outcomes(outcomes=TradeOutcomeFactory.build_batch(10, strategy_type="trend_following", system_type="paper_trading"))
    insights = client.get("/api/v1/strategies/trend_following/insights/", {"system_type": "paper_trading"})
    assert insights.status_code == 200 and insights.json()["overall"]["outcomes"] == 10
    assert client.get("/api/v1/strategies/trend_following/insights/", {"system_type": "x"}).status_code == 400
    summary = client.get("/api/v1/learning/summary/").json()
    assert summary["total_records"] == 10


def test_insights_of_a_strategy_never_seen_are_a_404(client):
    store_trade_outcomes(outcomes=TradeOutcomeFactory.build_batch(3, strategy_type="trend_following"))
    response = client.get("/api/v1/strategies/nonexistent/insights/")
    assert response.status_code == 404
    assert response.json() == {"message": "No outcomes of strategy 'nonexistent' have been learned.", "extra": {}}


def test_recent_performance_and_the_recent_record_are_readable(client):
    store_trade_outcomes(outcomes=TradeOutcomeFactory.build_batch(30, system_type="paper_trading", symbol="BTCUSDT"))
    rows = client.get("/api/v1/learning/recent-performance/", {"system_type": "paper_trading"}).json()["results"]
    assert {row["symbol"] for row in rows} == {"*", "BTCUSDT"}
    assert all(row["window_outcomes"] == 30 and row["total_outcomes"] == 30 for row in rows)
    latest = max(record.exit_time for record in TrainingRecord.objects.all())
    answer = client.get("/api/v1/learning/recent-record/", {"system_type": "paper_trading", "symbol": "BTCUSDT", "at": (latest + timedelta(hours=1)).isoformat()})
    assert answer.status_code == 200 and answer.json()["recent_symbol_count"] == 30
    bad = client.get("/api/v1/learning/recent-record/", {"system_type": "moon", "at": "yesterday"})
    assert bad.status_code == 400
    assert_error_shape(bad, "system_type", "symbol", "at")
    assert APIClient().get("/api/v1/learning/recent-performance/").status_code in (401, 403)


def test_an_outcome_says_whether_its_fills_were_an_exchanges_and_the_list_filters_on_it(client):
    assert client.post("/api/v1/trade-outcomes/", outcome_json(trade_id="paper-1"), format="json").status_code == 201
    real = client.post("/api/v1/trade-outcomes/", {**outcome_json(trade_id="real-1"), "fill_source": "exchange"}, format="json")
    assert real.status_code == 201
    listed = client.get("/api/v1/trade-outcomes/", {"fill_source": "exchange"}).json()["results"]
    assert [(row["trade_id"], row["fill_source"]) for row in listed] == [("real-1", "exchange")]
    bad = client.post("/api/v1/trade-outcomes/", {**outcome_json(trade_id="x"), "fill_source": "dream"}, format="json")
    assert bad.status_code == 400 and "fill_source" in bad.json()["extra"]["fields"]
