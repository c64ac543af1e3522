"""Reads of trading data: candle frames for the engines, gaps in stored candle series, an account's open book."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np
from django.db.models import FloatField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Cast, Coalesce

from trading.marketdata.naming import normalize_symbol, timeframe_ms
from trading.marketdata.readers import Rejection, read_candles, read_clean_csv
from trading.models import Candle, EngineTick, PaperAccount, PaperTrade, SignalDecision, default_exchange

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

OHLCV = ("open", "high", "low", "close", "volume")
# A directory of candle files is searched for `<SYMBOL>-<timeframe>` with these endings, in order.
CANDLE_FILE_SUFFIXES = (".csv", ".csv.gz", ".zip", ".json", ".json.gz")
_LOGGED_REJECTIONS = 10


@dataclass(frozen=True)
class Gap:
    """Consecutive missing candles: open times `start` to `end` inclusive."""

    start: datetime
    end: datetime
    missing: int

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} ({self.missing} missing)"


def _series(*, exchange: str, symbol: str, timeframe: str):
    return Candle.objects.filter(exchange=exchange, symbol=normalize_symbol(symbol), timeframe=timeframe)


def _frame(open_times, values: np.ndarray, *, symbol: str, timeframe: str, exchange: str | None) -> pd.DataFrame:
    import pandas as pd  # ~1 s to import: the dashboard imports this module for account reads

    # One resolution whatever the source (pandas infers µs from datetimes, ms from Unix ms).
    index = pd.DatetimeIndex(pd.to_datetime(open_times, utc=True), name="open_time").as_unit("ns")
    frame = pd.DataFrame(values.reshape(len(index), len(OHLCV)), index=index, columns=list(OHLCV), dtype="float64")
    frame.attrs.update(symbol=normalize_symbol(symbol), timeframe=timeframe, exchange=exchange)
    return frame


def candles_frame(
    *, symbol: str, timeframe: str, exchange: str | None = None, start: datetime | None = None, end: datetime | None = None
) -> pd.DataFrame:
    """Stored candles as float64 columns open..volume on a UTC DatetimeIndex of open times.

    `start` and `end` are inclusive, like pandas' `.loc[start:end]`. The frame's `attrs` name
    the series. Floats here are for vectorised indicator code; the database keeps Decimals.
    The exchange defaults to TRADING_EXCHANGE, as the candles' import does.
    """
    exchange = default_exchange() if exchange is None else exchange
    candles = _series(exchange=exchange, symbol=symbol, timeframe=timeframe).order_by("open_time")
    if start is not None:
        candles = candles.filter(open_time__gte=start)
    if end is not None:
        candles = candles.filter(open_time__lte=end)
    # Cast in the database: converting 5 Decimals a row in Python would dominate a replay's start-up.
    casts = {f"{name}_float": Cast(name, FloatField()) for name in OHLCV}
    rows = list(candles.annotate(**casts).values_list("open_time", *casts))
    values = np.array([row[1:] for row in rows], dtype="float64")
    return _frame([row[0] for row in rows], values, symbol=symbol, timeframe=timeframe, exchange=exchange)


def candle_file(directory: str | Path, symbol: str, timeframe: str) -> Path:
    """The file holding `symbol`'s candles in `directory` (e.g. `BTCUSDT-1h.csv`)."""
    directory = Path(directory)
    stem = f"{normalize_symbol(symbol)}-{timeframe}"
    for suffix in CANDLE_FILE_SUFFIXES:
        if (candidate := directory / f"{stem}{suffix}").is_file():
            return candidate
    raise FileNotFoundError(f"no candle file for {stem} in {directory} (looked for {', '.join(stem + s for s in CANDLE_FILE_SUFFIXES)})")


def read_candles_dir(
    directory: str | Path, symbol: str, timeframe: str, *, start: datetime | None = None, end: datetime | None = None
) -> pd.DataFrame:
    """The same frame as `candles_frame`, read straight from a candle file, for replays without a database.

    Rows the readers reject are skipped and logged; a file that cannot be read at all raises
    ValueError naming the file and why.
    """
    path = candle_file(directory, symbol, timeframe)
    clean = read_clean_csv(path, timeframe=timeframe)
    open_times, values = clean if clean is not None else _read_rows(path, timeframe)
    order = np.argsort(np.asarray(open_times, dtype="int64"), kind="stable")
    times = np.asarray(open_times, dtype="int64")[order]
    frame = _frame(
        times.astype("datetime64[ms]"),
        np.asarray(values, dtype="float64")[order],
        symbol=symbol,
        timeframe=timeframe,
        exchange=None,
    )
    if start is not None:
        frame = frame.loc[frame.index >= start]
    if end is not None:
        frame = frame.loc[frame.index <= end]
    return frame


def _read_rows(path: Path, timeframe: str) -> tuple[list[int], list[tuple]]:
    """A candle file row by row: its good rows, the bad ones skipped and logged."""
    open_times: list[int] = []
    values: list[tuple] = []
    rejected = 0
    for item in read_candles(path, timeframe=timeframe):
        if isinstance(item, Rejection):
            if item.fatal:
                raise ValueError(str(item))
            rejected += 1
            if rejected <= _LOGGED_REJECTIONS:
                logger.warning("skipped %s", item)
            continue
        open_times.append(item.open_time)
        values.append((item.open, item.high, item.low, item.close, item.volume))
    if rejected:
        logger.warning("%s: %d rows skipped in all", path.name, rejected)
    return open_times, values


def candle_gaps(*, exchange: str, symbol: str, timeframe: str, start: datetime, end: datetime) -> list[Gap]:
    """Runs of missing candles between `start` and `end` (inclusive, aligned open times)."""
    step = timedelta(milliseconds=timeframe_ms(timeframe))
    candles = _series(exchange=exchange, symbol=symbol, timeframe=timeframe).filter(open_time__range=(start, end))
    if end < start or candles.count() == (end - start) // step + 1:
        return []
    gaps = []
    previous = start - step
    times = candles.order_by("open_time").values_list("open_time", flat=True).iterator(chunk_size=10_000)
    for open_time in chain(times, [end + step]):
        if open_time - previous > step:
            gaps.append(Gap(previous + step, open_time - step, (open_time - previous) // step - 1))
        previous = open_time
    return gaps


def account_open_trades(*, account: PaperAccount) -> list[PaperTrade]:
    """The account's open trades, real and shadow, in the order they were opened."""
    return list(PaperTrade.objects.filter(account=account, status=PaperTrade.Status.OPEN).order_by("pk"))


def account_pending_decisions(*, account: PaperAccount) -> list[SignalDecision]:
    """The account's decisions not yet filled or dismissed (no trade, no reason), oldest first."""
    return list(SignalDecision.objects.filter(account=account, trade__isnull=True, reason="").order_by("pk"))


_END_OF_TIME = datetime(9999, 12, 31, tzinfo=UTC)


def with_mark_price(trades: QuerySet) -> QuerySet:
    """Trades annotated with `mark_price`: the close of the latest candle since entry that the trade's account has seen.

    Live, an account has seen the candles it has ticked: the clock feed stores the history ahead
    of its market time, so the latest stored candle may lie in the account's future. An account
    that never ticked (a replay's) has seen every stored candle.
    """
    ticked = EngineTick.objects.filter(account=OuterRef("account_id"), symbol=OuterRef("symbol"), timeframe=OuterRef("timeframe"))
    seen = Coalesce(Subquery(ticked.order_by("-candle_time").values("candle_time")[:1]), Value(_END_OF_TIME))
    mark = Candle.objects.filter(
        symbol=OuterRef("symbol"), timeframe=OuterRef("timeframe"), open_time__gte=OuterRef("entry_time"), open_time__lte=OuterRef("seen_until")
    ).order_by("-open_time")
    return trades.annotate(seen_until=seen).annotate(mark_price=Subquery(mark.values("close")[:1]))
