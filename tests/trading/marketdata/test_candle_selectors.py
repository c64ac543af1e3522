"""candles_frame and read_candles_dir: the same float frame from the database or straight from a file."""
from datetime import UTC, datetime

import pandas as pd
import pytest

from tests.trading.marketdata.candle_files import CANDLES_DIR, real_rows, write_csv
from trading.selectors import candles_frame, read_candles_dir
from trading.services.candles import candles_import


@pytest.mark.django_db
def test_database_and_file_frames_are_identical(tmp_path):
    write_csv(tmp_path / "ETHUSDT-1h.csv", real_rows(500, symbol="ETHUSDT"))
    candles_import(path=tmp_path / "ETHUSDT-1h.csv")
    start, end = datetime(2022, 1, 2, tzinfo=UTC), datetime(2022, 1, 5, 23, tzinfo=UTC)
    stored = candles_frame(symbol="ETH/USDT", timeframe="1h", start=start, end=end)
    read = read_candles_dir(tmp_path, "ETHUSDT", "1h", start=start, end=end)
    assert len(stored) == 96  # start and end are both inclusive
    assert stored.index[0] == pd.Timestamp(start) and stored.index[-1] == pd.Timestamp(end)
    assert str(stored.index.dtype) == "datetime64[ns, UTC]" and stored.index.name == "open_time"
    assert list(stored.columns) == ["open", "high", "low", "close", "volume"]
    assert (stored.dtypes == "float64").all()
    pd.testing.assert_frame_equal(stored, read, check_freq=False)
    assert stored.attrs == {"symbol": "ETHUSDT", "timeframe": "1h", "exchange": "binanceusdm"}  # TRADING_EXCHANGE


@pytest.mark.django_db
def test_empty_series_is_an_empty_frame():
    frame = candles_frame(symbol="BTCUSDT", timeframe="1h")
    assert frame.empty and list(frame.columns) == ["open", "high", "low", "close", "volume"]


def test_read_candles_dir_reads_the_bundled_file_sorted():
    frame = read_candles_dir(CANDLES_DIR, "BTCUSDT", "1h")
    assert len(frame) == 17520
    assert frame.index.is_monotonic_increasing
    assert frame.iloc[0].to_dict() == {"open": 46210.57, "high": 46729.73, "low": 46210.55, "close": 46650.01, "volume": 8957.465}


def test_read_candles_dir_skips_bad_rows_and_names_missing_files(tmp_path, caplog):
    rows = real_rows(5)
    rows[1][1] = "0"
    write_csv(tmp_path / "BTCUSDT-1h.csv", rows)
    assert len(read_candles_dir(tmp_path, "BTCUSDT", "1h")) == 4
    assert "BTCUSDT-1h.csv, line 3: prices must be > 0" in caplog.text
    with pytest.raises(FileNotFoundError, match="no candle file for SOLUSDT-1h"):
        read_candles_dir(tmp_path, "SOLUSDT", "1h")
    write_csv(tmp_path / "ETHUSDT-1h.csv", rows, header="x")
    with pytest.raises(ValueError, match="ETHUSDT-1h.csv, line 1: missing header"):
        read_candles_dir(tmp_path, "ETHUSDT", "1h")


def test_a_clean_file_is_read_at_once_and_gives_what_the_row_reader_gives(tmp_path):
    import numpy as np

    from trading.marketdata.readers import read_clean_csv
    from trading.selectors import _read_rows

    path = CANDLES_DIR / "BTCUSDT-1h.csv"
    times, values = read_clean_csv(path, timeframe="1h")
    row_times, row_values = _read_rows(path, "1h")
    assert np.array_equal(times, row_times) and np.array_equal(values, np.asarray(row_values, dtype="float64"))
    # Anything the row reader would reject or name sends the file to it: a bad price, a repeated time, a bad header.
    rows = real_rows(5)
    for broken in ({"row": 1, "column": 2, "value": "1"}, {"row": 2, "column": 0, "value": rows[1][0]}, {"row": 3, "column": 4, "value": "nan"}):
        changed = [list(row) for row in rows]
        changed[broken["row"]][broken["column"]] = broken["value"]
        write_csv(tmp_path / "BTCUSDT-1h.csv", changed)
        assert read_clean_csv(tmp_path / "BTCUSDT-1h.csv", timeframe="1h") is None
    write_csv(tmp_path / "BTCUSDT-1h.csv", rows)
    assert len(read_clean_csv(tmp_path / "BTCUSDT-1h.csv", timeframe="1h")[0]) == 5
    assert read_clean_csv(tmp_path / "BTCUSDT-1h.csv", timeframe="4h") is None  # hourly times are not aligned to 4h
