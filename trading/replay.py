"""Replay: drive engines over stored candles in time order, learning as they go, in one process.

Every symbol's candles are interleaved by time, so a decision at time t (on any symbol) can
only draw on trades that closed before t. The models learn on a fixed cadence: the online
ensemble after every few closed trades, the batch model every simulated week, each told
`as_of` the current candle so nothing later can leak in.
"""
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
from django.conf import settings
from tqdm import tqdm

from learning.services.models import batch_retrain, online_update
from trading.engine import BarSource, TradingEngine
from trading.marketdata.naming import timeframe_ms
from trading.models import PaperAccount, PaperTrade
from trading.services.trades import model_updates_deferred

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
    progress: bool = True,
) -> ReplaySummary:
    """Run `engines` over `frames` (symbol → OHLCV frame, history before `start` used as warm-up).

    The online models learn after every `online_update_every` outcomes, the batch model is
    retrained after every `retrain_every` outcomes (real and shadow closes), both as of the
    current candle's close.
    """
    online_update_every = online_update_every or settings.REPLAY_ONLINE_UPDATE_EVERY
    retrain_every = retrain_every or settings.REPLAY_RETRAIN_EVERY
    step = timedelta(milliseconds=timeframe_ms(timeframe))
    started = time.perf_counter()

    sources = {symbol: BarSource(symbol=symbol, timeframe=timeframe, frame=frame) for symbol, frame in frames.items()}
    for symbol, frame in frames.items():
        for engine in engines:
            engine.prepare(symbol=symbol, timeframe=timeframe, frame=frame)
    rows = {
        symbol: {moment: row for row, moment in enumerate(source.times) if start <= moment <= end}
        for symbol, source in sources.items()
    }
    timeline = sorted(set().union(*(set(by_time) for by_time in rows.values())))

    summary = ReplaySummary()
    since_update = since_retrain = 0
    # Closes don't queue model updates during a replay: it drives them on its own cadence below.
    with model_updates_deferred():
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
                summary.candles += 1
            if not learning:
                continue
            as_of = moment.to_pydatetime() + step  # this candle's close: its exits are known now
            if since_update >= online_update_every:
                online_update(as_of=as_of)
                summary.model_updates += 1
                since_update = 0
            if since_retrain >= retrain_every:
                summary.retrains += batch_retrain(as_of=as_of).version is not None
                since_retrain = 0

    summary.seconds = time.perf_counter() - started
    summary.accounts = [account_summary(engine.account) for engine in engines]
    return summary
