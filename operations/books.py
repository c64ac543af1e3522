"""A replay's books: MemoryBooks keeps an account's books in memory, ReplayWriter writes them in bulk.

MemoryBooks keeps an account's decisions, trades and risk facts in memory and hands closed trades
to a LearningSession; `ReplayWriter.write` puts everything in the database in one transaction. A
replay uses it: its accounts are its own, and a replay writes tens of thousands of rows a minute,
which one round trip per row could never keep up with. The rules applied are the live path's
(trading.books.DatabaseBooks): only when rows reach the database differs.
"""
import dataclasses
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Max, Sum
from django.db.models.functions import TruncDate

from learning.ml.hybrid import HybridPrediction
from learning.services.session import LearningSession
from learning.skill import RunningSkill
from learning.types import SignalContext, SignalRecommendation, TradeOutcome
from tradelearn.bulk import bulk_insert, bulk_update_rows
from trading import execution
from trading.models import PaperAccount, PaperTrade, SignalDecision
from trading.selectors import account_open_trades, account_pending_decisions
from trading.services.accounts import account_margin
from trading.services.trades import (
    RiskFacts,
    TradeOpenRequest,
    TradeOpenResult,
    trade_exit_step,
    trade_learning_id,
    trade_outcome,
    trade_prepare_open,
    trade_settle,
    utc_day_start,
)
from trading.services.summaries import account_summaries_add

_TRADE_CHANGES = ("status", "exit_time", "exit_price", "exit_reason", "fees", "net_pnl", "pnl_pct", "best_price")


class MemoryBooks:
    """One account's books kept in memory during a replay (trading.books.Books); its ReplayWriter writes them."""

    def __init__(
        self,
        account: PaperAccount,
        learning: LearningSession,
        outcome_transform: Callable[[TradeOutcome], TradeOutcome] | None = None,
    ):
        self.account = account
        self.learning = learning
        # What learning is told of a closed trade (the shuffled-labels control changes it); None: the outcome itself.
        self.outcome_transform = outcome_transform
        self._open_trades = account_open_trades(account=account)
        self._open_real = [trade for trade in self._open_trades if not trade.is_shadow]
        real_closed = PaperTrade.objects.filter(account=account, is_shadow=False, status=PaperTrade.Status.CLOSED)
        self._last_exit: dict[str, datetime] = dict(real_closed.values("symbol").annotate(last=Max("exit_time")).values_list("symbol", "last"))
        self._realised: dict[datetime, Decimal] = defaultdict(Decimal)
        for day, pnl in real_closed.annotate(day=TruncDate("exit_time", tzinfo=UTC)).values("day").annotate(pnl=Sum("net_pnl")).values_list("day", "pnl"):
            self._realised[datetime(day.year, day.month, day.day, tzinfo=UTC)] = pnl
        self._new_decisions: list[SignalDecision] = []
        self._changed_decisions: dict[int, SignalDecision] = {}
        self._new_trades: list[PaperTrade] = []
        self._changed_trades: dict[int, PaperTrade] = {}
        self._closed: list[tuple[PaperTrade, str]] = []  # closed since the last write, with the id learning saw
        self._observed = 0
        self._later: list[tuple[Callable[..., object], dict]] = []

    def open_trades(self) -> list[PaperTrade]:
        return list(self._open_trades)

    def pending_decisions(self) -> list[SignalDecision]:
        # Those an earlier run left in the database; the engine keeps track of the ones it makes.
        return account_pending_decisions(account=self.account)

    def record_decision(self, decision: SignalDecision) -> None:
        self._new_decisions.append(decision)

    def write_later(self, write: Callable[..., object], **kwargs) -> None:
        self._later.append((write, kwargs))

    def set_reason(self, decision: SignalDecision, reason: str) -> None:
        decision.reason = reason[:255]
        if decision.pk is not None:
            self._changed_decisions[decision.pk] = decision

    def _risk_facts(self, symbol: str, fill_time: datetime) -> RiskFacts:
        last_exit = self._last_exit.get(symbol)
        return RiskFacts(
            open_total=len(self._open_real),
            open_in_symbol=sum(1 for trade in self._open_real if trade.symbol == symbol),
            last_exit=last_exit if last_exit is not None and last_exit <= fill_time else None,
            realised_today=self._realised.get(utc_day_start(fill_time), Decimal(0)),
            margin_in_use=account_margin(self._open_real),
        )

    def open_trade(self, request: TradeOpenRequest) -> TradeOpenResult:
        facts = None if request.is_shadow else self._risk_facts(request.symbol, request.fill_time)
        result = trade_prepare_open(account=self.account, facts=facts, request=request)
        if result.trade is not None:
            self._new_trades.append(result.trade)
            self._open_trades.append(result.trade)
            if not result.trade.is_shadow:
                self._open_real.append(result.trade)
        return result

    def manage_exit(self, trade: PaperTrade, candle: execution.CandleLike) -> PaperTrade | None:
        fill, best_price_moved = trade_exit_step(trade=trade, account=self.account, candle=candle)
        if fill is None:
            if best_price_moved and trade.pk is not None:
                self._changed_trades[trade.pk] = trade
            return None
        trade_settle(trade=trade, account=self.account, exit_time=fill.time, exit_price=fill.price, exit_reason=fill.kind)
        self._open_trades.remove(trade)
        if not trade.is_shadow:
            self._open_real.remove(trade)
            self._last_exit[trade.symbol] = fill.time
            self._realised[utc_day_start(fill.time)] += trade.net_pnl
        if trade.pk is not None:
            self._changed_trades[trade.pk] = trade
        # Learning sees the trade now; it gets its id when written.
        self._observed += 1
        provisional = f"acct{self.account.pk}-unwritten{self._observed}"
        outcome = dataclasses.replace(trade_outcome(trade, self.account), trade_id=provisional)
        self.learning.observe(outcome if self.outcome_transform is None else self.outcome_transform(outcome))
        self._closed.append((trade, provisional))
        return trade

    def recommend(self, context: SignalContext) -> SignalRecommendation:
        return self.learning.recommend(context)

    def predict(self, features: Mapping[str, float]) -> HybridPrediction:
        return self.learning.predict(features)

    def recent_record(self, *, system_type: str, symbol: str, at: datetime) -> dict[str, float]:
        return self.learning.recent_record(system_type=system_type, symbol=symbol, at=at)

    def model_skill(self, system_type: str) -> RunningSkill:
        return self.learning.model_skill(system_type)

    def write(self) -> dict[str, str]:
        """Write the account's new and changed rows (call inside a transaction); returns learning's trade ids."""
        bulk_insert(SignalDecision, self._new_decisions)
        bulk_insert(PaperTrade, self._new_trades)
        bulk_update_rows(SignalDecision, self._changed_decisions.values(), ["reason"])
        bulk_update_rows(PaperTrade, self._changed_trades.values(), _TRADE_CHANGES)
        self.account.save(update_fields=["current_balance", "updated_at"])
        account_summaries_add(decisions=self._new_decisions, opened_trades=self._new_trades, closed_trades=[trade for trade, _ in self._closed])
        for write, kwargs in self._later:
            write(**kwargs)
        self._later = []
        trade_ids = {provisional: trade_learning_id(trade) for trade, provisional in self._closed}
        self._new_decisions, self._new_trades, self._closed = [], [], []
        self._changed_decisions, self._changed_trades = {}, {}
        return trade_ids


class ReplayWriter:
    """Writes the books of a replay's engines and their learning session together, all or nothing."""

    def __init__(self, books: Sequence[MemoryBooks], learning: LearningSession):
        self.books, self.learning = list(books), learning
        self.writes = 0

    @transaction.atomic
    def write(self, *, final: bool = False) -> None:
        """Write everything kept since the last write; the online ensemble is saved only by the `final` one."""
        trade_ids: dict[str, str] = {}
        for books in self.books:
            trade_ids.update(books.write())
        self.learning.write(trade_ids=trade_ids, checkpoint=final)
        self.writes += 1
