"""Candle import throughput on PostgreSQL and SQLite, and feature-building throughput, in candles/s."""
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import ROOT, SHARED_CANDLES, postgres_url, setup_django, sqlite_url  # noqa: E402

BUNDLED_CANDLES = ROOT / "data" / "candles"
SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT")
SCRATCH = "tradelearn_bench_candles"


def candle_files() -> list[Path]:
    directory = SHARED_CANDLES if (SHARED_CANDLES / "BTCUSDT-1h.csv").is_file() else BUNDLED_CANDLES
    return [path for symbol in SYMBOLS if (path := directory / f"{symbol}-1h.csv").is_file()]


def bench_import(backend: str) -> None:
    """One backend per process: Django's settings are read once."""
    setup_django(postgres_url(SCRATCH) if backend == "postgresql" else sqlite_url(SCRATCH))
    from trading.services.candles import candles_import

    files = candle_files()
    started = time.perf_counter()
    loaded = sum(candles_import(path=path).loaded for path in files)
    first = time.perf_counter() - started
    started = time.perf_counter()
    again = sum(candles_import(path=path).already_present for path in files)
    second = time.perf_counter() - started
    where = f"{len(files)} files from {files[0].parent}"
    print(f"import_candles, {backend:<10} new candles:     {loaded / first:>9,.0f} candles/s ({loaded:,} in {first:.2f} s; {where})")
    print(f"import_candles, {backend:<10} already present: {again / second:>9,.0f} candles/s ({again:,} in {second:.2f} s)")


def bench_features() -> None:
    from trading.features.builder import build_features
    from trading.selectors import read_candles_dir

    directory = SHARED_CANDLES if (SHARED_CANDLES / "BTCUSDT-1h.csv").is_file() else BUNDLED_CANDLES
    frame = read_candles_dir(directory, "BTCUSDT", "1h")
    frame = frame.loc[(frame.index >= "2020-01-01") & (frame.index < "2024-01-01")]
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        build_features(frame)
        runs.append(time.perf_counter() - started)
    best = min(runs)
    span = f"{frame.index[0]:%Y-%m-%d} to {frame.index[-1]:%Y-%m-%d}"
    print(f"build_features, BTCUSDT 1h {span}: {len(frame) / best:>9,.0f} candles/s ({len(frame):,} candles in {best * 1000:.0f} ms, best of 5)")


def drop_scratch() -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-q", "-c", f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)"], check=False)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{ROOT / 'var' / SCRATCH}.sqlite3{suffix}").unlink(missing_ok=True)


def main() -> int:
    os.environ.setdefault("PGOPTIONS", "-c client_min_messages=warning")  # no "does not exist, skipping" notices
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # one summary line per measurement, not per file
    if len(sys.argv) == 2:
        bench_import(sys.argv[1])
        return 0
    try:
        for backend in ("postgresql", "sqlite"):
            subprocess.run([sys.executable, __file__, backend], check=True, cwd=ROOT)
    finally:
        drop_scratch()
    setup_django(sqlite_url(SCRATCH))
    try:
        bench_features()
    finally:
        drop_scratch()
    return 0


if __name__ == "__main__":
    sys.exit(main())
