"""Symbol and timeframe conventions: normalised symbols, timeframe lengths and file-name inference."""
import re
from pathlib import Path

_TIMEFRAME = re.compile(r"^(\d+)([mhdw])$")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
# Binance opens weekly candles on Mondays; 1970-01-01 (Unix time 0) was a Thursday.
_WEEK_OFFSET_MS = 4 * 86_400_000
_FILE_NAME = re.compile(r"^(?P<symbol>[A-Za-z0-9]+(?:_[A-Za-z0-9]+){0,2})-(?P<timeframe>\d+[mhdwM])(?:-.*)?$")
_COMPRESSION_SUFFIXES = (".gz", ".zip")


def timeframe_ms(timeframe: str) -> int:
    """Length of one candle in milliseconds; raises ValueError for a timeframe we cannot align."""
    match = _TIMEFRAME.match(timeframe or "")
    if match is None or int(match.group(1)) == 0:
        raise ValueError(
            f"timeframe {timeframe!r} is not supported: use a whole number followed by m, h, d or w (e.g. 1h, 15m)"
        )
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def timeframe_offset_ms(timeframe: str) -> int:
    """Where candle boundaries sit relative to Unix time 0 (weekly candles open on Mondays)."""
    return _WEEK_OFFSET_MS if timeframe.endswith("w") else 0


def normalize_symbol(symbol: str) -> str:
    """`BTC/USDT:USDT`, `BTC_USDT_USDT`, `btc-usdt` and `BTCUSDT` are all stored as `BTCUSDT`."""
    text = symbol.strip().upper().split(":")[0]
    parts = re.split(r"[/_\-]", text)
    if "_" in text and len(parts) == 3:
        # freqtrade names futures pairs BASE_QUOTE_SETTLE; the settle currency is not part of the pair.
        parts = parts[:2]
    return "".join(parts)


def infer_symbol_timeframe(path: str | Path) -> tuple[str | None, str | None]:
    """Symbol and timeframe from names like `BTCUSDT-1h.csv`, `BTCUSDT-1h-2024-01.zip`, `BTC_USDT-1h.json`."""
    name = Path(path).name
    for suffix in _COMPRESSION_SUFFIXES:
        name = name.removesuffix(suffix)
    stem = name.rsplit(".", 1)[0] if "." in name else name
    match = _FILE_NAME.match(stem)
    if match is None:
        return None, None
    return normalize_symbol(match.group("symbol")), match.group("timeframe")
