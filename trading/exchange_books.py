"""An exchange account's live books: written as DatabaseBooks writes them, its real trades filled on the exchange.

The engine is the same for every account: the live tick (operations.ticks) hands it these books
when the account's broker is the exchange, as a replay hands it MemoryBooks.
"""
from functools import cached_property

from trading import brokers, execution
from trading.books import DatabaseBooks
from trading.models import FillSource, PaperAccount, PaperTrade, SignalDecision
from trading.services.exchange_trades import exchange_trade_manage_exit, exchange_trade_open, exchange_trades_catch_up
from trading.services.trades import TradeOpenRequest, TradeOpenResult


class ExchangeBooks(DatabaseBooks):
    """An exchange account's live books: written as DatabaseBooks writes them, its real trades filled on the exchange.

    A taken decision's entry order is queued once the decision is committed (so a tick that
    rolls back never leaves an order behind); the trade opens at the reported fill when the
    engine fills the decision; exits go through the exchange. Shadow trades stay simulated.
    Reading the open trades first closes those whose stop or target filled on the exchange.
    """

    def __init__(self, account: PaperAccount, *, client=None):
        super().__init__(account)
        if client is not None:
            self.client = client

    @cached_property
    def client(self):
        return brokers.exchange_order_client(self.account)

    def open_trades(self) -> list[PaperTrade]:
        exchange_open = PaperTrade.objects.filter(account=self.account, status=PaperTrade.Status.OPEN, fill_source=FillSource.EXCHANGE)
        if exchange_open.exists():
            exchange_trades_catch_up(account=self.account, client=self.client)
        return super().open_trades()

    def record_decision(self, decision: SignalDecision) -> None:
        super().record_decision(decision)
        if decision.taken:
            from trading.tasks import exchange_entry_order_task  # loads the Celery app, which importing trading need not

            exchange_entry_order_task.delay_on_commit(decision.pk)

    def open_trade(self, request: TradeOpenRequest) -> TradeOpenResult:
        if request.is_shadow:
            return super().open_trade(request)
        return exchange_trade_open(account=self.account, request=request, client_for=lambda account: self.client)

    def manage_exit(self, trade: PaperTrade, candle: execution.CandleLike) -> PaperTrade | None:
        if trade.is_shadow or trade.fill_source != FillSource.EXCHANGE:
            return super().manage_exit(trade, candle)  # simulated, or filled before the account moved to the exchange
        return exchange_trade_manage_exit(trade=trade, account=self.account, candle=candle, client=self.client)

