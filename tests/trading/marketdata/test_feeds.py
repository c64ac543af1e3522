"""Live feeds: the clock over stored candles, and exchange polls that fail with their root cause, back off and recover."""
import logging
import socket
from datetime import UTC, datetime, timedelta

import ccxt
import pytest

from tests.trading.marketdata.exchange_replay import RecordedBinanceSession
from trading.marketdata.feeds import ExchangeFeed, describe_failure
from trading.models import Candle, MarketFeedStatus
from trading.services.candles import candles_import
from trading.services.feeds import feed_clock_set, feed_poll, market_feed

pytestmark = pytest.mark.django_db

RECORDED_AT = datetime(2023, 12, 31, 23, 25, tzinfo=UTC)
WALL = datetime(2023, 12, 31, 20, tzinfo=UTC)  # the recordings (RECORDED_AT) come 3 h 25 min later


def unreachable_client() -> ccxt.Exchange:
    """A real ccxt client whose API host cannot resolve (.invalid never does, RFC 6761)."""
    client = ccxt.binanceusdm({"enableRateLimit": False})
    client.urls["api"] = {name: "https://fapi.exchange.invalid/fapi/v1" for name in client.urls["api"]}
    return client


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # released on close: nothing listens there


def test_a_name_resolution_failure_is_named_by_its_root_cause():
    with pytest.raises(ccxt.NetworkError) as caught:
        unreachable_client().fetch_ohlcv("BTC/USDT:USDT", "1h")
    assert describe_failure(caught.value) == "cannot resolve host fapi.exchange.invalid"


def test_a_refused_connection_is_named_by_its_root_cause():
    client = ccxt.binanceusdm({"enableRateLimit": False})
    client.urls["api"] = {name: f"http://127.0.0.1:{closed_port()}/fapi/v1" for name in client.urls["api"]}
    with pytest.raises(ccxt.NetworkError) as caught:
        client.fetch_ohlcv("BTC/USDT:USDT", "1h")
    assert describe_failure(caught.value) == "connection refused by 127.0.0.1"


def test_failures_are_logged_once_per_streak_back_off_and_recover(settings, caplog):
    settings.MARKET_FEED_BACKOFF_SECONDS = 60
    settings.MARKET_FEED_BACKOFF_MAX_SECONDS = 150
    feed = ExchangeFeed(exchange="binanceusdm", markets=["BTC/USDT:USDT"], timeframe="1h", client=unreachable_client())
    caplog.set_level(logging.WARNING, logger="trading.services.feeds")

    first = feed_poll(feed=feed, now=WALL)
    assert (first.polled, first.ok, first.error) == (True, False, "cannot resolve host fapi.exchange.invalid")
    backing_off = feed_poll(feed=feed, now=WALL + timedelta(seconds=30))
    assert (backing_off.polled, backing_off.ok) == (False, False)  # within the 60 s backoff: not even tried
    feed_poll(feed=feed, now=WALL + timedelta(seconds=61))
    third = feed_poll(feed=feed, now=WALL + timedelta(seconds=61 + 121))
    assert third.polled and not third.ok
    status = MarketFeedStatus.objects.get(feed="exchange")
    assert (status.consecutive_failures, status.failing_since) == (3, WALL)
    # 60, 120, then capped at 150 seconds
    assert status.retry_after == WALL + timedelta(seconds=61 + 121 + 150)
    failures = [record for record in caplog.records if "fetch failed" in record.getMessage()]
    assert len(failures) == 1 and "\n" not in failures[0].getMessage() and not failures[0].exc_info
    assert "cannot resolve host fapi.exchange.invalid" in failures[0].getMessage()

    caplog.clear()
    recovered = ExchangeFeed(
        exchange="binanceusdm", markets=["BTC/USDT:USDT"], timeframe="1h",
        client=ccxt.binanceusdm({"enableRateLimit": False, "session": RecordedBinanceSession()}),
    )  # fmt: skip
    # Past the backoff, the fetch succeeds and the streak ends.
    result = feed_poll(feed=recovered, now=RECORDED_AT)
    assert result.ok
    status.refresh_from_db()
    assert (status.consecutive_failures, status.failing_since, status.retry_after) == (0, None, None)
    assert status.last_error == "cannot resolve host fapi.exchange.invalid"  # kept for the dashboard, with its time
    assert Candle.objects.filter(symbol="BTCUSDT").exists()
    assert any("fetching again after 3 failed attempts" in record.getMessage() for record in caplog.records)


def import_bundled(tmp_path, hours: int) -> None:
    from tests.reliability.conftest import candle_slice

    for symbol in ("BTCUSDT", "ETHUSDT"):
        candles_import(path=candle_slice(tmp_path, symbol, hours), exchange="binanceusdm")


def test_the_clock_releases_stored_candles_at_its_speed(tmp_path, settings):
    settings.MARKET_FEED = "clock"
    settings.MARKET_FEED_CLOCK_SPEED = 3600.0  # an hourly candle closes every wall second
    import_bundled(tmp_path, 1100)
    first = Candle.objects.filter(symbol="BTCUSDT").order_by("open_time").first().open_time

    feed = market_feed(now=WALL)
    # By default the clock starts once a tick has its full history (1000 candles) behind it.
    assert feed.origin == first + timedelta(hours=1001)
    assert feed.closed_until(now=WALL) == first + timedelta(hours=1000)
    assert feed.closed_until(now=WALL + timedelta(seconds=10)) == first + timedelta(hours=1010)
    assert feed_poll(now=WALL + timedelta(seconds=10)).closed_until == first + timedelta(hours=1010)

    # A restart finds the clock where it was; a new speed re-anchors it at the current market time.
    assert market_feed(now=WALL + timedelta(seconds=20)).closed_until(now=WALL + timedelta(seconds=20)) == first + timedelta(hours=1020)
    settings.MARKET_FEED_CLOCK_SPEED = 60.0
    slower = market_feed(now=WALL + timedelta(seconds=20))
    assert slower.closed_until(now=WALL + timedelta(seconds=20 + 120)) == first + timedelta(hours=1022)


def test_the_clock_set_by_hand_starts_where_asked(tmp_path, settings):
    settings.MARKET_FEED_CLOCK_SPEED = 60.0
    import_bundled(tmp_path, 400)
    start = datetime(2022, 1, 10, tzinfo=UTC)
    feed_clock_set(speed=120, start=start, now=WALL)
    status = MarketFeedStatus.objects.get(feed="clock")
    assert (status.clock_origin, status.clock_speed) == (start, 120.0)


def test_a_clock_with_no_candles_reports_it_and_does_not_raise(settings):
    settings.MARKET_FEED = "clock"
    result = feed_poll(now=WALL)
    assert not result.ok
    assert "no stored 1h candles of BTCUSDT, ETHUSDT on binanceusdm" in result.error
    assert MarketFeedStatus.objects.get(feed="clock").consecutive_failures == 1


def test_the_feed_clock_command_sets_speed_and_start(tmp_path, settings):
    from io import StringIO

    from django.core.management import CommandError, call_command

    import_bundled(tmp_path, 400)
    out = StringIO()
    call_command("feed_clock", "--speed", "60", "--start", "2022-01-10", stdout=out)
    assert "Clock at market time 2022-01-10 00:00 UTC, ×60" in out.getvalue()
    status = MarketFeedStatus.objects.get(feed="clock")
    assert (status.clock_origin, status.clock_speed) == (datetime(2022, 1, 10, tzinfo=UTC), 60.0)
    with pytest.raises(CommandError, match="--start 'soon' is not an ISO 8601"):
        call_command("feed_clock", "--start", "soon")
