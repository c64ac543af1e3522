"""Streaming candle file readers: yield each row parsed and checked, or a rejection saying why."""
import codecs
import gzip
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, NamedTuple

from trading.marketdata.naming import timeframe_ms, timeframe_offset_ms

FORMATS = ("csv", "binance", "freqtrade")
CSV_COLUMNS = ("open_time", "open", "high", "low", "close", "volume")
BINANCE_COLUMNS = 12
# Plausible open times (2000-01-01 to 2100-01-01 in ms): anything else is a unit or parsing mistake.
_EARLIEST_MS = 946_684_800_000
_LATEST_MS = 4_102_444_800_000
# Binance kline files switched from milliseconds to microseconds in 2025; no ms time reaches this.
_MICROSECONDS_FROM = 10**14
_JSON_CHUNK_CHARS = 1 << 20
# A JSON error this close to the end of the buffer may just be a row cut by the chunk boundary.
_JSON_RETRY_MARGIN = 256
_PRICE_NAMES = ("open", "high", "low", "close")
# A candle row is well under 200 bytes. Lines (and freqtrade rows) are read at most this long, so
# a file holding one gigantic line is rejected in bounded memory instead of read whole.
MAX_ROW_BYTES = 1 << 16


class CandleRow(NamedTuple):
    """One good candle: `line` is where it was read, `open_time` is Unix time in ms (UTC)."""

    line: int
    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


@dataclass(frozen=True, slots=True)
class Rejection:
    """A row (or, with `fatal`, the whole rest of the file) that could not be used, and why."""

    source: str
    line: int
    reason: str
    unit: str = "line"
    fatal: bool = False

    def __str__(self) -> str:
        where = f"{self.unit} {self.line}" if self.line else "file"
        return f"{self.source}, {where}: {self.reason}"


def check_candle(
    open_time: int, prices: tuple[Decimal, Decimal, Decimal, Decimal], volume: Decimal, *, step_ms: int, offset_ms: int
) -> list[str]:
    """Every reason a candle is not usable (empty when it is); shared by file imports and exchange fetches."""
    reasons = []
    if not _EARLIEST_MS <= open_time < _LATEST_MS:
        reasons.append(f"open_time {open_time} is not a Unix time in milliseconds between 2000 and 2100")
    elif (open_time - offset_ms) % step_ms:
        reasons.append(f"open_time {open_time} is not aligned to the timeframe ({step_ms // 1000} s candles)")
    values = (*prices, volume)
    not_finite = [name for name, value in zip((*_PRICE_NAMES, "volume"), values, strict=True) if not value.is_finite()]
    if not_finite:
        reasons.append(f"{', '.join(not_finite)} not a finite number")
        return reasons
    open_, high, low, close = prices
    not_positive = [f"{name} {value}" for name, value in zip(_PRICE_NAMES, prices, strict=True) if value <= 0]
    if not_positive:
        reasons.append(f"prices must be > 0 ({', '.join(not_positive)})")
    if volume < 0:
        reasons.append(f"volume {volume} is negative")
    if high < max(open_, close):
        reasons.append(f"high {high} is below max(open {open_}, close {close})")
    if low > min(open_, close):
        reasons.append(f"low {low} is above min(open {open_}, close {close})")
    return reasons


class _SeenSlots:
    """Which candle slots a file has already given, one bit each: duplicates found in bounded memory."""

    def __init__(self, step_ms: int, offset_ms: int):
        self.step_ms, self.offset_ms = step_ms, offset_ms
        self.base = None  # slot number of bit 0; a multiple of 8
        self.bits = bytearray()

    def add(self, open_time: int) -> bool:
        """Mark an aligned open time; False when it was already marked."""
        slot = (open_time - self.offset_ms) // self.step_ms
        if self.base is None:
            self.base = slot - slot % 8
        if slot < self.base:
            extra = (self.base - slot + 7) // 8
            self.bits[:0] = bytes(extra)
            self.base -= extra * 8
        index = slot - self.base
        byte, bit = divmod(index, 8)
        if byte >= len(self.bits):
            self.bits.extend(bytes(byte - len(self.bits) + 1))
        if self.bits[byte] >> bit & 1:
            return False
        self.bits[byte] |= 1 << bit
        return True


class _RowChecker:
    """Applies `check_candle` plus the in-file duplicate check, turning values into rows or rejections."""

    def __init__(self, source: str, timeframe: str, unit: str):
        self.source, self.unit = source, unit
        self.step_ms = timeframe_ms(timeframe)
        self.offset_ms = timeframe_offset_ms(timeframe)
        self.seen = _SeenSlots(self.step_ms, self.offset_ms)

    def reject(self, line: int, reason: str, *, fatal: bool = False) -> Rejection:
        return Rejection(self.source, line, reason, self.unit, fatal)

    def row(self, line: int, open_time: int, texts) -> CandleRow | Rejection:
        try:
            open_, high, low, close, volume = values = [Decimal(text) for text in texts]
        except (InvalidOperation, TypeError, ValueError):
            bad = ", ".join(f"{name} {text!r}" for name, text in zip((*_PRICE_NAMES, "volume"), texts) if not _is_decimal(text))
            return self.reject(line, f"not a number: {bad}")
        try:
            # Fast path for the usual good row: low > 0 and high finite bound every price.
            good = (
                _EARLIEST_MS <= open_time < _LATEST_MS
                and not (open_time - self.offset_ms) % self.step_ms
                and 0 < low <= open_ <= high
                and low <= close <= high
                and high.is_finite()
                and volume >= 0
                and volume.is_finite()
            )
        except InvalidOperation:  # ordering a NaN signals; check_candle names it
            good = False
        if not good:
            reasons = check_candle(open_time, (open_, high, low, close), volume, step_ms=self.step_ms, offset_ms=self.offset_ms)
            return self.reject(line, "; ".join(reasons))
        if not self.seen.add(open_time):
            return self.reject(line, f"duplicate open_time {open_time} (already given earlier in this file)")
        return CandleRow(line, open_time, *values)


def _is_decimal(text) -> bool:
    try:
        Decimal(text)
    except (InvalidOperation, TypeError, ValueError):
        return False
    return True


def _open_binary(path: Path) -> IO[bytes]:
    """The file's bytes, unpacking .gz and single-member .zip archives (as Binance publishes them)."""
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    if path.suffix == ".zip":
        archive = zipfile.ZipFile(path)
        members = [name for name in archive.namelist() if not name.endswith("/")]
        if len(members) != 1:
            archive.close()
            raise OSError(f"expected one file in the zip archive, found {len(members)}")
        return archive.open(members[0])
    return open(path, "rb")


def _open_error(source: str, error: Exception) -> Rejection:
    reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    return Rejection(source, 0, f"cannot read the file: {reason}", fatal=True)


def _bounded_lines(handle: IO[bytes]) -> Iterator[bytes | None]:
    """The file's lines; None for a line longer than MAX_ROW_BYTES, which is skipped in chunks, never held."""
    while line := handle.readline(MAX_ROW_BYTES + 1):
        if len(line) <= MAX_ROW_BYTES or line.endswith(b"\n"):
            yield line
            continue
        while (rest := handle.readline(MAX_ROW_BYTES)) and not rest.endswith(b"\n"):
            pass
        yield None


def _text_lines(handle: IO[bytes], checker: _RowChecker) -> Iterator[tuple[int, list[str], bool] | Rejection]:
    """Non-blank lines split on commas, with whether the line lacks its newline (the file may be cut)."""
    for number, raw in enumerate(_bounded_lines(handle), start=1):
        if raw is None:
            yield checker.reject(number, f"longer than {MAX_ROW_BYTES} bytes: not a candle row")
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            yield checker.reject(number, f"not UTF-8 text (byte 0x{raw[error.start]:02x} at column {error.start + 1})")
            continue
        if number == 1:
            text = text.removeprefix("\ufeff")
        stripped = text.strip()
        if stripped:
            yield number, stripped.split(","), not raw.endswith(b"\n")


def _parse_time(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def read_csv(path: str | Path, *, timeframe: str) -> Iterator[CandleRow | Rejection]:
    """The project's CSV: header `open_time,open,high,low,close,volume`, open_time in Unix ms UTC."""
    yield from _read_lines(Path(path), timeframe=timeframe, binance=False)


def read_binance(path: str | Path, *, timeframe: str) -> Iterator[CandleRow | Rejection]:
    """Binance kline CSVs (12 columns, optional header; open_time in ms, or µs in newer files)."""
    yield from _read_lines(Path(path), timeframe=timeframe, binance=True)


def _read_lines(path: Path, *, timeframe: str, binance: bool) -> Iterator[CandleRow | Rejection]:
    source = path.name
    checker = _RowChecker(source, timeframe, "line")
    columns = BINANCE_COLUMNS if binance else len(CSV_COLUMNS)
    try:
        handle = _open_binary(path)
    except (OSError, zipfile.BadZipFile) as error:
        yield _open_error(source, error)
        return
    with handle:
        try:
            header_allowed, first_data_row = True, True
            for item in _text_lines(handle, checker):
                if isinstance(item, Rejection):
                    yield item
                    continue
                number, fields, last_line_cut = item
                if header_allowed:
                    header_allowed = False
                    is_header = fields[0].strip().lower() == "open_time"
                    if not binance and not is_header:
                        yield checker.reject(number, f"missing header: the first line must be {','.join(CSV_COLUMNS)}", fatal=True)
                        return
                    if not binance and tuple(field.strip().lower() for field in fields) != CSV_COLUMNS:
                        found = ",".join(fields)
                        yield checker.reject(number, f"wrong columns: expected {','.join(CSV_COLUMNS)}, found {found}", fatal=True)
                        return
                    if is_header:
                        continue
                if len(fields) != columns:
                    if last_line_cut:
                        yield checker.reject(number, "truncated: the file ends in the middle of this row")
                        continue
                    reason = f"wrong columns: expected {columns}, found {len(fields)}"
                    if binance and first_data_row:
                        yield checker.reject(number, f"{reason}; this is not a Binance kline file", fatal=True)
                        return
                    yield checker.reject(number, reason)
                    continue
                first_data_row = False
                open_time = _parse_time(fields[0])
                if open_time is None:
                    yield checker.reject(number, f"open_time {fields[0]!r} is not a whole number of milliseconds")
                    continue
                if binance and open_time >= _MICROSECONDS_FROM:
                    open_time, micros = divmod(open_time, 1000)
                    if micros:
                        yield checker.reject(number, f"open_time {fields[0]} µs is not a whole millisecond")
                        continue
                result = checker.row(number, open_time, fields[1:6])
                if isinstance(result, Rejection) and last_line_cut:
                    result = checker.reject(number, f"truncated: the file ends in the middle of this row ({result.reason})")
                yield result
        except (OSError, EOFError, zipfile.BadZipFile) as error:
            yield _open_error(source, error)


def read_freqtrade(path: str | Path, *, timeframe: str) -> Iterator[CandleRow | Rejection]:
    """freqtrade's JSON candles, `[[ms, open, high, low, close, volume], ...]`, optionally gzipped."""
    path = Path(path)
    source = path.name
    checker = _RowChecker(source, timeframe, "row")
    try:
        handle = _open_binary(path)
    except (OSError, zipfile.BadZipFile) as error:
        yield _open_error(source, error)
        return
    with handle:
        try:
            yield from _freqtrade_rows(handle, checker)
        except (OSError, EOFError, zipfile.BadZipFile) as error:
            yield _open_error(source, error)


def _freqtrade_rows(handle: IO[bytes], checker: _RowChecker) -> Iterator[CandleRow | Rejection]:
    decoder = json.JSONDecoder(parse_float=Decimal, parse_constant=Decimal)
    utf8 = codecs.getincrementaldecoder("utf-8")()
    text, position, eof, consumed_bytes = "", 0, False, 0
    broken = None  # why the data ends early (bytes that are not UTF-8), once met

    def more() -> bool:
        nonlocal text, position, eof, consumed_bytes, broken
        if eof:
            return False
        chunk = handle.read(_JSON_CHUNK_CHARS)
        try:
            decoded = utf8.decode(chunk, final=not chunk)
        except UnicodeDecodeError as error:
            # Rows before the bad byte are still read; the data ends there.
            offset = consumed_bytes - (len(error.object) - len(chunk)) + error.start
            broken = f"not UTF-8 text (byte 0x{error.object[error.start]:02x} at byte offset {offset})"
            decoded, chunk = error.object[: error.start].decode("utf-8"), b""
        consumed_bytes += len(chunk)
        eof = not chunk
        text = text[position:] + decoded
        position = 0
        return bool(decoded) or not eof

    def skip_space() -> bool:
        """Move past whitespace; False at the end of the data."""
        nonlocal position
        while True:
            while position < len(text) and text[position] in " \t\r\n":
                position += 1
            if position < len(text):
                return True
            if not more():
                return False

    def ended(row: int, reason: str) -> Rejection:
        return checker.reject(row, broken or reason, fatal=True)

    if not skip_space() or text[position] != "[":
        yield ended(1, "not a freqtrade candle file: expected a JSON array of [ms, o, h, l, c, v] rows")
        return
    position += 1
    row_number, expect_value = 0, True
    while True:
        if not skip_space():
            yield ended(row_number + 1, "truncated: the file ends before the closing ]")
            return
        if text[position] == "]":
            return
        if not expect_value:
            if text[position] != ",":
                yield ended(row_number + 1, f"not valid JSON: expected ',' or ']' but found {text[position]!r}")
                return
            position += 1
            expect_value = True
            continue
        row_number += 1
        while True:
            try:
                value, position = decoder.raw_decode(text, position)
                break
            except json.JSONDecodeError as error:
                if len(text) - position > MAX_ROW_BYTES:
                    yield ended(row_number, f"longer than {MAX_ROW_BYTES} bytes: not a candle row")
                    return
                if len(text) - error.pos <= _JSON_RETRY_MARGIN and more():
                    continue
                cut = error.pos >= len(text) - 1 and eof
                yield ended(row_number, "truncated: the file ends in the middle of this row" if cut else f"not valid JSON ({error.msg})")
                return
            except ValueError as error:  # int() refuses a number of more than 4,300 digits
                yield ended(row_number, f"not a candle row: {error}")
                return
        expect_value = False
        yield _freqtrade_row(checker, row_number, value)


def _freqtrade_row(checker: _RowChecker, number: int, value) -> CandleRow | Rejection:
    if not isinstance(value, list) or len(value) != 6:
        found = f"{len(value)} values" if isinstance(value, list) else type(value).__name__
        return checker.reject(number, f"wrong columns: expected [ms, open, high, low, close, volume], found {found}")
    open_time = value[0]
    if isinstance(open_time, Decimal) and open_time == open_time.to_integral_value():
        open_time = int(open_time)
    if isinstance(open_time, bool) or not isinstance(open_time, int):
        return checker.reject(number, f"open_time {open_time!r} is not a whole number of milliseconds")
    prices = value[1:]
    if any(isinstance(item, bool) or not isinstance(item, (int, Decimal)) for item in prices):
        return checker.reject(number, f"not a number among {prices!r}")
    return checker.row(number, open_time, [str(item) for item in prices])


def detect_format(path: str | Path) -> str:
    """`freqtrade` for .json(.gz), otherwise `binance` or `csv` by the first line's shape."""
    path = Path(path)
    name = path.name.lower().removesuffix(".gz").removesuffix(".zip")
    if name.endswith(".json"):
        return "freqtrade"
    try:
        with _open_binary(path) as handle:
            first = handle.readline(MAX_ROW_BYTES).decode("utf-8", errors="replace")
    except (OSError, EOFError, zipfile.BadZipFile):
        return "csv"  # the reader reports why the file cannot be read
    fields = first.removeprefix("\ufeff").strip().split(",")
    return "binance" if len(fields) == BINANCE_COLUMNS else "csv"


READERS = {"csv": read_csv, "binance": read_binance, "freqtrade": read_freqtrade}


def read_candles(path: str | Path, *, timeframe: str, file_format: str = "auto") -> Iterator[CandleRow | Rejection]:
    """Rows of any supported file; `file_format` is one of FORMATS or "auto" (detected)."""
    if file_format == "auto":
        file_format = detect_format(path)
    if file_format not in READERS:
        raise ValueError(f"unknown candle file format {file_format!r}: use auto, {', '.join(FORMATS)}")
    return READERS[file_format](path, timeframe=timeframe)


def read_clean_csv(path: str | Path, *, timeframe: str):
    """A whole project CSV at once, vectorised: (open times in ms, float64 rows of open, high, low, close, volume).

    None unless every row is good by `check_candle`'s rules and no open time repeats: the caller
    then reads the file with `read_csv`, which says what is wrong with each bad row. About thirty
    times faster than the row-by-row reader on a clean file, which is what replays read. The rules
    are checked on float64 values (pandas parses each decimal to its nearest float, as float(Decimal) does;
    a test holds it to that on the bundled file), not on Decimals: prices that differ
    only beyond float64's seventeen digits compare equal here.
    """
    import numpy as np
    import pandas as pd

    path = Path(path)
    if path.suffix != ".csv":
        return None
    try:
        with open(path, "rb") as handle:
            if handle.readline().strip() != ",".join(CSV_COLUMNS).encode():
                return None
        frame = pd.read_csv(
            path, dtype={"open_time": "int64", **dict.fromkeys(CSV_COLUMNS[1:], "float64")}, engine="c"
        )
    except (OSError, ValueError, pd.errors.ParserError):
        return None
    if list(frame.columns) != list(CSV_COLUMNS) or frame.empty:
        return None
    times = frame["open_time"].to_numpy()
    values = frame[list(CSV_COLUMNS[1:])].to_numpy()
    open_, high, low, close, volume = values.T
    good = (
        (times >= _EARLIEST_MS) & (times < _LATEST_MS)
        & ((times - timeframe_offset_ms(timeframe)) % timeframe_ms(timeframe) == 0)
        & np.isfinite(values).all(axis=1)
        & (low > 0) & (low <= open_) & (open_ <= high) & (low <= close) & (close <= high)
        & (volume >= 0)
    )  # fmt: skip
    if not good.all() or np.unique(times).size != times.size:
        return None
    return times, values
