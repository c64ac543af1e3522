"""GET /api/v1/candles/: read-only, filtered, time-ordered cursor pages, errors in the API's shape."""
import pytest
from rest_framework.test import APIClient

from tests.trading.marketdata.candle_files import real_rows, write_csv
from trading.services.candles import candles_import

pytestmark = pytest.mark.django_db
URL = "/api/v1/candles/"


@pytest.fixture
def candles(tmp_path):
    candles_import(path=write_csv(tmp_path / "BTCUSDT-1h.csv", real_rows(30)))
    candles_import(path=write_csv(tmp_path / "ETHUSDT-1h.csv", real_rows(30, symbol="ETHUSDT")))


def test_lists_candles_oldest_first_with_a_cursor(candles, token_client):
    client = token_client
    page = client.get(URL, {"symbol": "BTCUSDT", "page_size": 20}).json()
    assert [row["open_time"] for row in page["results"]][:2] == ["2022-01-01T00:00:00Z", "2022-01-01T01:00:00Z"]
    assert page["results"][0] == {
        "exchange": "binanceusdm", "symbol": "BTCUSDT", "timeframe": "1h", "open_time": "2022-01-01T00:00:00Z",
        "open": "46210.5700000000", "high": "46729.7300000000", "low": "46210.5500000000",
        "close": "46650.0100000000", "volume": "8957.4650000000",
    }  # fmt: skip
    rest = client.get(page["next"]).json()
    assert len(rest["results"]) == 10 and rest["next"] is None


def test_filters_by_symbol_timeframe_exchange_and_time_range(candles, token_client):
    client = token_client
    response = client.get(
        URL,
        {"symbol": "ETH/USDT:USDT", "timeframe": "1h", "exchange": "binanceusdm",
         "open_time_after": "2022-01-01T05:00:00Z", "open_time_before": "2022-01-01T09:00:00Z"},
    )  # fmt: skip
    assert response.status_code == 200
    rows = response.json()["results"]
    assert {row["symbol"] for row in rows} == {"ETHUSDT"}
    assert [row["open_time"][11:13] for row in rows] == ["05", "06", "07", "08", "09"]
    assert client.get(URL, {"exchange": "bybit"}).json()["results"] == []


@pytest.mark.parametrize(("params", "field"), [({"open_time_after": "yesterday"}, "open_time"), ({"timeframe": "1M"}, "timeframe")])
def test_a_bad_filter_is_a_400_naming_it(candles, token_client, params, field):
    response = token_client.get(URL, params)
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "Validation error"
    assert list(body["extra"]["fields"]) == [field]


def test_candles_are_read_only(candles):
    assert APIClient().post(URL, {}).status_code in (401, 403, 405)
