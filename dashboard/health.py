"""Is the live system working and learning? Database, broker, market data, ticks and learning, each against its bound.

Read by the public `/healthz` (only states, times and ages: no balances, no error text from the
database or broker, which can name hosts and users) and by the dashboard's header (with the
details, behind login). A check with nothing to show yet is "waiting" rather than stale for its
bound's length after the live accounts were created, so a fresh `make up` starts healthy.
"""
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Max, Min
from django.utils import timezone

from learning.models import LearningLease, OnlineLearningState
from learning.selectors import broker_health, database_health, pending_learning
from trading.marketdata.feeds import CLOCK, EXCHANGE
from trading.marketdata.naming import normalize_symbol, timeframe_ms
from trading.models import Candle, EngineTick, MarketFeedStatus, PaperAccount

OK, WAITING, STALE, FAILING = "ok", "waiting", "stale", "failing"
# A candle or tick is stale after two candles' time on the feed's clock, plus this margin for beat and queues.
STALENESS_MARGIN_SECONDS = 300
# Outcomes waiting for the online update are counted up to this many: past it, "1000+" says as much.
PENDING_COUNT_LIMIT = 1000


def _age(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else round((now - moment).total_seconds(), 1)


def _check(moment: datetime | None, *, now: datetime, bound: float, started: datetime | None) -> dict:
    age = _age(moment, now)
    if age is None:
        state = WAITING if started is None or (now - started).total_seconds() <= bound else STALE
    else:
        state = OK if age <= bound else STALE
    return {"status": state, "at": moment, "age_seconds": age, "bound_seconds": bound}


def _clock_speed(status: MarketFeedStatus | None) -> float:
    return status.clock_speed if status is not None and status.clock_speed else 1.0


def _market_now(feed: str, status: MarketFeedStatus | None, now: datetime) -> datetime | None:
    if feed == EXCHANGE:
        return now
    if status is None or status.clock_origin is None:
        return None  # the clock has not started
    return status.clock_origin + (now - status.clock_started_at) * status.clock_speed


def _feed(status: MarketFeedStatus | None, feed: str, now: datetime) -> dict:
    summary = {"feed": feed, "status": OK, "last_success_at": None, "last_error": "", "last_error_at": None, "retrying_at": None}
    if status is None:
        summary["status"] = WAITING
        return summary
    summary.update(last_success_at=status.last_success_at, last_error=status.last_error, last_error_at=status.last_error_at)
    if status.consecutive_failures:
        summary.update(status=FAILING, failing_since=status.failing_since, failures=status.consecutive_failures, retrying_at=status.retry_after)
    if feed == CLOCK and status.clock_origin is not None:
        summary.update(clock_speed=status.clock_speed, market_time=_market_now(feed, status, now))
    return summary


def system_health(*, now: datetime | None = None, details: bool = False) -> dict:
    """Every check with its state; `healthy` is False when any is stale or the database or broker is down."""
    now = now or timezone.now()
    feed = settings.MARKET_FEED
    feed_status = MarketFeedStatus.objects.filter(feed=feed).first()
    speed = _clock_speed(feed_status) if feed == CLOCK else 1.0
    candle_seconds = timeframe_ms(settings.TRADING_TIMEFRAME) / 1000
    derived_bound = 2 * candle_seconds / speed + STALENESS_MARGIN_SECONDS
    tick_bound = settings.HEALTH_TICK_MAX_AGE_SECONDS or derived_bound
    candle_bound = settings.HEALTH_CANDLE_MAX_AGE_SECONDS or derived_bound
    started = PaperAccount.objects.aggregate(first=Min("created_at"))["first"]

    database, broker = database_health(), broker_health()
    if not details:
        database = {"status": database["status"]}
        broker = {"status": broker["status"]}

    ticks = dict(
        EngineTick.objects.filter(completed_at__isnull=False).values("account").annotate(last=Max("completed_at")).values_list("account", "last")
    )
    accounts = {
        account.name: {**_check(ticks.get(account.pk), now=now, bound=tick_bound, started=account.created_at), "paused": account.is_paused}
        for account in PaperAccount.objects.order_by("pk")
    }

    market_now = _market_now(feed, feed_status, now)
    step = timedelta(seconds=candle_seconds)
    candles = {}
    for symbol in (normalize_symbol(market) for market in settings.TRADING_MARKETS):
        series = Candle.objects.filter(exchange=settings.TRADING_EXCHANGE, symbol=symbol, timeframe=settings.TRADING_TIMEFRAME)
        if market_now is not None:
            series = series.filter(open_time__lte=market_now - step)  # the clock has released only these
        last = series.aggregate(last=Max("open_time"))["last"]
        # Age on the wall clock: how long ago, at the feed's speed, the candle closed.
        closed = None if last is None or market_now is None else now - (market_now - (last + step)) / speed
        candles[symbol] = {**_check(closed, now=now, bound=candle_bound, started=started), "open_time": last}

    online = OnlineLearningState.objects.first()
    pending = pending_learning(limit=PENDING_COUNT_LIMIT)
    online_check = _check(online.last_update_at if online else None, now=now, bound=settings.HEALTH_ONLINE_UPDATE_MAX_AGE_SECONDS, started=started)
    if online_check["status"] == STALE and not pending["records"]:
        online_check["status"] = OK  # nothing new to learn: an old update is not a stale one
    online_check["pending_outcomes"] = pending["records"]
    online_check["pending_outcomes_capped"] = pending["records"] >= PENDING_COUNT_LIMIT
    lease = LearningLease.objects.filter(name="batch_retrain").first()
    retrain = _check(lease.last_finished_at if lease else None, now=now, bound=settings.HEALTH_RETRAIN_MAX_AGE_SECONDS, started=started)
    if lease is not None and lease.last_result:
        retrain["result"] = {key: lease.last_result.get(key) for key in ("activated", "reason", "version") if key in lease.last_result}

    stale = [
        name
        for name, check in (
            ("database", database), ("broker", broker), ("online_update", online_check), ("retrain", retrain),
            *((f"account {name}", check) for name, check in accounts.items()),
            *((f"candles {symbol}", check) for symbol, check in candles.items()),
        )
        if check["status"] in (STALE, "unavailable")
    ]  # fmt: skip
    return {
        "healthy": not stale,
        "problems": stale,
        "checked_at": now,
        "database": database,
        "broker": broker,
        "market_data": _feed(feed_status, feed, now),
        "last_tick": accounts,
        "last_candle": candles,
        "online_update": online_check,
        "retrain": retrain,
    }
