"""manage.py import_candles: a summary per file, rejected rows listed, non-zero only when nothing was read."""
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.trading.marketdata.candle_files import BTC_CSV, real_rows, write_csv
from trading.models import Candle

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[3]


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


def test_a_missing_file_is_named_as_missing(tmp_path):
    good = write_csv(tmp_path / "BTCUSDT-1h.csv", real_rows(4))
    output = run(str(good), str(tmp_path / "nope.csv"))
    assert f"{tmp_path / 'nope.csv'}: {tmp_path / 'nope.csv'} does not exist." in output
    assert "infer" not in output


def test_the_default_exchange_is_the_one_replay_reads(settings):
    # Imported with every default, then replayed with every default: the replay finds the candles.
    run(str(BTC_CSV))
    assert set(Candle.objects.values_list("exchange", flat=True)) == {settings.TRADING_EXCHANGE}
    out = StringIO()
    call_command("replay", "--symbols", "BTCUSDT", "--from", "2022-03-01", "--to", "2022-03-03", "--no-learning", "--no-progress", stdout=out)
    assert "Replayed 72 candles" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_each_result_is_printed_once(subprocess_env):
    # As a user sees it: the command's own summary, and no log line repeating it on the console.
    result = subprocess.run(
        [sys.executable, "manage.py", "import_candles", str(BTC_CSV)], cwd=ROOT, env=subprocess_env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    console = result.stdout + result.stderr
    assert console.count("17520 loaded") == 1, console
