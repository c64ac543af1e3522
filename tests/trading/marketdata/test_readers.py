"""The candle file readers: every row check with its line number, three formats, streaming."""
import gzip
import zipfile
from decimal import Decimal

import pytest

from tests.trading.marketdata.candle_files import (
    BTC_CSV,
    HOUR_MS,
    binance_rows,
    real_rows,
    write_csv,
    write_freqtrade,
)
from trading.marketdata.naming import infer_symbol_timeframe, normalize_symbol, timeframe_ms
from trading.marketdata.readers import CandleRow, Rejection, detect_format, read_candles


def split(items):
    rows = [item for item in items if isinstance(item, CandleRow)]
    rejections = [item for item in items if isinstance(item, Rejection)]
    return rows, rejections


def read(path, **kwargs):
    return split(list(read_candles(path, timeframe="1h", **kwargs)))


def test_bundled_file_reads_completely_with_exact_decimals():
    rows, rejections = read(BTC_CSV)
    assert rejections == []
    assert len(rows) == 17520
    first = rows[0]
    assert first == CandleRow(2, 1640995200000, Decimal("46210.57"), Decimal("46729.73"), Decimal("46210.55"), Decimal("46650.01"), Decimal("8957.465"))
    assert all(later.open_time - earlier.open_time == HOUR_MS for earlier, later in zip(rows, rows[1:]))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda row: [row[0], "0", *row[2:]], "prices must be > 0 (open 0)"),
        (lambda row: [row[0], row[1], row[3], row[2], *row[4:]], "high"),  # high and low swapped: high < low
        (lambda row: [str(int(row[0]) + 60_000), *row[1:]], "is not aligned to the timeframe"),
        (lambda row: [*row[:5], "-1"], "volume -1 is negative"),
        (lambda row: [row[0], "nan", *row[2:]], "open not a finite number"),
        (lambda row: [row[0], row[1], "inf", *row[3:]], "high not a finite number"),
        (lambda row: [row[0], "abc", *row[2:]], "not a number: open 'abc'"),
        (lambda row: ["2022-01-01T00:00", *row[1:]], "is not a whole number of milliseconds"),
        (lambda row: [str(int(row[0]) // 1000), *row[1:]], "not a Unix time in milliseconds"),
        (lambda row: row[:4], "wrong columns: expected 6, found 4"),
    ],
    ids=["zero price", "high below low", "misaligned", "negative volume", "nan", "inf", "text", "iso time", "seconds", "columns"],
)
def test_a_bad_row_is_rejected_with_its_line_and_the_good_rows_are_kept(tmp_path, change, expected):
    rows = real_rows(5)
    rows[2] = change(rows[2])
    good, rejections = read(write_csv(tmp_path / "BTCUSDT-1h.csv", rows))
    assert [row.line for row in good] == [2, 3, 5, 6]
    assert len(rejections) == 1
    assert rejections[0].line == 4
    assert expected in rejections[0].reason
    assert str(rejections[0]).startswith("BTCUSDT-1h.csv, line 4: ")


def test_high_below_low_names_both_broken_bounds(tmp_path):
    rows = real_rows(3)
    rows[1] = [rows[1][0], "100", "90", "110", "100", "1"]
    _, [rejection] = read(write_csv(tmp_path / "x.csv", rows))
    assert rejection.reason == "high 90 is below max(open 100, close 100); low 110 is above min(open 100, close 100)"


def test_duplicate_timestamp_is_rejected_even_when_not_adjacent(tmp_path):
    rows = real_rows(6)
    rows.append(rows[1])
    good, [rejection] = read(write_csv(tmp_path / "x.csv", rows))
    assert len(good) == 6
    assert rejection.line == 8
    assert rejection.reason == f"duplicate open_time {rows[1][0]} (already given earlier in this file)"


def test_out_of_order_rows_are_kept_and_duplicates_before_the_first_row_found(tmp_path):
    rows = real_rows(30)
    shuffled = rows[20:] + rows[:20] + [rows[3]]
    good, rejections = read(write_csv(tmp_path / "x.csv", shuffled))
    assert sorted(row.open_time for row in good) == [int(row[0]) for row in rows]
    assert [rejection.line for rejection in rejections] == [32]


def test_gaps_are_not_rejections(tmp_path):
    rows = real_rows(10)
    del rows[4:7]
    good, rejections = read(write_csv(tmp_path / "x.csv", rows))
    assert (len(good), rejections) == (7, [])


def test_non_utf8_bytes_reject_that_line_only(tmp_path):
    path = write_csv(tmp_path / "x.csv", real_rows(4))
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2][:10] + b"\xff\xfe" + lines[2][10:]
    path.write_bytes(b"\n".join(lines))
    good, [rejection] = read(path)
    assert [row.line for row in good] == [2, 4, 5]
    assert (rejection.line, rejection.reason) == (3, "not UTF-8 text (byte 0xff at column 11)")


def test_truncated_last_line_is_reported_as_truncated(tmp_path):
    path = write_csv(tmp_path / "x.csv", real_rows(4), newline_at_end=False)
    path.write_bytes(path.read_bytes()[:-25])
    good, [rejection] = read(path)
    assert len(good) == 3
    assert rejection.line == 5
    assert rejection.reason.startswith("truncated: the file ends in the middle of this row")


def test_a_last_line_without_newline_that_parses_is_kept(tmp_path):
    good, rejections = read(write_csv(tmp_path / "x.csv", real_rows(4), newline_at_end=False))
    assert (len(good), rejections) == (4, [])


def test_wrong_header_stops_the_file_with_one_fatal_message(tmp_path):
    path = write_csv(tmp_path / "x.csv", real_rows(3), header="time,o,h,l,c,v")
    good, [rejection] = read(path)
    assert good == []
    assert rejection.fatal
    assert str(rejection) == "x.csv, line 1: missing header: the first line must be open_time,open,high,low,close,volume"


def test_wrong_columns_in_header_are_named(tmp_path):
    path = write_csv(tmp_path / "x.csv", real_rows(3), header="open_time,open,high,low,close")
    _, [rejection] = read(path)
    assert rejection.fatal
    assert "wrong columns: expected open_time,open,high,low,close,volume, found open_time,open,high,low,close" in rejection.reason


def test_missing_file_is_a_fatal_rejection_not_a_traceback(tmp_path):
    _, [rejection] = read(tmp_path / "missing.csv", file_format="csv")
    assert rejection.fatal
    assert str(rejection) == "missing.csv, file: cannot read the file: No such file or directory"


def test_empty_file_reads_nothing(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("")
    assert read(path) == ([], [])


def test_binance_klines_in_milliseconds_and_microseconds(tmp_path):
    rows = real_rows(5)
    expected = [int(row[0]) for row in rows]
    for microseconds in (False, True):
        path = write_csv(tmp_path / f"BTCUSDT-1h-{microseconds}.csv", binance_rows(rows, microseconds=microseconds), header=None)
        assert detect_format(path) == "binance"
        good, rejections = read(path)
        assert rejections == []
        assert [row.open_time for row in good] == expected
        assert good[0].close == Decimal(rows[0][4])


def test_binance_header_is_skipped_and_zip_archives_are_read(tmp_path):
    header = "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore"
    csv_path = write_csv(tmp_path / "BTCUSDT-1h-2022-01.csv", binance_rows(real_rows(5)), header=header)
    archive = tmp_path / "BTCUSDT-1h-2022-01.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(csv_path, csv_path.name)
    good, rejections = read(archive)
    assert (len(good), rejections) == (5, [])


def test_project_csv_given_as_binance_says_so_once(tmp_path):
    path = write_csv(tmp_path / "x.csv", real_rows(50))
    _, rejections = read(path, file_format="binance")
    assert len(rejections) == 1
    assert rejections[0].fatal
    assert rejections[0].reason == "wrong columns: expected 12, found 6; this is not a Binance kline file"


def test_freqtrade_json_and_gzip(tmp_path):
    rows = real_rows(6)
    path = write_freqtrade(tmp_path / "BTC_USDT-1h.json", rows)
    assert detect_format(path) == "freqtrade"
    good, rejections = read(path)
    assert rejections == []
    assert [row.open_time for row in good] == [int(row[0]) for row in rows]
    assert [row.line for row in good] == [1, 2, 3, 4, 5, 6]
    assert good[0].high == Decimal(rows[0][2])
    packed = tmp_path / "BTC_USDT-1h.json.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    assert read(packed)[0] == good


def test_freqtrade_bad_rows_are_numbered_and_the_rest_kept(tmp_path):
    rows = real_rows(4)
    path = tmp_path / "x.json"
    path.write_text(
        f"[[{rows[0][0]}, 1, 2, 0.5, 1.5, 10], [{rows[1][0]}, 0, 2, 0.5, 1.5, 10], [1, 2], "
        f"[{rows[3][0]}, NaN, 2, 0.5, 1.5, 10], [{rows[0][0]}, 1, 2, 0.5, 1.5, 10]]"
    )
    good, rejections = read(path, file_format="freqtrade")
    assert [row.line for row in good] == [1]
    assert [(rejection.line, rejection.unit) for rejection in rejections] == [(2, "row"), (3, "row"), (4, "row"), (5, "row")]
    assert "prices must be > 0" in rejections[0].reason
    assert "wrong columns" in rejections[1].reason
    assert "open not a finite number" in rejections[2].reason
    assert "duplicate open_time" in rejections[3].reason
    assert str(rejections[0]).startswith("x.json, row 2: ")


def test_freqtrade_truncated_file_keeps_complete_rows(tmp_path):
    path = write_freqtrade(tmp_path / "x.json", real_rows(5))
    path.write_bytes(path.read_bytes()[:-30])
    good, [rejection] = read(path)
    assert len(good) == 4
    assert rejection.fatal
    assert (rejection.line, rejection.reason) == (5, "truncated: the file ends in the middle of this row")


def test_freqtrade_non_utf8_and_not_json(tmp_path):
    path = tmp_path / "x.json"
    path.write_bytes(b'[[1640995200000, 1, 2, 0.5, 1.5, 10], [\xff]]')
    good, [rejection] = read(path)
    assert len(good) == 1
    assert rejection.fatal
    assert rejection.reason == "not UTF-8 text (byte 0xff at byte offset 39)"
    path.write_text("{}")
    _, [rejection] = read(path)
    assert rejection.reason.startswith("not a freqtrade candle file")


def test_freqtrade_reader_streams_rows_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr("trading.marketdata.readers._JSON_CHUNK_CHARS", 97)
    rows = real_rows(200)
    good, rejections = read(write_freqtrade(tmp_path / "x.json", rows))
    assert rejections == []
    assert [row.open_time for row in good] == [int(row[0]) for row in rows]


def test_reading_is_lazy(tmp_path):
    # A reader is a generator: the first row arrives before the rest of the file is parsed.
    items = read_candles(BTC_CSV, timeframe="1h")
    assert next(items).line == 2


def test_naming_conventions():
    assert infer_symbol_timeframe("data/BTCUSDT-1h.csv") == ("BTCUSDT", "1h")
    assert infer_symbol_timeframe("BTCUSDT-15m-2024-01.zip") == ("BTCUSDT", "15m")
    assert infer_symbol_timeframe("BTC_USDT_USDT-4h-futures.json.gz") == ("BTCUSDT", "4h")
    assert infer_symbol_timeframe("candles.csv") == (None, None)
    assert normalize_symbol("BTC/USDT:USDT") == normalize_symbol("btc_usdt") == "BTCUSDT"
    assert timeframe_ms("15m") == 900_000
    with pytest.raises(ValueError, match="timeframe '1M' is not supported"):
        timeframe_ms("1M")
