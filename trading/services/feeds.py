"""The live feed's bookkeeping: which feed runs, its clock, and each poll's outcome with backoff after failures.

A failed poll is logged once per failure streak, in one line naming its root cause; later
failures of the same streak are counted quietly and the next attempt waits longer each time
(MARKET_FEED_BACKOFF_SECONDS doubling up to MARKET_FEED_BACKOFF_MAX_SECONDS). Nothing here
raises a feed's error: the caller queues ticks on the stored candles either way.
"""
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from tradelearn.notifications import notify
from trading.features.builder import HISTORY_CANDLES
from trading.marketdata.feeds import CLOCK, EXCHANGE, ClockFeed, ExchangeFeed, Feed, configured_feed_name, describe_failure
from trading.marketdata.naming import normalize_symbol, timeframe_ms
from trading.models import Candle, MarketFeedStatus

logger = logging.getLogger(__name__)


class FeedNotReady(Exception):
    """The clock has no stored candles to release."""


@dataclass(frozen=True)
class FeedPollResult:
    feed: str
    polled: bool  # False while backing off after a failure
    ok: bool
    error: str = ""
    closed_until: datetime | None = None


def _symbols() -> list[str]:
    return [normalize_symbol(market) for market in settings.TRADING_MARKETS]


def _clock_default_origin() -> datetime:
    """Where a new clock starts: MARKET_FEED_CLOCK_START, else as soon as every symbol has a live tick's history."""
    if settings.MARKET_FEED_CLOCK_START is not None:
        return settings.MARKET_FEED_CLOCK_START
    step = timedelta(milliseconds=timeframe_ms(settings.TRADING_TIMEFRAME))
    firsts = Candle.objects.filter(
        exchange=settings.TRADING_EXCHANGE, timeframe=settings.TRADING_TIMEFRAME, symbol__in=_symbols()
    ).values("symbol").annotate(first=Min("open_time"))
    firsts = {row["symbol"]: row["first"] for row in firsts}
    missing = [symbol for symbol in _symbols() if symbol not in firsts]
    if missing:
        raise FeedNotReady(
            f"no stored {settings.TRADING_TIMEFRAME} candles of {', '.join(missing)} on {settings.TRADING_EXCHANGE} "
            "for the clock to release (manage.py import_candles)"
        )
    # The first candle released closes HISTORY_CANDLES after the latest first candle: full features from the start.
    return max(firsts.values()) + step * (HISTORY_CANDLES + 1)


@transaction.atomic
def feed_clock_set(*, speed: float | None = None, start: datetime | None = None, now: datetime | None = None) -> MarketFeedStatus:
    """Start the clock, or re-anchor it: from `start` (default: where it is now) at `speed` (default: as set)."""
    now = now or timezone.now()
    status, _ = MarketFeedStatus.objects.select_for_update().get_or_create(feed=CLOCK)
    if start is None and status.clock_origin is not None:
        start = _clock(status).market_time(now=now)
    status.clock_origin = start if start is not None else _clock_default_origin()
    status.clock_started_at = now
    status.clock_speed = float(speed if speed is not None else settings.MARKET_FEED_CLOCK_SPEED)
    status.save()
    return status


def _clock(status: MarketFeedStatus) -> ClockFeed:
    return ClockFeed(
        exchange=settings.TRADING_EXCHANGE, symbols=_symbols(), timeframe=settings.TRADING_TIMEFRAME,
        origin=status.clock_origin, started_at=status.clock_started_at, speed=status.clock_speed,
    )  # fmt: skip


def market_feed(*, now: datetime | None = None, client=None) -> Feed:
    """The feed MARKET_FEED names; the clock is started on first use and re-anchored if its speed setting changed."""
    if configured_feed_name() == EXCHANGE:
        return ExchangeFeed(exchange=settings.TRADING_EXCHANGE, markets=list(settings.TRADING_MARKETS), timeframe=settings.TRADING_TIMEFRAME, client=client)
    status = MarketFeedStatus.objects.filter(feed=CLOCK).first()
    if status is None or status.clock_origin is None or status.clock_speed != settings.MARKET_FEED_CLOCK_SPEED:
        status = feed_clock_set(speed=settings.MARKET_FEED_CLOCK_SPEED, now=now)
    return _clock(status)


def feed_poll(*, feed: Feed | None = None, now: datetime | None = None) -> FeedPollResult:
    """Poll the feed unless it is backing off; record the outcome; never raise the feed's error."""
    now = now or timezone.now()
    try:
        feed = feed or market_feed(now=now)
    except FeedNotReady as error:
        return _record_failure(CLOCK, now=now, description=str(error))
    status, _ = MarketFeedStatus.objects.get_or_create(feed=feed.name)
    if status.retry_after is not None and status.retry_after > now:
        return FeedPollResult(feed.name, polled=False, ok=False, error=status.last_error, closed_until=feed.closed_until(now=now))
    MarketFeedStatus.objects.filter(pk=status.pk).update(last_attempt_at=now)
    try:
        feed.poll(now=now)
    except Exception as error:  # noqa: BLE001 - any failure of the source is recorded; ticks go on regardless
        return _record_failure(feed.name, now=now, description=describe_failure(error), closed_until=feed.closed_until(now=now))
    if status.consecutive_failures:
        logger.warning("market data (%s): fetching again after %d failed attempts since %s", feed.name, status.consecutive_failures, status.failing_since)
        notify("feed_recovered", f"market data ({feed.name}) fetching again after {status.consecutive_failures} failed attempts", feed=feed.name)
    MarketFeedStatus.objects.filter(pk=status.pk).update(
        last_success_at=now, failing_since=None, consecutive_failures=0, retry_after=None, updated_at=now
    )
    return FeedPollResult(feed.name, polled=True, ok=True, closed_until=feed.closed_until(now=now))


@transaction.atomic
def _record_failure(name: str, *, now: datetime, description: str, closed_until: datetime | None = None) -> FeedPollResult:
    status, _ = MarketFeedStatus.objects.select_for_update().get_or_create(feed=name)
    status.consecutive_failures += 1
    delay = min(settings.MARKET_FEED_BACKOFF_SECONDS * 2 ** (status.consecutive_failures - 1), settings.MARKET_FEED_BACKOFF_MAX_SECONDS)
    status.retry_after = now + timedelta(seconds=delay)
    status.last_attempt_at = now
    if status.consecutive_failures == 1 or description != status.last_error:
        # Once per streak (and when the cause changes), one line: the root cause, not a traceback.
        logger.warning("market data (%s): fetch failed: %s; ticks go on with stored candles, retrying in %.0f s", name, description, delay)
        if status.consecutive_failures == 1:
            notify("feed_failing", f"market data ({name}): fetch failed: {description}; retrying", feed=name, error=description)
    if status.failing_since is None:
        status.failing_since = now
    status.last_error = description[:500]
    status.last_error_at = now
    status.save()
    return FeedPollResult(name, polled=True, ok=False, error=description, closed_until=closed_until)
