"""candles_fetch against recorded Binance USDⓈ-M responses: resume, closed candles only, retries."""
from datetime import UTC, datetime

import ccxt
import pytest
import requests

from tests.trading.marketdata.exchange_replay import RATE_LIMITED, UNAVAILABLE, RecordedBinanceSession
from trading.models import Candle
from trading.services.candles import candles_fetch

pytestmark = pytest.mark.django_db

# The recordings were taken 25 minutes into the last hour of 2023: that candle is still forming.
RECORDED_AT = datetime(2023, 12, 31, 23, 25, tzinfo=UTC)
FIRST_RECORDED = datetime(2023, 12, 30, 18, tzinfo=UTC)
LAST_CLOSED = datetime(2023, 12, 31, 22, tzinfo=UTC)


def client(session: RecordedBinanceSession) -> ccxt.Exchange:
    return ccxt.binanceusdm({"enableRateLimit": True, "session": session})


def fetch(session, **kwargs):
    sleeps = []
    arguments = {
        "exchange": "binanceusdm", "symbols": ["BTC/USDT:USDT"], "timeframe": "1h", "since": FIRST_RECORDED,
        "client": client(session), "page_limit": 8, "now": RECORDED_AT, "sleep": sleeps.append,
    }  # fmt: skip
    return candles_fetch(**{**arguments, **kwargs}), sleeps


def stored_times(symbol="BTCUSDT"):
    return list(Candle.objects.filter(exchange="binanceusdm", symbol=symbol).order_by("open_time").values_list("open_time", flat=True))


def test_paginates_stores_closed_candles_and_drops_the_forming_one():
    session = RecordedBinanceSession()
    report, _ = fetch(session)
    [btc] = report.symbols
    assert (btc.symbol, btc.stored, btc.dropped_unclosed, btc.rejected) == ("BTCUSDT", 29, 1, [])
    assert [int(request["startTime"]) for request in session.kline_requests][:2] == [1703959200000, 1703959200000 + 8 * 3_600_000]
    assert len(session.kline_requests) == 4  # 8 + 8 + 8 + 6 (the last page includes the forming candle)
    times = stored_times()
    assert (times[0], times[-1], len(times)) == (FIRST_RECORDED, LAST_CLOSED, 29)
    candle = Candle.objects.get(symbol="BTCUSDT", open_time=LAST_CLOSED)
    assert str(candle.close) == "42294.8000000000"  # the recorded close at 22:00
    assert report.counts() == {"BTCUSDT": 29}


def test_incremental_resume_asks_only_for_what_is_missing():
    fetch(RecordedBinanceSession(), now=datetime(2023, 12, 31, 12, 5, tzinfo=UTC))
    assert stored_times()[-1] == datetime(2023, 12, 31, 11, tzinfo=UTC)
    session = RecordedBinanceSession()
    report, _ = fetch(session)
    assert int(session.kline_requests[0]["startTime"]) == int(datetime(2023, 12, 31, 12, tzinfo=UTC).timestamp() * 1000)
    assert report.symbols[0].stored == 11
    assert len(stored_times()) == 29
    again, _ = fetch(RecordedBinanceSession())
    assert again.stored == 0  # nothing new has closed


def test_transient_errors_are_retried_with_backoff():
    session = RecordedBinanceSession(kline_failures=[None, RATE_LIMITED, UNAVAILABLE, requests.ConnectionError("reset by peer")])
    report, sleeps = fetch(session, backoff_seconds=0.5)
    assert report.symbols[0].retries == 3
    assert sleeps == [0.5, 1.0, 2.0]
    assert len(stored_times()) == 29


def test_a_lasting_failure_raises_and_the_next_run_resumes_without_gaps_or_duplicates():
    session = RecordedBinanceSession(kline_failures=[None, UNAVAILABLE, UNAVAILABLE, UNAVAILABLE])
    with pytest.raises(ccxt.ExchangeNotAvailable):
        fetch(session, max_retries=2)
    assert len(stored_times()) == 8  # the first page was committed before the failure
    report, _ = fetch(RecordedBinanceSession())
    assert report.symbols[0].stored == 21
    times = stored_times()
    assert len(times) == len(set(times)) == 29
    assert all((later - earlier).total_seconds() == 3600 for earlier, later in zip(times, times[1:]))


def test_several_symbols_are_stored_normalised():
    report, _ = fetch(RecordedBinanceSession(), symbols=["BTC/USDT:USDT", "ETH/USDT:USDT"])
    assert report.counts() == {"BTCUSDT": 29, "ETHUSDT": 29}
    assert len(stored_times("ETHUSDT")) == 29


def test_an_unknown_market_is_a_validation_error():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as error:
        fetch(RecordedBinanceSession(), symbols=["DOGE/EUR:EUR"])
    assert "no market 'DOGE/EUR:EUR'" in error.value.message_dict["symbols"][0]
