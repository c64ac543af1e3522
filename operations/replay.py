"""Replay: drive engines over stored candles in time order, learning as they go.

Every symbol's candles are interleaved by time, so a decision at time t (on any symbol) can
only draw on trades that closed before t. Closed trades reach the learned statistics at once;
the online ensemble learns after every few closed trades and the batch model is retrained on
a fixed cadence, as of the current candle's close, so nothing later can leak in. Both learn
in worker processes beside the replay, and a retrained model is adopted a fixed number of closed
trades later (as a live retrain is adopted when Celery finishes it), never when the worker
happens to finish: a replay's results do not depend on the machine's speed.

The engines keep their books in memory (operations.books.MemoryBooks, learning.services.session)
and everything is written to the database in one transaction every REPLAY_WRITE_EVERY
outcomes, before each batch retrain and at the end: the same rules as live, without a round
trip per row. A replay cut short leaves the database as of its last write.
"""
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
from django.conf import settings
from tqdm import tqdm

from learning.services.session import LearningSession
from learning.types import TradeOutcome
from operations.books import MemoryBooks, ReplayWriter
from trading.books import DatabaseBooks
from trading.engine import BarSource, TradingEngine
from trading.marketdata.naming import timeframe_ms
from trading.models import PaperAccount, PaperTrade

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class AccountSummary:
    account: str
    system_type: str
    trades: int
    wins: int
    shadow_trades: int
    net_pnl: Decimal
    profit_factor: float | None
    max_drawdown_pct: float
    final_balance: Decimal

    @property
    def win_rate(self) -> float:
        return self.wins / self.trades if self.trades else 0.0


@dataclass(kw_only=True)
class ReplaySummary:
    candles: int = 0
    seconds: float = 0.0
    model_updates: int = 0
    retrains: int = 0
    writes: int = 0
    # Where the time went, besides the engines themselves.
    seconds_learning: float = 0.0  # online ensemble updates
    seconds_retraining: float = 0.0  # batch retrains
    seconds_writing: float = 0.0  # writing the books and outcomes to the database
    accounts: list[AccountSummary] = field(default_factory=list)


def account_summary(account: PaperAccount) -> AccountSummary:
    """Trades, win rate, net P&L, profit factor and max drawdown of an account's closed real trades."""
    closed = PaperTrade.objects.filter(account=account, status=PaperTrade.Status.CLOSED)
    pnls = [pnl for pnl in closed.filter(is_shadow=False).order_by("exit_time", "pk").values_list("net_pnl", flat=True)]
    gains = sum((p for p in pnls if p > 0), Decimal(0))
    losses = -sum((p for p in pnls if p <= 0), Decimal(0))
    equity = float(account.starting_balance) + np.cumsum([0.0] + [float(p) for p in pnls])
    drawdowns = 1 - equity / np.maximum.accumulate(equity)
    account.refresh_from_db(fields=["current_balance"])
    return AccountSummary(
        account=account.name,
        system_type=account.system_type,
        trades=len(pnls),
        wins=sum(1 for p in pnls if p > 0),
        shadow_trades=closed.filter(is_shadow=True).count(),
        net_pnl=sum(pnls, Decimal(0)),
        profit_factor=float(gains / losses) if losses > 0 else None,
        max_drawdown_pct=float(drawdowns.max()),
        final_balance=account.current_balance,
    )


@contextmanager
def _timed(summary: ReplaySummary, name: str):
    started = time.perf_counter()
    try:
        yield
    finally:
        setattr(summary, name, getattr(summary, name) + time.perf_counter() - started)


def replay(
    *,
    engines: list[TradingEngine],
    frames: dict[str, pd.DataFrame],
    timeframe: str,
    start: datetime,
    end: datetime,
    learning: bool = True,
    online_update_every: int | None = None,
    retrain_every: int | None = None,
    write_every: int | None = None,
    background: bool = True,
    progress: bool = True,
    outcome_transform: Callable[[TradeOutcome], TradeOutcome] | None = None,
) -> ReplaySummary:
    """Run `engines` over `frames` (symbol → OHLCV frame, history before `start` used as warm-up).

    The online models learn after every `online_update_every` outcomes (real and shadow
    closes). The batch model is retrained once the outcomes since its last retrain reach
    `retrain_every` and also REPLAY_RETRAIN_GROWTH times those it was trained on (with a
    growth of 1.0 it is retrained as its history doubles, so a long replay's retrains cost
    about as much as its last few). Both learn as of the current candle's close. The books are
    written every `write_every` outcomes.

    Both models learn in worker processes (with `background`; else here, for the same results):
    a retrain starts as of a candle's close and its model is adopted REPLAY_RETRAIN_LAG outcomes
    later, the replay waiting there if the worker is behind. Until then the previous model serves.

    `outcome_transform`, if given, is applied to each closed trade's outcome, in close order,
    before learning sees it (the accounts settle on the real result): the shuffled-labels control.
    """
    online_update_every = online_update_every or settings.REPLAY_ONLINE_UPDATE_EVERY
    retrain_every = retrain_every or settings.REPLAY_RETRAIN_EVERY
    write_every = write_every or settings.REPLAY_WRITE_EVERY
    retrain_growth = settings.REPLAY_RETRAIN_GROWTH
    retrain_lag = settings.REPLAY_RETRAIN_LAG
    step = timedelta(milliseconds=timeframe_ms(timeframe))
    started = time.perf_counter()
    # First, so that the workers' imports overlap the features and levels computed below.
    session = LearningSession(learning=learning, background=learning and background)
    summary = ReplaySummary()
    since_update = since_retrain = outcomes_seen = 0
    adopt_at = 0  # outcomes seen when the retrain in flight is adopted

    def adopt_retrain() -> None:
        with _timed(summary, "seconds_retraining"):
            summary.retrains += session.retrain_finish().version is not None

    try:
        sources = {symbol: BarSource(symbol=symbol, timeframe=timeframe, frame=frame, correlated=frames) for symbol, frame in frames.items()}
        for symbol, frame in frames.items():
            for engine in engines:
                engine.prepare(symbol=symbol, timeframe=timeframe, frame=frame)
        rows = {
            symbol: {moment: row for row, moment in enumerate(source.moments) if start <= moment <= end}
            for symbol, source in sources.items()
        }
        timeline = sorted(set().union(*(set(by_time) for by_time in rows.values())))
        books = [MemoryBooks(engine.account, session, outcome_transform) for engine in engines]
        for engine, engine_books in zip(engines, books):
            engine.keep_books(engine_books)
        writer = ReplayWriter(books, session)

        for moment in tqdm(timeline, desc="replay", unit="candle", disable=not progress, mininterval=1.0):
            for symbol, source in sources.items():
                row = rows[symbol].get(moment)
                if row is None:
                    continue
                bar = source.bar(row)
                for engine in engines:
                    outcomes = engine.on_candle_close(bar).outcomes
                    since_update += outcomes
                    since_retrain += outcomes
                    outcomes_seen += outcomes
                summary.candles += 1
            if not learning:
                if session.pending >= write_every:
                    with _timed(summary, "seconds_writing"):
                        writer.write()
                continue
            if since_update >= online_update_every:
                # The trades closed on this candle are known at its close: nothing later is learned.
                with _timed(summary, "seconds_learning"):
                    session.learn()
                summary.model_updates += 1
                since_update = 0
            if session.retraining and outcomes_seen >= adopt_at:
                adopt_retrain()
            if since_retrain >= max(retrain_every, retrain_growth * (outcomes_seen - since_retrain)):
                if session.retraining:
                    adopt_retrain()
                with _timed(summary, "seconds_writing"):
                    writer.write()
                with _timed(summary, "seconds_retraining"):
                    session.retrain_start(as_of=moment + step)
                adopt_at, since_retrain = outcomes_seen + retrain_lag, 0
            elif session.pending >= write_every:
                with _timed(summary, "seconds_writing"):
                    writer.write()
        if session.retraining:
            adopt_retrain()
        with _timed(summary, "seconds_writing"):
            writer.write(final=True)
    finally:
        session.close()
    for engine in engines:
        engine.keep_books(DatabaseBooks(engine.account))
    summary.writes = writer.writes

    summary.seconds = time.perf_counter() - started
    summary.accounts = [account_summary(engine.account) for engine in engines]
    return summary
