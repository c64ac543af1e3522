"""Where an engine keeps its books: the Books protocol, and DatabaseBooks, which writes everything as it happens.

The engine decides, fills and exits through its books; the rules they apply are the same
functions whoever keeps them (trade_prepare_open, trade_exit_step, trade_settle, risk_refusal,
get_signal_recommendation, hybrid_predict, the recent record). DatabaseBooks writes every decision, fill and close
at once, under the account's row lock, and learning stores each outcome as the trade closes: live
ticks use it. A replay keeps its books in memory instead (operations.books.MemoryBooks); both
follow the Books protocol and differ only in when rows reach the database.
"""
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Protocol

from django.db import transaction

from learning.ml.hybrid import HybridPrediction
from learning.selectors import model_skill, recent_record_features
from learning.services import get_signal_recommendation
from learning.services.prediction import hybrid_predict
from learning.skill import RunningSkill
from learning.types import SignalContext, SignalRecommendation
from trading import execution
from trading.models import PaperAccount, PaperTrade, SignalDecision
from trading.selectors import account_open_trades, account_pending_decisions
from trading.services.summaries import account_summaries_add
from trading.services.trades import TradeOpenRequest, TradeOpenResult, trade_manage_exit, trade_open


class Books(Protocol):
    """What an engine needs of wherever its account's decisions and trades are kept."""

    account: PaperAccount

    def open_trades(self) -> list[PaperTrade]:
        """The account's open trades (real and shadow), oldest first."""
        ...

    def pending_decisions(self) -> list[SignalDecision]:
        """Decisions recorded but not yet filled or dismissed, oldest first."""
        ...

    def record_decision(self, decision: SignalDecision) -> None: ...

    def write_later(self, write: Callable[..., object], **kwargs) -> None:
        """A write of an engine's own (a strategy's derived data), kept with the books."""
        ...

    def set_reason(self, decision: SignalDecision, reason: str) -> None: ...

    def open_trade(self, request: TradeOpenRequest) -> TradeOpenResult: ...

    def manage_exit(self, trade: PaperTrade, candle: execution.CandleLike) -> PaperTrade | None:
        """The closed trade if `candle` exits it, else None."""
        ...

    def recommend(self, context: SignalContext) -> SignalRecommendation: ...

    def predict(self, features: Mapping[str, float]) -> HybridPrediction: ...

    def recent_record(self, *, system_type: str, symbol: str, at: datetime) -> dict[str, float]: ...

    def model_skill(self, system_type: str) -> RunningSkill:
        """The model's running out-of-sample skill on the system's recent outcomes (the honesty guard's measure)."""
        ...


class DatabaseBooks:
    """Every decision, fill and exit written as it happens: the live path."""

    def __init__(self, account: PaperAccount):
        self.account = account

    def open_trades(self) -> list[PaperTrade]:
        return account_open_trades(account=self.account)

    def pending_decisions(self) -> list[SignalDecision]:
        return account_pending_decisions(account=self.account)

    @transaction.atomic
    def record_decision(self, decision: SignalDecision) -> None:
        decision.save(force_insert=True)
        account_summaries_add(decisions=[decision])

    def write_later(self, write: Callable[..., object], **kwargs) -> None:
        """A write of an engine's own (a strategy's derived data): here at once, in a replay with the books."""
        write(**kwargs)

    def set_reason(self, decision: SignalDecision, reason: str) -> None:
        decision.reason = reason[:255]
        decision.save(update_fields=["reason"])

    def open_trade(self, request: TradeOpenRequest) -> TradeOpenResult:
        return trade_open(account=self.account, request=request)

    def manage_exit(self, trade: PaperTrade, candle: execution.CandleLike) -> PaperTrade | None:
        """The closed trade if `candle` exits it; raises TradeNotOpen if someone closed it meanwhile."""
        return trade_manage_exit(trade=trade, account=self.account, candle=candle)

    def recommend(self, context: SignalContext) -> SignalRecommendation:
        return get_signal_recommendation(context=context)

    def predict(self, features: Mapping[str, float]) -> HybridPrediction:
        return hybrid_predict(features=features)

    def recent_record(self, *, system_type: str, symbol: str, at: datetime) -> dict[str, float]:
        return recent_record_features(system_type=system_type, symbol=symbol, at=at)

    def model_skill(self, system_type: str) -> RunningSkill:
        return model_skill(system_type=system_type)
