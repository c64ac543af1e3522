"""Beat's entry point: ticks are queued on stored candles even when the exchange cannot be reached; the clock paces them."""
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from operations.tasks import schedule_engine_ticks_task
from tests.reliability.conftest import candle_slice
from tests.trading.marketdata.test_feeds import unreachable_client
from trading.models import EngineTick, MarketFeedStatus
from trading.services.accounts import accounts_ensure_live
from trading.services.candles import candles_import
from trading.services.feeds import feed_clock_set

pytestmark = pytest.mark.django_db
FIRST = datetime(2022, 1, 1, tzinfo=UTC)


@pytest.fixture
def stored(tmp_path, settings):
    settings.TRADING_MARKETS = ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    for symbol in ("BTCUSDT", "ETHUSDT"):
        candles_import(path=candle_slice(tmp_path, symbol, 1100), exchange="binanceusdm")
    return accounts_ensure_live(starting_balance=Decimal("10000"))


def test_an_unreachable_exchange_does_not_stop_the_ticks(stored, settings, monkeypatch, django_capture_on_commit_callbacks, caplog):
    settings.MARKET_FEED = "exchange"
    monkeypatch.setattr("trading.services.candles.exchange_client", lambda exchange: unreachable_client())
    with django_capture_on_commit_callbacks(execute=True):
        assert schedule_engine_ticks_task() == 4  # two accounts × two symbols
    # Each account ticked the latest stored candle of each symbol.
    last_stored = FIRST + timedelta(hours=1099)
    assert sorted(EngineTick.objects.values_list("symbol", "candle_time")) == [("BTCUSDT", last_stored)] * 2 + [("ETHUSDT", last_stored)] * 2
    status = MarketFeedStatus.objects.get(feed="exchange")
    assert (status.consecutive_failures, status.last_error) == (1, "cannot resolve host fapi.exchange.invalid")
    assert not any(record.exc_info for record in caplog.records)  # one line, no traceback


def test_the_clock_releases_candles_to_the_ticks_at_its_pace(stored, settings, django_capture_on_commit_callbacks):
    settings.MARKET_FEED = "clock"
    settings.MARKET_FEED_CLOCK_SPEED = 360.0  # an hourly candle every 10 s
    start = FIRST + timedelta(hours=1050)
    feed_clock_set(speed=360, start=start, now=timezone.now() - timedelta(seconds=25))
    with django_capture_on_commit_callbacks(execute=True):
        schedule_engine_ticks_task()
    # 25 s at ×360 is 2.5 market hours (a little more by the time it ran): the candle opening an
    # hour after the start has closed, the next one has not; nothing later is ticked.
    latest = EngineTick.objects.order_by("-candle_time").values_list("candle_time", flat=True).first()
    assert latest == start + timedelta(hours=1)


def test_an_account_ticks_only_the_symbols_it_trades(stored, settings, django_capture_on_commit_callbacks):
    from trading.services.accounts import account_set_symbols

    settings.MARKET_FEED = "clock"
    paper, scraping = (account for account, _ in stored)
    account_set_symbols(account_id=paper.pk, symbols=["ETH/USDT:USDT"])
    feed_clock_set(speed=360, start=FIRST + timedelta(hours=1050), now=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert schedule_engine_ticks_task() == 3
    assert sorted(set(EngineTick.objects.filter(account=paper).values_list("symbol", flat=True))) == ["ETHUSDT"]
    assert sorted(set(EngineTick.objects.filter(account=scraping).values_list("symbol", flat=True))) == ["BTCUSDT", "ETHUSDT"]
