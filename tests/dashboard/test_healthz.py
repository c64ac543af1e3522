"""/healthz: public, says what is stale against its bound (503), reveals nothing private; the dashboard shows the same."""
import socket
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import ccxt
import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from learning.models import LearningLease, OnlineLearningState
from tests.reliability.conftest import candle_slice
from tests.trading.marketdata.test_feeds import unreachable_client
from trading.marketdata.feeds import ExchangeFeed
from trading.models import EngineTick, PaperAccount
from trading.services.accounts import accounts_ensure_live
from trading.services.candles import candles_import
from trading.services.feeds import feed_clock_set, feed_poll

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_fresh_system_is_healthy_and_waiting(client, settings):
    settings.CELERY_BROKER_URL = None  # tasks in-process: the broker is not configured, which is not a fault
    accounts_ensure_live(starting_balance=Decimal("10000"))
    response = client.get("/healthz")
    assert response.status_code == 200 and response["Cache-Control"].startswith("max-age=0")
    body = response.json()
    assert body["healthy"] is True and body["problems"] == []
    assert {check["status"] for check in body["last_tick"].values()} == {"waiting"}
    assert set(body["last_tick"]) == {"live-paper_trading", "live-profit_scraping"}
    assert body["retrain"]["status"] == "waiting"
    # Nothing private: no balances, no trades, no database detail.
    assert "balance" not in response.content.decode() and "vendor" not in body["database"]


def test_stale_ticks_and_a_down_broker_make_it_503_without_error_text(client, settings):
    settings.CELERY_BROKER_URL = f"redis://:secret-password@127.0.0.1:{closed_port()}/0"
    [(account, _), _] = accounts_ensure_live(starting_balance=Decimal("10000"))
    long_ago = timezone.now() - timedelta(hours=3)
    PaperAccount.objects.filter(pk=account.pk).update(created_at=long_ago)
    tick = EngineTick.objects.create(account=account, symbol="BTCUSDT", timeframe="1h", candle_time=datetime(2022, 1, 1, tzinfo=UTC))
    EngineTick.objects.filter(pk=tick.pk).update(completed_at=long_ago)
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["broker"] == {"status": "unavailable"}
    assert "secret-password" not in response.content.decode() and "127.0.0.1" not in response.content.decode()
    assert body["last_tick"]["live-paper_trading"]["status"] == "stale"
    assert body["last_tick"]["live-paper_trading"]["age_seconds"] >= 3 * 3600 - 5
    assert {"broker", "account live-paper_trading"} <= set(body["problems"])
    # The other account was created just now: still within its bound, waiting for a first tick.
    assert body["last_tick"]["live-profit_scraping"]["status"] == "waiting"


def test_learning_checks_follow_their_bounds(client, settings):
    settings.CELERY_BROKER_URL = None
    settings.HEALTH_RETRAIN_MAX_AGE_SECONDS = 3600
    accounts_ensure_live(starting_balance=Decimal("10000"))
    LearningLease.objects.create(name="batch_retrain", last_finished_at=timezone.now() - timedelta(hours=2), last_result={"reason": "too few records", "activated": False, "version": None})
    OnlineLearningState.objects.create(last_update_at=timezone.now() - timedelta(days=3))
    body = client.get("/healthz").json()
    assert body["retrain"]["status"] == "stale" and body["retrain"]["result"]["reason"] == "too few records"
    # An old online update with nothing waiting to be learned is not stale.
    assert body["online_update"]["status"] == "ok" and body["online_update"]["pending_outcomes"] == 0
    assert body["problems"] == ["retrain"]


def test_a_backlog_of_waiting_outcomes_is_counted_up_to_a_limit_and_makes_an_old_update_stale(client, settings, monkeypatch):
    from dashboard import health
    from learning.selectors import pending_learning
    from tests.learning.learnable import store_learnable

    settings.CELERY_BROKER_URL = None
    monkeypatch.setattr(health, "PENDING_COUNT_LIMIT", 3)
    OnlineLearningState.objects.create(last_update_at=timezone.now() - timedelta(days=3))
    store_learnable(5)
    body = client.get("/healthz").json()
    assert body["online_update"]["pending_outcomes"] == 3 and body["online_update"]["pending_outcomes_capped"]
    assert body["online_update"]["status"] == "stale"
    assert pending_learning() == {"records": 5, "examples": 0} and pending_learning(limit=10)["records"] == 5
    client.force_login(get_user_model().objects.create_user("viewer", password="pw"))
    assert "Online update (3+ outcomes waiting)" in client.get("/").content.decode()


def test_clock_candles_age_on_the_clock_and_a_failing_feed_shows_its_cause(client, settings, tmp_path):
    settings.CELERY_BROKER_URL = None
    settings.MARKET_FEED = "clock"
    for symbol in ("BTCUSDT", "ETHUSDT"):
        candles_import(path=candle_slice(tmp_path, symbol, 1100), exchange="binanceusdm")
    started = timezone.now() - timedelta(seconds=30)
    feed_clock_set(speed=60, start=datetime(2022, 2, 12, 10, 30, tzinfo=UTC), now=started)
    body = client.get("/healthz").json()
    btc = body["last_candle"]["BTCUSDT"]
    # 30 s at ×60 is 30 market minutes: market time 11:00, so the 10:00 candle closed just now.
    assert btc["open_time"].startswith("2022-02-12T10:00")
    assert btc["status"] == "ok" and btc["age_seconds"] <= 5
    assert body["market_data"]["feed"] == "clock" and body["market_data"]["clock_speed"] == 60

    settings.MARKET_FEED = "exchange"
    feed_poll(feed=ExchangeFeed(exchange="binanceusdm", markets=["BTC/USDT:USDT"], timeframe="1h", client=unreachable_client()))
    body = client.get("/healthz").json()
    assert body["market_data"]["status"] == "failing"
    assert body["market_data"]["last_error"] == "cannot resolve host fapi.exchange.invalid"

    user = get_user_model().objects.create_user(username="viewer", password="pw-for-test")
    client.force_login(user)
    page = client.get("/").content.decode()
    assert 'id="health"' in page
    assert "last fetch failed" in page and "cannot resolve host fapi.exchange.invalid; retrying" in page
