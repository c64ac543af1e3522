"""manage.py import_candles: a summary per file, rejected rows listed, non-zero only when nothing was read."""
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.trading.marketdata.candle_files import BTC_CSV, real_rows, write_csv
from trading.models import Candle

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("import_candles", *args, stdout=out, stderr=out)
    return out.getvalue()


def test_imports_the_bundled_slice_and_reimporting_changes_nothing():
    first = run(str(BTC_CSV))
    assert "BTCUSDT 1h (csv) from 2022-01-01 00:00 to 2023-12-31 23:00: 17520 loaded, 0 already present, 0 rejected, 0 missing in 0 gaps" in first
    second = run(str(BTC_CSV))
    assert "0 loaded, 17520 already present" in second
    assert Candle.objects.count() == 17520


def test_bad_rows_are_listed_and_good_files_still_load(tmp_path):
    rows = real_rows(8)
    rows[3] = [rows[3][0], "0", *rows[3][2:]]
    bad = write_csv(tmp_path / "BTCUSDT-1h.csv", rows)
    unreadable = write_csv(tmp_path / "ETHUSDT-1h.csv", real_rows(3), header="nope")
    output = run(str(bad), str(unreadable), "--show-rejections", "1")
    assert "7 loaded, 0 already present, 1 rejected, 1 missing in 1 gaps" in output
    assert "rejected BTCUSDT-1h.csv, line 5: prices must be > 0 (open 0)" in output
    assert "gap 2022-01-01 03:00 to 2022-01-01 03:00 (1 missing)" in output
    assert "rejected ETHUSDT-1h.csv, line 1: missing header" in output


def test_exits_non_zero_only_when_nothing_could_be_read(tmp_path):
    unreadable = write_csv(tmp_path / "BTCUSDT-1h.csv", real_rows(3), header="nope")
    with pytest.raises(CommandError, match="no candle could be read"):
        run(str(unreadable), str(tmp_path / "missing-1h.csv"))


def test_symbol_and_timeframe_options_and_unusable_names(tmp_path):
    path = write_csv(tmp_path / "export.csv", real_rows(4))
    with pytest.raises(CommandError):
        run(str(path))
    assert "ETHUSDT 1h (csv)" in run(str(path), "--symbol", "ETHUSDT", "--timeframe", "1h", "--format", "csv")
