"""Candle files for tests, cut from the bundled real BTC and ETH hourly candles."""
import json
from pathlib import Path

from tests.conftest import BUNDLED_CANDLES

CANDLES_DIR = BUNDLED_CANDLES
BTC_CSV = CANDLES_DIR / "BTCUSDT-1h.csv"
HEADER = "open_time,open,high,low,close,volume"
HOUR_MS = 3_600_000


def real_rows(count: int, *, symbol: str = "BTCUSDT", skip: int = 0) -> list[list[str]]:
    """The first `count` data rows (after `skip`) of the bundled file, as lists of fields."""
    rows = []
    with open(CANDLES_DIR / f"{symbol}-1h.csv") as handle:
        next(handle)
        for index, line in enumerate(handle):
            if index >= skip + count:
                break
            if index >= skip:
                rows.append(line.strip().split(","))
    return rows


def write_csv(path: Path, rows: list[list[str]], *, header: str | None = HEADER, newline_at_end: bool = True) -> Path:
    lines = ([header] if header is not None else []) + [",".join(row) for row in rows]
    path.write_text("\n".join(lines) + ("\n" if newline_at_end else ""))
    return path


def binance_rows(rows: list[list[str]], *, microseconds: bool = False) -> list[list[str]]:
    """The same candles as Binance kline CSV rows (12 columns)."""
    scale = 1000 if microseconds else 1
    klines = []
    for open_time, open_, high, low, close, volume in rows:
        start = int(open_time) * scale
        close_time = start + HOUR_MS * scale - 1
        klines.append([str(start), open_, high, low, close, volume, str(close_time), "1000.0", "42", "1.0", "500.0", "0"])
    return klines


def write_freqtrade(path: Path, rows: list[list[str]]) -> Path:
    path.write_text(json.dumps([[int(row[0]), *(float(value) for value in row[1:])] for row in rows]))
    return path
