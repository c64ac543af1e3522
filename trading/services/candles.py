"""Candle storage: bulk file imports and incremental exchange fetches, both idempotent."""
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import ccxt
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from trading.marketdata.feeds import describe_failure, failure_is_lasting
from trading.marketdata.naming import infer_symbol_timeframe, normalize_symbol, timeframe_ms, timeframe_offset_ms
from trading.marketdata.readers import FORMATS, CandleRow, Rejection, check_candle, detect_format, read_candles
from trading.models import Candle, default_exchange
from trading.selectors import Gap, candle_gaps

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 10_000
# A report keeps this many rejections verbatim; beyond it, only the count grows.
MAX_KEPT_REJECTIONS = 1000
# Exchange errors worth retrying: the connection, a timeout, the exchange briefly down or throttling us.
TRANSIENT_ERRORS = (ccxt.NetworkError, ccxt.RateLimitExceeded)
DEFAULT_PAGE_LIMIT = 1000  # ccxt's own cap for Binance klines
DEFAULT_MAX_RETRIES = 5
DEFAULT_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 60.0
# With nothing stored and no start given, a first fetch backfills this many candles (one page).
DEFAULT_BACKFILL_CANDLES = 1000

_FIELD_LIMITS = {name: Candle._meta.get_field(name).max_length for name in ("exchange", "symbol", "timeframe")}
_PRICE_FIELD = Candle._meta.get_field("high")
_VOLUME_FIELD = Candle._meta.get_field("volume")
# DecimalField(max_digits, decimal_places) holds values below 10 ** (max_digits - decimal_places).
_PRICE_LIMIT_EXPONENT = _PRICE_FIELD.max_digits - _PRICE_FIELD.decimal_places
_VOLUME_LIMIT_EXPONENT = _VOLUME_FIELD.max_digits - _VOLUME_FIELD.decimal_places


def _utc(open_time_ms: int) -> datetime:
    return datetime.fromtimestamp(open_time_ms / 1000, tz=UTC)


def _too_large(row: CandleRow) -> str | None:
    # high is the largest price of a checked row, so it alone decides whether prices fit.
    if row.high.adjusted() >= _PRICE_LIMIT_EXPONENT:
        return f"high {row.high} does not fit the price column (below 10^{_PRICE_LIMIT_EXPONENT})"
    if row.volume.adjusted() >= _VOLUME_LIMIT_EXPONENT:
        return f"volume {row.volume} does not fit the volume column (below 10^{_VOLUME_LIMIT_EXPONENT})"
    return None


def _validate_series(errors: dict, *, exchange: str, symbol: str | None, timeframe: str | None) -> None:
    for name, value in (("exchange", exchange), ("symbol", symbol), ("timeframe", timeframe)):
        if value and len(value) > _FIELD_LIMITS[name]:
            errors[name] = f"Must be at most {_FIELD_LIMITS[name]} characters."
    if not exchange:
        errors["exchange"] = "Must be a non-empty exchange name."
    if timeframe and "timeframe" not in errors:
        try:
            timeframe_ms(timeframe)
        except ValueError as error:
            errors["timeframe"] = f"{str(error).capitalize()}."


def _postgres_insert_sql() -> str:
    table = Candle._meta.db_table
    columns = ", ".join(Candle._meta.get_field(name).column for name in ("exchange", "symbol", "timeframe", "open_time", *_OHLCV))
    arrays = ", ".join(
        f"string_to_array(%s, ',')::{kind}[]" for kind in ("bigint", "numeric", "numeric", "numeric", "numeric", "numeric")
    )
    return (
        f"INSERT INTO {table} ({columns}) "
        "SELECT %s, %s, %s, timestamptz 'epoch' + rows.ms * interval '1 millisecond', rows.o, rows.h, rows.l, rows.c, rows.v "
        f"FROM unnest({arrays}) AS rows(ms, o, h, l, c, v) "
        "ON CONFLICT (exchange, symbol, timeframe, open_time) DO NOTHING"
    )


_OHLCV = ("open", "high", "low", "close", "volume")
_POSTGRES_INSERT = _postgres_insert_sql()


@dataclass
class _Series:
    """The identity of one stored candle series and how its rows are written."""

    exchange: str
    symbol: str
    timeframe: str

    def queryset(self):
        return Candle.objects.filter(exchange=self.exchange, symbol=self.symbol, timeframe=self.timeframe)

    def store(self, rows: Sequence[CandleRow]) -> int:
        """Insert the rows not yet stored, in one transaction; returns how many were new."""
        if not rows:
            return 0
        with transaction.atomic():
            if connection.vendor == "postgresql":
                return self._store_postgres(rows)
            return self._store_portable(rows)

    def _store_postgres(self, rows: Sequence[CandleRow]) -> int:
        # bulk_create tops out near 8,000 candles/s here: Django prepares and psycopg quotes every
        # Decimal one by one. Six comma-joined text columns unnested by the server do the same
        # INSERT ... ON CONFLICT DO NOTHING several times faster, and rowcount is the new rows.
        columns = zip(*((row.open_time, row.open, row.high, row.low, row.close, row.volume) for row in rows), strict=True)
        with connection.cursor() as cursor:
            cursor.execute(_POSTGRES_INSERT, [self.exchange, self.symbol, self.timeframe, *(",".join(map(str, column)) for column in columns)])
            return cursor.rowcount

    def _store_portable(self, rows: Sequence[CandleRow]) -> int:
        first = _utc(min(row.open_time for row in rows))
        last = _utc(max(row.open_time for row in rows))
        # Positional arguments take Model.__init__'s fast path (field order: id, exchange, symbol, ...).
        candles = [
            Candle(None, self.exchange, self.symbol, self.timeframe, _utc(row.open_time), row.open, row.high, row.low, row.close, row.volume)
            for row in rows
        ]
        in_range = self.queryset().filter(open_time__range=(first, last))
        before = in_range.count()
        Candle.objects.bulk_create(candles, ignore_conflicts=True, batch_size=DEFAULT_BATCH_SIZE)
        return in_range.count() - before


@dataclass
class ImportReport:
    """What one file import did: rows read, newly stored, already there, rejected, and gaps left."""

    path: str
    exchange: str
    symbol: str
    timeframe: str
    file_format: str
    read: int = 0
    loaded: int = 0
    already_present: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    first_open_time: datetime | None = None
    last_open_time: datetime | None = None
    seconds: float = 0.0

    @property
    def missing_candles(self) -> int:
        return sum(gap.missing for gap in self.gaps)

    @property
    def candles_per_second(self) -> float:
        return self.read / self.seconds if self.seconds else 0.0

    def reject(self, rejection: Rejection) -> None:
        self.rejected += 1
        if len(self.rejections) < MAX_KEPT_REJECTIONS:
            self.rejections.append(rejection)


def candles_import(
    *,
    path: str | Path,
    exchange: str | None = None,
    symbol: str | None = None,
    timeframe: str | None = None,
    file_format: str = "auto",
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Load a candle file: good rows stored in batches (one transaction each), bad rows reported by line.

    Importing the same file again stores nothing new. Symbol and timeframe come from the file
    name (`BTCUSDT-1h.csv`) unless given; the exchange defaults to TRADING_EXCHANGE, the one
    replay and live trading read. `progress` is called with the number of rows handled since its
    previous call. Raises ValidationError naming each argument that cannot be used.
    """
    path = Path(path)
    if not path.is_file():
        raise ValidationError({"path": f"{path} does not exist." if not path.exists() else f"{path} is not a file."})
    exchange = default_exchange() if exchange is None else exchange
    inferred_symbol, inferred_timeframe = infer_symbol_timeframe(path)
    symbol = normalize_symbol(symbol) if symbol else inferred_symbol
    timeframe = timeframe or inferred_timeframe
    errors: dict[str, str] = {}
    if not symbol:
        errors["symbol"] = f"Cannot infer it from the file name {path.name!r} (expected e.g. BTCUSDT-1h.csv); give it explicitly."
    if not timeframe:
        errors["timeframe"] = f"Cannot infer it from the file name {path.name!r} (expected e.g. BTCUSDT-1h.csv); give it explicitly."
    _validate_series(errors, exchange=exchange, symbol=symbol, timeframe=timeframe)
    if file_format not in ("auto", *FORMATS):
        errors["file_format"] = f"Unknown format {file_format!r}; expected auto, {', '.join(FORMATS)}."
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        errors["batch_size"] = "Must be a positive whole number."
    if errors:
        raise ValidationError(errors)

    resolved_format = detect_format(path) if file_format == "auto" else file_format
    series = _Series(exchange, symbol, timeframe)
    report = ImportReport(str(path), exchange, symbol, timeframe, resolved_format)
    started = time.perf_counter()
    first_ms = last_ms = None
    batch: list[CandleRow] = []

    def flush() -> None:
        loaded = series.store(batch)
        report.loaded += loaded
        report.already_present += len(batch) - loaded
        if progress is not None:
            progress(len(batch))
        batch.clear()

    for item in read_candles(path, timeframe=timeframe, file_format=resolved_format):
        if isinstance(item, Rejection):
            report.reject(item)
            continue
        if (reason := _too_large(item)) is not None:
            report.reject(Rejection(path.name, item.line, reason))
            continue
        report.read += 1
        first_ms = item.open_time if first_ms is None else min(first_ms, item.open_time)
        last_ms = item.open_time if last_ms is None else max(last_ms, item.open_time)
        batch.append(item)
        if len(batch) >= batch_size:
            flush()
    flush()

    if first_ms is not None:
        report.first_open_time, report.last_open_time = _utc(first_ms), _utc(last_ms)
        report.gaps = candle_gaps(
            exchange=exchange, symbol=symbol, timeframe=timeframe, start=report.first_open_time, end=report.last_open_time
        )
    report.seconds = time.perf_counter() - started
    logger.info(
        "%s: %d read, %d loaded, %d already present, %d rejected, %d gaps (%.0f candles/s)",
        path.name, report.read, report.loaded, report.already_present, report.rejected, len(report.gaps), report.candles_per_second,
    )  # fmt: skip
    return report


@dataclass
class SymbolFetchReport:
    """One symbol's fetch: candles received, stored, dropped (still forming or bad), requests made."""

    market: str
    symbol: str
    received: int = 0
    stored: int = 0
    already_present: int = 0
    dropped_unclosed: int = 0
    rejected: list[str] = field(default_factory=list)
    requests: int = 0
    retries: int = 0
    first_open_time: datetime | None = None
    last_open_time: datetime | None = None


@dataclass
class FetchReport:
    exchange: str
    timeframe: str
    symbols: list[SymbolFetchReport] = field(default_factory=list)

    @property
    def stored(self) -> int:
        return sum(item.stored for item in self.symbols)

    def counts(self) -> dict[str, int]:
        """Newly stored candles per symbol (JSON-ready, as a task returns it)."""
        return {item.symbol: item.stored for item in self.symbols}


def exchange_client(exchange: str) -> ccxt.Exchange:
    """A ccxt client that paces its own requests to the exchange's published rate limit."""
    if exchange not in ccxt.exchanges:
        raise ValidationError({"exchange": f"Unknown exchange {exchange!r}; ccxt knows e.g. binance, binanceusdm, bybit, okx."})
    return getattr(ccxt, exchange)({"enableRateLimit": True})


def _call_with_retries(
    call: Callable, *, what: str, max_retries: int, backoff_seconds: float, sleep: Callable[[float], None], report: SymbolFetchReport
):
    attempt = 0
    while True:
        report.requests += 1
        try:
            return call()
        except TRANSIENT_ERRORS as error:
            if failure_is_lasting(error):
                raise  # no network, or a wrong host: backing off for a minute would only hide the cause
            if attempt >= max_retries:
                logger.error("%s failed after %d retries: %s", what, max_retries, describe_failure(error))
                raise
            delay = min(backoff_seconds * 2**attempt, MAX_BACKOFF_SECONDS)
            attempt += 1
            report.retries += 1
            logger.warning("%s: %s; retry %d of %d in %.1f s", what, describe_failure(error), attempt, max_retries, delay)
            sleep(delay)


def candles_fetch(
    *,
    exchange: str,
    symbols: Sequence[str],
    timeframe: str,
    since: datetime | None = None,
    client: ccxt.Exchange | None = None,
    page_limit: int = DEFAULT_PAGE_LIMIT,
    max_retries: int = DEFAULT_MAX_RETRIES,
    backoff_seconds: float | None = None,
    now: datetime | None = None,
    sleep: Callable[[float], None] | None = None,
    progress: Callable[[SymbolFetchReport], None] | None = None,
) -> FetchReport:
    """Fetch closed candles from an exchange via ccxt and store the new ones, page by page.

    Each symbol resumes after its last stored candle (or from `since`, or a one-page backfill
    when nothing is stored); the still-forming candle is never stored. Every page is stored in
    its own transaction, so a failure keeps what came before and the next run resumes from it,
    without gaps or duplicates. Transient errors (TRANSIENT_ERRORS) are retried, unless their cause
    lasts (a host that does not resolve or refuses: failure_is_lasting), with exponential backoff (from `backoff_seconds`, default DEFAULT_BACKOFF_SECONDS) up to
    `max_retries` times, then raised. Symbols are ccxt market symbols (`BTC/USDT:USDT`) and are
    stored normalised (`BTCUSDT`).
    """
    errors: dict[str, str] = {}
    _validate_series(errors, exchange=exchange, symbol=None, timeframe=timeframe)
    if not symbols or any(not isinstance(market, str) or not market.strip() for market in symbols):
        errors["symbols"] = "Give at least one market symbol, e.g. BTC/USDT:USDT."
    if since is not None and (since.tzinfo is None or since.utcoffset() is None):
        errors["since"] = "Must be a timezone-aware datetime."
    if isinstance(page_limit, bool) or not isinstance(page_limit, int) or page_limit < 1:
        errors["page_limit"] = "Must be a positive whole number."
    if errors:
        raise ValidationError(errors)

    client = client or exchange_client(exchange)
    step = timeframe_ms(timeframe)
    offset = timeframe_offset_ms(timeframe)
    now_ms = int((now or timezone.now()).timestamp() * 1000)
    report = FetchReport(exchange, timeframe)
    retrying = {
        "max_retries": max_retries,
        "backoff_seconds": DEFAULT_BACKOFF_SECONDS if backoff_seconds is None else backoff_seconds,
        "sleep": sleep or time.sleep,
    }

    for market in (market.strip() for market in symbols):
        symbol_report = SymbolFetchReport(market=market, symbol=normalize_symbol(market))
        report.symbols.append(symbol_report)
        series = _Series(exchange, symbol_report.symbol, timeframe)
        last_stored = series.queryset().aggregate(last=Max("open_time"))["last"]
        start_ms = _first_wanted_ms(last_stored, since, now_ms=now_ms, step=step, offset=offset)

        while start_ms + step <= now_ms:
            try:
                page = _call_with_retries(
                    lambda: client.fetch_ohlcv(market, timeframe, since=start_ms, limit=page_limit),
                    what=f"{exchange} {market} {timeframe} from {_utc(start_ms):%Y-%m-%d %H:%M}",
                    report=symbol_report,
                    **retrying,
                )
            except ccxt.BadSymbol as error:
                raise ValidationError({"symbols": f"{exchange} has no market {market!r} ({error})."}) from None
            rows = _closed_rows(page, start_ms=start_ms, now_ms=now_ms, step=step, offset=offset, report=symbol_report)
            new = series.store(rows)
            symbol_report.stored += new
            symbol_report.already_present += len(rows) - new
            if rows:
                symbol_report.first_open_time = symbol_report.first_open_time or _utc(rows[0].open_time)
                symbol_report.last_open_time = _utc(rows[-1].open_time)
            newest = max((candle[0] for candle in page), default=None)
            if newest is None or newest < start_ms:
                break  # nothing newer: the exchange has no more candles yet
            start_ms = newest + step
        if progress is not None:
            progress(symbol_report)
        logger.info(
            "%s %s %s: %d received, %d stored, %d still forming, %d rejected, %d requests",
            exchange, market, timeframe, symbol_report.received, symbol_report.stored, symbol_report.dropped_unclosed,
            len(symbol_report.rejected), symbol_report.requests,
        )  # fmt: skip
    return report


def _first_wanted_ms(last_stored: datetime | None, since: datetime | None, *, now_ms: int, step: int, offset: int) -> int:
    """The open time to fetch from: after the last stored candle, or `since`, whichever is later."""
    candidates = []
    if last_stored is not None:
        candidates.append(int(last_stored.timestamp() * 1000) + step)
    if since is not None:
        since_ms = int(since.timestamp() * 1000)
        candidates.append(since_ms + (offset - since_ms) % step)  # round up to a candle boundary
    if not candidates:
        current = now_ms - (now_ms - offset) % step
        candidates.append(current - DEFAULT_BACKFILL_CANDLES * step)
    return max(candidates)


def _closed_rows(page: Iterable[list], *, start_ms: int, now_ms: int, step: int, offset: int, report: SymbolFetchReport) -> list[CandleRow]:
    """The page's closed, checked candles from start_ms on, in time order."""
    rows = []
    for candle in sorted(page, key=lambda item: item[0]):
        report.received += 1
        open_time = int(candle[0])
        if open_time < start_ms:
            continue
        if open_time + step > now_ms:
            report.dropped_unclosed += 1
            continue
        try:
            values = [Decimal(str(value)) for value in candle[1:6]]
        except (ArithmeticError, ValueError, TypeError):
            report.rejected.append(f"{_utc(open_time):%Y-%m-%d %H:%M}: not numbers {candle[1:6]!r}")
            continue
        reasons = check_candle(open_time, tuple(values[:4]), values[4], step_ms=step, offset_ms=offset)
        row = CandleRow(0, open_time, *values)
        if not reasons and (too_large := _too_large(row)):
            reasons = [too_large]
        if reasons:
            report.rejected.append(f"{_utc(open_time):%Y-%m-%d %H:%M}: {'; '.join(reasons)}")
            continue
        rows.append(row)
    return rows
