"""Hostile candle files: a 1 GB line, millions of rows, garbage mixed in, and a failure mid-file.

"Nothing half-imported" means, precisely: an import stores its rows in batches of `batch_size`,
each batch one transaction. A failure while storing batch k (the database going away) leaves
batches 1..k-1 stored whole and none of batch k; a fatal read error (a cut archive) stores every
good row read before it and reports where the file broke. Importing the file again stores
exactly the rows that are missing, because a candle already stored is never written twice.
"""
import gzip
import json
import subprocess
import sys
from datetime import UTC, datetime

import psycopg
import pytest
from django.db import connection

from tests.reliability.conftest import ROOT
from trading.models import Candle
from trading.services.candles import candles_import

pytestmark = pytest.mark.slow

HOUR_MS = 3_600_000
MINUTE_MS = 60_000
START_MS = int(datetime(2022, 1, 1, tzinfo=UTC).timestamp() * 1000)
GIB = 1 << 30
# Growth of the peak RSS a streaming import may show, whatever the file's size.
RSS_BOUND_MB = 150


def candle_line(open_time_ms: int, price: int = 100) -> str:
    return f"{open_time_ms},{price},{price + 2},{price - 1},{price + 1},12.5\n"


def write_rows(handle, count: int, *, start_ms: int = START_MS, step_ms: int = HOUR_MS) -> None:
    # Joined in blocks: one write per row makes generating millions of rows the slow part.
    for block in range(0, count, 10_000):
        handle.write("".join(candle_line(start_ms + index * step_ms) for index in range(block, min(count, block + 10_000))))


def import_in_child(env: dict, path, **arguments) -> dict:
    """Import in a fresh process and report its peak RSS growth, so this process's memory does not blur it."""
    code = f"""
import json, resource
from trading.services.candles import candles_import
from trading.models import Candle
Candle.objects.exists()  # connect and warm up before the baseline
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
report = candles_import(path={str(path)!r}, exchange="fuzz", **{arguments!r})
growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps({{"growth_mb": growth_mb, "read": report.read, "loaded": report.loaded, "rejected": report.rejected,
                   "reasons": [str(item) for item in report.rejections[:5]]}}))
"""
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT,
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.django_db(transaction=True)
def test_a_one_gigabyte_line_is_rejected_in_bounded_memory_and_the_rows_around_it_are_kept(tmp_path, subprocess_env):
    path = tmp_path / "BTCUSDT-1h.csv"
    with open(path, "w") as handle:
        handle.write("open_time,open,high,low,close,volume\n")
        write_rows(handle, 100)
        block = "9" * (1 << 24)
        for _ in range(GIB // len(block)):  # written in 16 MB pieces: never held whole, here either
            handle.write(block)
        handle.write("\n")
        write_rows(handle, 100, start_ms=START_MS + 100 * HOUR_MS)
    report = import_in_child(subprocess_env, path)
    assert report["growth_mb"] < RSS_BOUND_MB, report
    assert report["read"] == report["loaded"] == 200 and report["rejected"] == 1
    assert "line 102" in report["reasons"][0] and "longer than" in report["reasons"][0]


@pytest.mark.django_db(transaction=True)
def test_a_one_gigabyte_first_line_stops_the_file_in_bounded_memory(tmp_path, subprocess_env):
    path = tmp_path / "BTCUSDT-1h.csv"
    with open(path, "w") as handle:
        block = "x" * (1 << 24)
        for _ in range(GIB // len(block)):
            handle.write(block)
        handle.write("\n")
        write_rows(handle, 10)
    report = import_in_child(subprocess_env, path)
    assert report["growth_mb"] < RSS_BOUND_MB, report
    assert report["loaded"] == 0 and report["rejected"] >= 1 and "line 1" in report["reasons"][0]


@pytest.mark.django_db(transaction=True)
def test_a_gigabyte_freqtrade_row_is_rejected_in_bounded_memory(tmp_path, subprocess_env):
    path = tmp_path / "BTCUSDT-1h.json"
    with open(path, "w") as handle:
        handle.write(f"[[{START_MS}, 100, 102, 99, 101, 12.5],\n[{START_MS + HOUR_MS}, 1")
        block = "0" * (1 << 24)
        for _ in range(GIB // len(block)):
            handle.write(block)
        handle.write(", 102, 99, 101, 12.5]]")
    report = import_in_child(subprocess_env, path)
    assert report["growth_mb"] < RSS_BOUND_MB, report
    assert report["loaded"] == 1 and report["rejected"] == 1 and "row 2" in report["reasons"][0]


@pytest.mark.django_db(transaction=True)
def test_millions_of_rows_stream_through_in_bounded_memory(tmp_path, subprocess_env):
    rows = 2_000_000
    path = tmp_path / "BTCUSDT-1m.csv"
    with open(path, "w") as handle:
        handle.write("open_time,open,high,low,close,volume\n")
        write_rows(handle, rows, step_ms=MINUTE_MS)
    report = import_in_child(subprocess_env, path)
    assert report["read"] == report["loaded"] == rows and report["rejected"] == 0
    assert report["growth_mb"] < RSS_BOUND_MB, report
    assert Candle.objects.filter(exchange="fuzz", symbol="BTCUSDT", timeframe="1m").count() == rows


@pytest.mark.django_db(transaction=True)
def test_garbage_lines_are_reported_one_by_one_and_every_good_row_is_stored(tmp_path):
    path = tmp_path / "BTCUSDT-1h.csv"
    with open(path, "wb") as handle:
        handle.write(b"open_time,open,high,low,close,volume\n")
        handle.write(candle_line(START_MS).encode())
        handle.write(b"\xff\xfe not utf-8 at all\n")  # line 3
        handle.write(b"1640998800000,100,102\n")  # line 4: wrong columns
        handle.write(candle_line(START_MS + 2 * HOUR_MS).encode())
        handle.write(candle_line(START_MS + 3 * HOUR_MS).encode()[:20])  # line 6: the file ends mid-row
    report = candles_import(path=path, exchange="fuzz")
    reasons = [str(rejection) for rejection in report.rejections]
    assert report.loaded == 2 and report.rejected == 3, reasons
    assert "line 3: not UTF-8" in reasons[0] and "line 4: wrong columns" in reasons[1] and "line 6: truncated" in reasons[2]


@pytest.mark.django_db(transaction=True)
def test_the_database_going_away_mid_file_keeps_whole_batches_and_a_rerun_completes_it(tmp_path):
    path = tmp_path / "BTCUSDT-1h.csv"
    with open(path, "w") as handle:
        handle.write("open_time,open,high,low,close,volume\n")
        write_rows(handle, 25_000)
    backend_pid = connection.cursor().connection.info.backend_pid
    settings = connection.settings_dict

    def kill_the_connection_after_the_first_batch(rows: int) -> None:
        with psycopg.connect(host=settings["HOST"], port=settings["PORT"], user=settings["USER"], dbname=settings["NAME"], autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [backend_pid])

    with pytest.raises(Exception) as error:
        candles_import(path=path, exchange="fuzz", batch_size=10_000, progress=kill_the_connection_after_the_first_batch)
    assert "terminat" in str(error.value).lower() or "closed" in str(error.value).lower()
    connection.close()
    stored = Candle.objects.filter(exchange="fuzz").order_by("open_time")
    assert stored.count() == 10_000  # the first batch whole, none of the second
    assert stored.last().open_time == datetime.fromtimestamp((START_MS + 9_999 * HOUR_MS) / 1000, UTC)

    report = candles_import(path=path, exchange="fuzz", batch_size=10_000)
    assert (report.loaded, report.already_present) == (15_000, 10_000)
    assert Candle.objects.filter(exchange="fuzz").count() == 25_000


@pytest.mark.django_db(transaction=True)
def test_a_cut_archive_stores_the_rows_before_the_cut_and_says_where(tmp_path):
    whole = tmp_path / "whole.csv"
    with open(whole, "w") as handle:
        handle.write("open_time,open,high,low,close,volume\n")
        write_rows(handle, 30_000)
    packed = gzip.compress(whole.read_bytes())
    path = tmp_path / "BTCUSDT-1h.csv.gz"
    path.write_bytes(packed[: len(packed) // 2])
    report = candles_import(path=path, exchange="fuzz", batch_size=5_000)
    assert 0 < report.loaded < 30_000 and report.loaded == report.read
    assert report.rejections[-1].fatal and "cannot read the file" in report.rejections[-1].reason
    assert Candle.objects.filter(exchange="fuzz").count() == report.loaded
