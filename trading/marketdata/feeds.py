"""Live market data feeds: where live ticks get closed candles — an exchange through ccxt, or a clock over stored candles.

A feed does two things. `poll` brings the stored candles up to date (the exchange feed fetches
closed candles; the clock has nothing to fetch). `closed_until` is the latest candle open time
a tick may act on: every stored candle up to it is closed. Ticks run on what is stored, so a
failed poll never stops them (trading.services.feeds records the failure and backs off).

The clock releases stored candles as if they were closing now, at real speed or faster: market
time = origin + (wall time − started) × speed, so `speed=60` closes one hourly candle a minute.
Its origin and start are kept in the feed's status row, so a restart carries on where it was.
"""
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from trading.marketdata.naming import normalize_symbol, timeframe_ms

EXCHANGE = "exchange"
CLOCK = "clock"
FEEDS = (EXCHANGE, CLOCK)


class Feed(Protocol):
    name: str
    exchange: str  # the stored candle series ticks read
    timeframe: str
    symbols: list[str]  # stored (normalised) symbols

    def poll(self, *, now: datetime) -> None:
        """Bring the stored candles up to `now`; raises whatever the source raised."""

    def closed_until(self, *, now: datetime) -> datetime | None:
        """The latest candle open time ticks may act on at wall time `now` (None: every stored candle)."""


@dataclass
class ExchangeFeed:
    """Closed candles polled from an exchange's REST API (ccxt's fetch_ohlcv), as `fetch_candles` does."""

    exchange: str
    markets: list[str]
    timeframe: str
    client: object | None = None  # a ccxt client; built from the exchange's name when None
    name: str = EXCHANGE

    @property
    def symbols(self) -> list[str]:
        return [normalize_symbol(market) for market in self.markets]

    def poll(self, *, now: datetime) -> None:
        from trading.services.candles import candles_fetch

        # No retries here: the beat task comes back within a minute, and the status row backs off.
        candles_fetch(exchange=self.exchange, symbols=self.markets, timeframe=self.timeframe, client=self.client, now=now, max_retries=0)

    def closed_until(self, *, now: datetime) -> datetime | None:
        return None  # only closed candles are ever stored from an exchange


@dataclass
class ClockFeed:
    """Stored candles released at the pace of a clock: `speed` market seconds per wall second."""

    exchange: str
    symbols: list[str]
    timeframe: str
    origin: datetime  # market time when the clock started
    started_at: datetime  # wall time when it started
    speed: float
    name: str = CLOCK

    def poll(self, *, now: datetime) -> None:
        return None  # the candles are already stored

    def market_time(self, *, now: datetime) -> datetime:
        return self.origin + (now - self.started_at) * self.speed

    def closed_until(self, *, now: datetime) -> datetime:
        # A candle has closed once market time passed its open time plus one timeframe.
        return self.market_time(now=now) - timedelta(milliseconds=timeframe_ms(self.timeframe))


def configured_feed_name() -> str:
    name = settings.MARKET_FEED
    if name not in FEEDS:
        raise ImproperlyConfigured(f"MARKET_FEED={name!r} must be one of {', '.join(FEEDS)}.")
    return name


def describe_failure(error: BaseException) -> str:
    """One line naming the root cause of a failed fetch, e.g. "cannot resolve host fapi.binance.com".

    ccxt wraps a requests error, which wraps urllib3's, which wraps the socket's: the innermost
    one says what actually went wrong, the outer ones only where.
    """
    chain = _causes(error)
    host = next((found for item in chain if (found := _host_of(item))), None)
    for item in chain:
        if _unresolved(item):
            return f"cannot resolve host {host}" if host else "cannot resolve the exchange's host"
    for item in chain:
        if isinstance(item, ConnectionRefusedError):
            return f"connection refused by {host}" if host else "connection refused"
        if isinstance(item, TimeoutError | socket.timeout) or "Timeout" in type(item).__name__:
            return f"timed out talking to {host}" if host else "timed out"
    root = chain[-1]
    text = " ".join(str(root).split())
    return f"{type(root).__name__}: {text}"[:300] if text else type(root).__name__


def failure_is_lasting(error: BaseException) -> bool:
    """Whether retrying within seconds cannot help: the host's name does not resolve (no network,
    or a wrong host), or nothing listens there. Timeouts, resets and 5xx answers may pass."""
    return any(_unresolved(item) or isinstance(item, ConnectionRefusedError) for item in _causes(error))


def _causes(error: BaseException) -> list[BaseException]:
    """The error and what caused it, outermost first."""
    chain = []
    current: BaseException | None = error
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        following = current.__cause__ or current.__context__
        if following is None and current.args and isinstance(current.args[0], BaseException):
            following = current.args[0]  # requests' ConnectionError(MaxRetryError(...))
        if following is None and isinstance(getattr(current, "reason", None), BaseException):
            following = current.reason  # urllib3's MaxRetryError.reason
        current = following
    return chain


def _unresolved(item: BaseException) -> bool:
    return isinstance(item, socket.gaierror) or type(item).__name__ == "NameResolutionError"


def _host_of(item: BaseException) -> str | None:
    # urllib3 keeps the host on the error (NameResolutionError), its pool or its connection.
    for holder in (item, getattr(item, "pool", None), getattr(item, "conn", None)):
        host = getattr(holder, "_host", None) or getattr(holder, "host", None)
        if isinstance(host, str) and host:
            return host
    return None
