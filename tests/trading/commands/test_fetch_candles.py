"""manage.py fetch_candles: stores what the (recorded) exchange has, resumes, and fails cleanly."""
from io import StringIO

import pytest
import requests
from django.core.management import CommandError, call_command

from tests.trading.marketdata.exchange_replay import UNAVAILABLE, RecordedBinanceSession
from tests.trading.marketdata.test_feeds import unreachable_client
from trading.models import Candle

pytestmark = pytest.mark.django_db


@pytest.fixture
def exchange(monkeypatch):
    """Every HTTP request ccxt makes is answered from the recordings."""
    session = RecordedBinanceSession()
    monkeypatch.setattr(requests.Session, "request", lambda self, method, url, *args, **kwargs: session.request(method, url))
    monkeypatch.setattr("trading.services.candles.DEFAULT_BACKOFF_SECONDS", 0.01)
    return session


def run(*args) -> str:
    out = StringIO()
    call_command("fetch_candles", *args, stdout=out)
    return out.getvalue()


def test_fetches_each_symbol_and_a_second_run_stores_nothing_new(exchange):
    output = run("--symbols", "BTC/USDT:USDT,ETH/USDT:USDT", "--timeframe", "1h", "--since", "2023-12-30")
    # Today is long after the recordings, so all 30 recorded candles have closed.
    assert "binanceusdm BTC/USDT:USDT -> BTCUSDT 1h: 30 new" in output
    assert "binanceusdm ETH/USDT:USDT -> ETHUSDT 1h: 30 new" in output
    assert Candle.objects.filter(exchange="binanceusdm").count() == 60
    again = run("--symbols", "BTC/USDT:USDT", "--since", "2023-12-30")
    assert "0 new candles stored" in again


def test_a_lasting_exchange_failure_is_a_clear_error(exchange):
    exchange.kline_failures.extend([UNAVAILABLE] * 10)
    with pytest.raises(CommandError, match="binanceusdm kept failing .*run again to resume"):
        run("--symbols", "BTC/USDT:USDT", "--since", "2023-12-30")


def test_bad_arguments_are_named(exchange):
    with pytest.raises(CommandError, match="--since 'soon' is not a date"):
        run("--symbols", "BTC/USDT:USDT", "--since", "soon")
    with pytest.raises(CommandError, match="exchange: Unknown exchange 'nowhere'"):
        run("--exchange", "nowhere", "--symbols", "BTC/USDT:USDT")


def test_without_network_the_root_cause_is_one_line_at_once(monkeypatch):
    # A real ccxt client whose host cannot resolve, as on a machine without network: no retries
    # (waiting would not bring the network back), and the cause named, not just "NetworkError".
    monkeypatch.setattr("trading.services.candles.exchange_client", lambda exchange: unreachable_client())
    waits = []
    monkeypatch.setattr("trading.services.candles.time.sleep", waits.append)
    with pytest.raises(CommandError) as error:
        run("--symbols", "BTC/USDT:USDT", "--since", "2023-12-30")
    message = str(error.value)
    assert message.startswith("binanceusdm: cannot resolve host fapi.exchange.invalid")
    assert "\n" not in message
    assert waits == []
