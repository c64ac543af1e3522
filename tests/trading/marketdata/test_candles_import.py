"""candles_import: idempotent bulk loads of real candles, rejected rows reported, gaps found."""
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from tests.trading.marketdata.candle_files import BTC_CSV, binance_rows, real_rows, write_csv, write_freqtrade
from trading.models import Candle
from trading.selectors import Gap
from trading.services.candles import candles_import

pytestmark = pytest.mark.django_db


def test_bundled_slice_imports_once_and_twice_changes_nothing():
    first = candles_import(path=BTC_CSV, batch_size=4000)
    assert (first.read, first.loaded, first.already_present, first.rejected, first.gaps) == (17520, 17520, 0, 0, [])
    assert (first.symbol, first.timeframe, first.exchange, first.file_format) == ("BTCUSDT", "1h", "binanceusdm", "csv")
    assert first.first_open_time == datetime(2022, 1, 1, tzinfo=UTC)
    assert first.last_open_time == datetime(2023, 12, 31, 23, tzinfo=UTC)
    second = candles_import(path=BTC_CSV)
    assert (second.read, second.loaded, second.already_present) == (17520, 0, 17520)
    assert Candle.objects.count() == 17520
    candle = Candle.objects.get(symbol="BTCUSDT", open_time=datetime(2022, 1, 1, tzinfo=UTC))
    assert (candle.open, candle.high, candle.low, candle.close, candle.volume) == (
        Decimal("46210.57"), Decimal("46729.73"), Decimal("46210.55"), Decimal("46650.01"), Decimal("8957.465"),
    )  # fmt: skip


def test_broken_rows_gap_duplicate_and_zero_price_are_reported_and_good_rows_kept(tmp_path):
    rows = real_rows(12)
    rows[2] = [rows[2][0], "0", *rows[2][2:]]  # zero price, line 4
    rows[5] = rows[5][:3]  # broken row, line 7
    del rows[8]  # a gap between lines 9 and 10
    rows.append(rows[0])  # duplicate of line 2, now line 13
    report = candles_import(path=write_csv(tmp_path / "BTCUSDT-1h.csv", rows))
    assert report.read == report.loaded == 9
    assert [(rejection.line, rejection.reason.split(" (")[0].split(":")[0]) for rejection in report.rejections] == [
        (4, "prices must be > 0"),
        (7, "wrong columns"),
        (13, "duplicate open_time 1640995200000"),
    ]
    # The gap: the zero-price row, the broken row and the deleted row are all missing.
    hour = lambda n: datetime(2022, 1, 1, n, tzinfo=UTC)  # noqa: E731
    assert report.gaps == [Gap(hour(2), hour(2), 1), Gap(hour(5), hour(5), 1), Gap(hour(8), hour(8), 1)]
    assert Candle.objects.count() == 9


def test_a_file_that_cannot_be_read_writes_nothing(tmp_path):
    path = write_csv(tmp_path / "BTCUSDT-1h.csv", real_rows(5), header="a,b,c,d,e,f")
    report = candles_import(path=path)
    assert (report.read, report.loaded, report.rejected) == (0, 0, 1)
    assert report.rejections[0].fatal
    assert Candle.objects.count() == 0


def test_rows_too_large_for_the_columns_are_rejected_not_a_database_error(tmp_path):
    rows = real_rows(3)
    rows[1] = [rows[1][0], "1", "1e20", "1", "1", "1"]
    report = candles_import(path=write_csv(tmp_path / "BTCUSDT-1h.csv", rows))
    assert report.loaded == 2
    assert report.rejections[0].line == 3
    assert "does not fit the price column" in report.rejections[0].reason


def test_binance_and_freqtrade_files_give_the_same_candles(tmp_path):
    rows = real_rows(48, skip=100)
    candles_import(path=write_csv(tmp_path / "BTCUSDT-1h-2022-01.csv", binance_rows(rows), header=None), exchange="binance")
    candles_import(path=write_freqtrade(tmp_path / "BTC_USDT-1h.json", rows), exchange="freqtrade")
    stored = {
        exchange: list(Candle.objects.filter(exchange=exchange).order_by("open_time").values_list("open_time", "open", "high", "low", "close", "volume"))
        for exchange in ("binance", "freqtrade")
    }
    assert len(stored["binance"]) == 48
    assert stored["binance"] == stored["freqtrade"]


def test_symbol_and_timeframe_given_override_the_file_name(tmp_path):
    report = candles_import(path=write_csv(tmp_path / "eth.csv", real_rows(3, symbol="ETHUSDT")), symbol="ETH/USDT", timeframe="1h")
    assert (report.symbol, report.loaded) == ("ETHUSDT", 3)


def test_unusable_arguments_are_named(tmp_path):
    with pytest.raises(ValidationError) as error:
        candles_import(path=write_csv(tmp_path / "candles.csv", real_rows(2)), file_format="xlsx")
    assert set(error.value.message_dict) == {"symbol", "timeframe", "file_format"}
    with pytest.raises(ValidationError) as error:
        candles_import(path=write_csv(tmp_path / "BTCUSDT-1M.csv", real_rows(2)))
    assert "is not supported" in error.value.message_dict["timeframe"][0]


def test_a_missing_file_is_the_only_problem_named(tmp_path):
    with pytest.raises(ValidationError) as error:
        candles_import(path=tmp_path / "nope.csv")
    assert error.value.message_dict == {"path": [f"{tmp_path / 'nope.csv'} does not exist."]}
    with pytest.raises(ValidationError) as error:
        candles_import(path=tmp_path)
    assert error.value.message_dict == {"path": [f"{tmp_path} is not a file."]}


def test_progress_is_reported_per_batch(tmp_path):
    seen = []
    candles_import(path=write_csv(tmp_path / "BTCUSDT-1h.csv", real_rows(25)), batch_size=10, progress=seen.append)
    assert seen == [10, 10, 5]
