"""Where an engine keeps its books: DatabaseBooks, every decision, fill and exit written as it happens.

The engine decides, fills and exits through its books; the rules they apply are the same
functions whoever keeps them (trade_prepare_open, trade_exit_step, trade_settle, risk_refusal,
get_signal_recommendation, hybrid_predict). DatabaseBooks writes every decision, fill and close
at once, under the account's row lock, and learning stores each outcome as the trade closes: live
ticks use it. A replay keeps its books in memory instead (operations.books.MemoryBooks), with the
same interface, and differs only in when rows reach the database.
"""
from collections.abc import Callable, Mapping

from learning.ml.hybrid import HybridPrediction
from learning.services import get_signal_recommendation
from learning.services.prediction import hybrid_predict
from learning.types import SignalContext, SignalRecommendation
from trading import execution
from trading.models import PaperAccount, PaperTrade, SignalDecision
from trading.services.trades import TradeOpenResult, trade_manage_exit, trade_open


class DatabaseBooks:
    """Every decision, fill and exit written as it happens: the live path."""

    def __init__(self, account: PaperAccount):
        self.account = account

    def open_trades(self) -> list[PaperTrade]:
        return list(PaperTrade.objects.filter(account=self.account, status=PaperTrade.Status.OPEN).order_by("pk"))

    def pending_decisions(self) -> list[SignalDecision]:
        return list(SignalDecision.objects.filter(account=self.account, trade__isnull=True, reason="").order_by("pk"))

    def record_decision(self, decision: SignalDecision) -> None:
        decision.save(force_insert=True)

    def write_later(self, write: Callable[..., object], **kwargs) -> None:
        """A write of an engine's own (a strategy's derived data): here at once, in a replay with the books."""
        write(**kwargs)

    def set_reason(self, decision: SignalDecision, reason: str) -> None:
        decision.reason = reason[:255]
        decision.save(update_fields=["reason"])

    def open_trade(self, **request) -> TradeOpenResult:
        return trade_open(account=self.account, **request)

    def manage_exit(self, trade: PaperTrade, candle: execution.CandleLike) -> PaperTrade | None:
        """The closed trade if `candle` exits it; raises TradeNotOpen if someone closed it meanwhile."""
        return trade_manage_exit(trade=trade, account=self.account, candle=candle)

    def recommend(self, context: SignalContext) -> SignalRecommendation:
        return get_signal_recommendation(context=context)

    def predict(self, features: Mapping[str, float]) -> HybridPrediction:
        return hybrid_predict(features=features)
