"""Replay: drive engines over stored candles in time order, learning as they go, in one process.

Every symbol's candles are interleaved by time, so a decision at time t (on any symbol) can
only draw on trades that closed before t. The models learn on a fixed cadence: the online
ensemble after every few closed trades, the batch model every simulated week, each told
`as_of` the current candle so nothing later can leak in.
"""
import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
from django.conf import settings
from tqdm import tqdm

from trading.engine import Bar, TradingEngine
from trading.features.builder import build_features
from trading.features.indicators import TECHNICAL_FEATURES
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


def _decimals(values: np.ndarray) -> list[Decimal]:
    # repr gives the shortest string that round-trips, so a price read as 36787.42 stays exactly that.
    return [Decimal(repr(float(value))) for value in values]


def replay(
    *,
    engines: list[TradingEngine],
    frames: dict[str, pd.DataFrame],
    timeframe: str,
    start: datetime,
    end: datetime,
    learning: bool = True,
    online_update_every: int | None = None,
    retrain_every: timedelta | None = None,
    progress: bool = True,
) -> ReplaySummary:
    """Run `engines` over `frames` (symbol → OHLCV frame, history before `start` used as warm-up)."""
    online_update_every = online_update_every or settings.REPLAY_ONLINE_UPDATE_EVERY
    retrain_every = retrain_every or timedelta(days=settings.REPLAY_RETRAIN_EVERY_DAYS)
    step = timedelta(milliseconds=timeframe_ms(timeframe))
    started = time.perf_counter()

    series = {}
    for symbol, frame in frames.items():
        features = build_features(frame)
        window = (frame.index >= start) & (frame.index <= end)
        ready = features["ready"].to_numpy()
        matrix = features[list(TECHNICAL_FEATURES)].to_numpy()
        series[symbol] = {
            "times": frame.index[window],
            "rows": np.flatnonzero(window),
            "ready": ready,
            "matrix": matrix,
            "market": features["market_regime"].to_numpy(),
            "volatility": features["volatility_regime"].to_numpy(),
            "prices": {name: frame[name].to_numpy() for name in ("open", "high", "low", "close")},
        }
    timeline = sorted(set().union(*(set(s["times"]) for s in series.values()))) if series else []
    positions = {symbol: dict(zip(s["times"], s["rows"])) for symbol, s in series.items()}

    summary = ReplaySummary()
    closes_since_update = 0
    last_retrain: datetime | None = None
    context = model_updates_deferred() if learning else nullcontext()
    with context:
        for moment in tqdm(timeline, desc="replay", unit="candle", disable=not progress, mininterval=1.0):
            for symbol, s in series.items():
                row = positions[symbol].get(moment)
                if row is None:
                    continue
                features = dict(zip(TECHNICAL_FEATURES, s["matrix"][row].tolist())) if s["ready"][row] else None
                previous = (
                    dict(zip(TECHNICAL_FEATURES, s["matrix"][row - 1].tolist())) if row > 0 and s["ready"][row - 1] else None
                )
                open_, high, low, close = _decimals(np.array([s["prices"][n][row] for n in ("open", "high", "low", "close")]))
                bar = Bar(
                    symbol=symbol,
                    timeframe=timeframe,
                    open_time=moment.to_pydatetime(),
                    open=open_,
                    high=high,
                    low=low,
                    close=close,
                    features=features,
                    previous_features=previous,
                    market_regime=s["market"][row],
                    volatility_regime=s["volatility"][row],
                )
                for engine in engines:
                    result = engine.on_candle_close(bar)
                    closes_since_update += result.closed
                summary.candles += 1
            if not learning:
                continue
            as_of = moment.to_pydatetime() + step  # this candle's close: its exits are known now
            if closes_since_update >= online_update_every:
                from learning.services.models import online_update

                online_update(as_of=as_of)
                summary.model_updates += 1
                closes_since_update = 0
            if last_retrain is None or as_of - last_retrain >= retrain_every:
                from learning.services.models import batch_retrain

                if batch_retrain(as_of=as_of).version is not None:
                    summary.retrains += 1
                last_retrain = as_of

    summary.seconds = time.perf_counter() - started
    summary.accounts = [account_summary(engine.account) for engine in engines]
    return summary
