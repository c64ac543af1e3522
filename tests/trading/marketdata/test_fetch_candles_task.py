"""fetch_candles_task: thin, acks late, retries transient errors with a bound, returns counts."""
from datetime import UTC, datetime

import pytest
import requests

from tests.trading.marketdata.exchange_replay import RecordedBinanceSession
from tradelearn.celery import TASK_OPTIONS
from trading.models import Candle
from trading.services.candles import TRANSIENT_ERRORS
from trading.tasks import fetch_candles_task


def test_task_options():
    # The shared options, retrying the exchange's transient errors besides the database's and broker's.
    assert fetch_candles_task.acks_late is True
    assert set(fetch_candles_task.autoretry_for) == {*TASK_OPTIONS["autoretry_for"], *TRANSIENT_ERRORS}
    assert fetch_candles_task.max_retries == TASK_OPTIONS["max_retries"]
    assert fetch_candles_task.retry_backoff


@pytest.mark.django_db
def test_task_resumes_after_the_last_stored_candle_and_returns_counts(monkeypatch):
    session = RecordedBinanceSession()
    monkeypatch.setattr(requests.Session, "request", lambda self, method, url, *args, **kwargs: session.request(method, url))
    Candle.objects.create(
        exchange="binanceusdm", symbol="BTCUSDT", timeframe="1h", open_time=datetime(2023, 12, 31, 9, tzinfo=UTC),
        open=1, high=1, low=1, close=1, volume=1,
    )  # fmt: skip
    assert fetch_candles_task.delay("binanceusdm", ["BTC/USDT:USDT"], "1h").get() == {"BTCUSDT": 14}
    assert int(session.kline_requests[0]["startTime"]) == int(datetime(2023, 12, 31, 10, tzinfo=UTC).timestamp() * 1000)
