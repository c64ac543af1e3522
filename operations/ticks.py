"""Live engine ticks: each closed candle is claimed once per account, then run through the engine.

The claim (a unique EngineTick row) and everything the engine writes for that candle commit
together: if the worker dies mid-tick the claim rolls back with the rest and the redelivered
task runs the candle again; if two workers race, the second finds the candle claimed and stops.
"""
import logging
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from operations.engines import engine_class_for
from trading.engine import BarSource, TradingEngine
from trading.exchange_books import ExchangeBooks
from trading.features.builder import HISTORY_CANDLES, WARMUP_CANDLES
from trading.models import EngineTick, PaperAccount
from trading.selectors import candles_frame

logger = logging.getLogger(__name__)


def engine_tick(*, account_id: int, symbol: str, timeframe: str, exchange: str, now: datetime | None = None) -> int:
    """Run every closed candle of `symbol` the account has not ticked yet, in order; returns how many ran.

    An account that never ticked starts at the latest closed candle: live trading does not
    replay history (that is what `manage.py replay` is for).
    """
    account = PaperAccount.objects.get(pk=account_id)
    engine_class = engine_class_for(account.system_type)
    last_tick = (
        EngineTick.objects.filter(account=account, symbol=symbol, timeframe=timeframe)
        .order_by("-candle_time")
        .values_list("candle_time", flat=True)
        .first()
    )
    frame = candles_frame(symbol=symbol, timeframe=timeframe, exchange=exchange, end=now or timezone.now())
    if last_tick is not None:
        # Enough history before the first unticked candle for its features to equal a replay's.
        first_new = int(frame.index.searchsorted(last_tick, side="right"))
        frame = frame.iloc[max(0, first_new - HISTORY_CANDLES) :]
    else:
        frame = frame.iloc[-HISTORY_CANDLES:]
    if frame.empty:
        return 0
    if len(frame) <= WARMUP_CANDLES:
        logger.warning(
            "%s %s %s: only %d candles stored, %d needed before trading; nothing decided",
            account, symbol, timeframe, len(frame), WARMUP_CANDLES + 1,
        )  # fmt: skip
    correlated = {
        other: candles_frame(symbol=other, timeframe=timeframe, exchange=exchange, end=now or timezone.now()).loc[frame.index[0] :]
        for other in settings.FEATURES_CORRELATED_SYMBOLS
    }
    source = BarSource(symbol=symbol, timeframe=timeframe, frame=frame, correlated=correlated)
    rows = range(len(frame) - 1, len(frame)) if last_tick is None else range(len(frame))
    processed = 0
    for row in rows:
        if last_tick is not None and source.times[row] <= last_tick:
            continue
        if not _run_claimed(account=account, engine_class=engine_class, source=source, row=row):
            break  # another worker holds this candle; it will carry on from here
        processed += 1
    return processed


def _run_claimed(*, account: PaperAccount, engine_class: type[TradingEngine], source: BarSource, row: int) -> bool:
    bar = source.bar(row)
    with transaction.atomic():
        try:
            with transaction.atomic():
                tick = EngineTick.objects.create(
                    account=account, symbol=bar.symbol, timeframe=bar.timeframe, candle_time=bar.open_time
                )
        except IntegrityError:
            logger.info("%s %s %s already claimed", account, bar.symbol, bar.open_time)
            return False
        # A fresh engine reads open trades and pending decisions from the database: no state is
        # carried between ticks, so any worker can run any candle.
        account.refresh_from_db()
        engine = engine_class(account=account)
        if account.broker == "exchange":
            engine.keep_books(ExchangeBooks(account))  # real trades fill on the exchange (its testnet unless real money is on twice)
        engine.on_candle_close(bar)
        tick.completed_at = timezone.now()
        tick.save(update_fields=["completed_at"])
    return True
