"""Replay: drive engines over stored candles in time order, learning as they go.

Every symbol's candles are interleaved by time, so a decision at time t (on any symbol) can
only draw on trades that closed before t. Closed trades reach the learned statistics at once;
the online ensemble learns after every few closed trades and the batch model is retrained on
a fixed cadence, as of the current candle's close, so nothing later can leak in. Both learn
in worker processes beside the replay, and a retrained model is adopted a fixed number of closed
trades later (as a live retrain is adopted when Celery finishes it), never when the worker
happens to finish: a replay's results do not depend on the machine's speed.

Most candles change nothing: no signal fires and no open trade can exit. So a replay visits
events, not candles (`_Visits`): each engine says, over a symbol's whole history at once, on
which rows it may propose (`busy_rows`); a decision fills on the next row; an open trade is next
looked at on the first candle that leaves its quiet range (`next_row`, a vectorised search of
the lows and highs after it). The symbols' visits are merged in time order by a heap, and what
depends on order across symbols (risk limits, learning, retrains and writes after each step)
sees what a replay of every candle sees; `every_candle` runs that replay (the tests compare).
A live tick calls the same `on_candle_close` on its one candle.

The engines keep their books in memory (operations.books.MemoryBooks, learning.services.session)
and everything is written to the database in one transaction every REPLAY_WRITE_EVERY
outcomes, before each batch retrain and at the end: the same rules as live, without a round
trip per row. A replay cut short leaves the database as of its last write.
"""
import heapq
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
    visited: int = 0  # candles the engines were run on (all of them with every_candle)
    seconds: float = 0.0
    model_updates: int = 0
    retrains: int = 0
    writes: int = 0
    # Where the time went.
    seconds_session: float = 0.0  # starting the learning session: its imports, its evidence and models read, its workers started
    seconds_preparing: float = 0.0  # features, levels and where each engine may act, over whole histories
    seconds_events: float = 0.0  # the engines on the candles visited
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


def _rows_between(source: BarSource, start: datetime, end: datetime) -> range:
    """The rows of `source` opening in [start, end]."""
    return range(source.row_at(start), int(np.searchsorted(source.time_ns, pd.Timestamp(end).as_unit("ns").value, side="right")))


class _Visits:
    """The candles of one symbol a replay visits: those on which some engine may propose, fill or exit.

    On every other candle `on_candle_close` would leave everything as it is, so the replay skips
    it: the rows where a strategy may propose are found over the whole history at once
    (`busy_rows`), the fill of a decision is the next row, and an open trade's next look is
    the first candle that leaves its quiet range (`next_row`). With `every_candle`, every row.
    """

    def __init__(self, source: BarSource, rows: range, engines: list[TradingEngine], *, every_candle: bool = False):
        self.source, self.rows, self.engines = source, rows, engines
        busy = [] if every_candle else sorted(set().union(*(engine.busy_rows(source, rows).tolist() for engine in engines)))
        self._busy = None if every_candle else busy + [rows.stop]
        self._next = 0  # index in _busy of the first busy row not yet passed

    def after(self, row: int) -> int:
        """The row to visit after `row` (at least row + 1; rows.stop when none is left)."""
        if self._busy is None:
            return row + 1
        busy = self._busy
        while busy[self._next] <= row:
            self._next += 1
        return min(busy[self._next], *(engine.next_row(self.source, row) for engine in self.engines))


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
    every_candle: bool = False,
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
    With REPLAY_RETRAIN_DAYS the batch model is retrained in market time instead: as of each
    boundary of that many days from `start` (on the first step at or after it that has new outcomes),
    adopted REPLAY_RETRAIN_LAG_HOURS of market time later, so the retrains' count does not grow with
    the symbols and their cost grows with the rows alone.

    The replay visits only the candles on which something can happen (`_Visits`); with
    `every_candle` it visits every one, as a live tick would, for the same results (the tests compare them).

    `outcome_transform`, if given, is applied to each closed trade's outcome, in close order,
    before learning sees it (the accounts settle on the real result): the shuffled-labels control.
    """
    online_update_every = online_update_every or settings.REPLAY_ONLINE_UPDATE_EVERY
    retrain_every = retrain_every or settings.REPLAY_RETRAIN_EVERY
    write_every = write_every or settings.REPLAY_WRITE_EVERY
    retrain_growth = settings.REPLAY_RETRAIN_GROWTH
    retrain_lag = settings.REPLAY_RETRAIN_LAG
    retrain_period = timedelta(days=settings.REPLAY_RETRAIN_DAYS) if settings.REPLAY_RETRAIN_DAYS else None
    next_retrain_at = start + retrain_period if retrain_period else None  # market-time cadence: the next boundary
    adopt_time = None  # market-time cadence: when the retrain in flight is adopted
    step = timedelta(milliseconds=timeframe_ms(timeframe))
    started = time.perf_counter()
    # First, so that the workers' imports overlap the features and levels computed below.
    summary = ReplaySummary()
    with _timed(summary, "seconds_session"):
        session = LearningSession(learning=learning, background=learning and background)
    since_update = since_retrain = outcomes_seen = 0
    adopt_at = 0  # outcomes seen when the retrain in flight is adopted (counted cadence)

    def adopt_retrain() -> None:
        with _timed(summary, "seconds_retraining"):
            summary.retrains += session.retrain_finish().version is not None

    try:
        with _timed(summary, "seconds_preparing"):
            sources = {symbol: BarSource(symbol=symbol, timeframe=timeframe, frame=frame, correlated=frames) for symbol, frame in frames.items()}
            for symbol, frame in frames.items():
                for engine in engines:
                    engine.prepare(symbol=symbol, timeframe=timeframe, frame=frame)
            visits = [_Visits(source, _rows_between(source, start, end), engines, every_candle=every_candle) for source in sources.values()]
        summary.candles = sum(len(visit.rows) for visit in visits)
        books = [MemoryBooks(engine.account, session, outcome_transform) for engine in engines]
        for engine, engine_books in zip(engines, books):
            engine.keep_books(engine_books)
        writer = ReplayWriter(books, session)

        def adoption_due(moment: datetime) -> bool:
            """Whether the retrain in flight is adopted now: REPLAY_RETRAIN_LAG outcomes, or REPLAY_RETRAIN_LAG_HOURS, after it started."""
            if not session.retraining:
                return False
            return outcomes_seen >= adopt_at if retrain_period is None else moment >= adopt_time

        def retrain_due(moment: datetime) -> bool:
            if retrain_period is None:
                return since_retrain >= max(retrain_every, retrain_growth * (outcomes_seen - since_retrain))
            return since_retrain > 0 and moment >= next_retrain_at

        def after_step(moment: datetime) -> None:
            """What the replay does once every symbol's candle at `moment` has closed: learn, retrain, write."""
            nonlocal since_update, since_retrain, adopt_at, next_retrain_at, adopt_time
            if not learning:
                if session.pending >= write_every:
                    with _timed(summary, "seconds_writing"):
                        writer.write()
                return
            if since_update >= online_update_every:
                # The trades closed on this candle are known at its close: nothing later is learned.
                with _timed(summary, "seconds_learning"):
                    session.learn()
                summary.model_updates += 1
                since_update = 0
            if adoption_due(moment):
                adopt_retrain()
            if retrain_due(moment):
                if session.retraining:
                    adopt_retrain()
                with _timed(summary, "seconds_writing"):
                    writer.write()
                if retrain_period is None:
                    with _timed(summary, "seconds_retraining"):
                        session.retrain_start(as_of=moment + step)
                    adopt_at = outcomes_seen + retrain_lag
                else:
                    # As of the boundary, not this step: a replay of every candle and one of events retrain on the same outcomes.
                    with _timed(summary, "seconds_retraining"):
                        session.retrain_start(as_of=next_retrain_at)
                    adopt_time = next_retrain_at + timedelta(hours=settings.REPLAY_RETRAIN_LAG_HOURS)
                    while next_retrain_at <= moment:
                        next_retrain_at += retrain_period
                since_retrain = 0
            elif session.pending >= write_every:
                with _timed(summary, "seconds_writing"):
                    writer.write()

        # Every moment any symbol has a candle: the steps a replay of every candle takes, of which this visits some.
        timeline = np.unique(np.concatenate([visit.source.time_ns[visit.rows.start : visit.rows.stop] for visit in visits]))
        queue = [(visit.source.time_ns[visit.rows.start], index, visit.rows.start) for index, visit in enumerate(visits) if visit.rows]
        heapq.heapify(queue)
        previous = None  # the last moment visited, in ns
        looping = time.perf_counter()
        with tqdm(total=len(timeline), desc="replay", unit="step", disable=not progress, mininterval=1.0) as bar_progress:
            while queue:
                now = queue[0][0]
                if previous is not None and retrain_period is None and session.retraining and outcomes_seen >= adopt_at:
                    # With no lag, a retrain is adopted after the step that follows its start, even a quiet one.
                    following = timeline[np.searchsorted(timeline, previous, side="right")]
                    if following < now:
                        adopt_retrain()
                while queue and queue[0][0] == now:
                    _, index, row = heapq.heappop(queue)
                    visit = visits[index]
                    bar = visit.source.bar(row)
                    summary.visited += 1
                    for engine in engines:
                        outcomes = engine.on_candle_close(bar).outcomes
                        since_update += outcomes
                        since_retrain += outcomes
                        outcomes_seen += outcomes
                    following = visit.after(row)
                    if following < visit.rows.stop:
                        heapq.heappush(queue, (visit.source.time_ns[following], index, following))
                after_step(bar.open_time)
                previous = now
                if progress:
                    bar_progress.update(int(np.searchsorted(timeline, now, side="right")) - bar_progress.n)
        if session.retraining:
            adopt_retrain()
        with _timed(summary, "seconds_writing"):
            writer.write(final=True)
        summary.seconds_events = time.perf_counter() - looping - summary.seconds_learning - summary.seconds_retraining - summary.seconds_writing
    finally:
        session.close()
    for engine in engines:
        engine.keep_books(DatabaseBooks(engine.account))
    summary.writes = writer.writes

    summary.seconds = time.perf_counter() - started
    summary.accounts = [account_summary(engine.account) for engine in engines]
    return summary
