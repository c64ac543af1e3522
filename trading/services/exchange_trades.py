"""Trades filled on an exchange: the entry order placed when a decision is taken, the trade opened and closed at the reported fills.

The engine's rules stay the simulator's: a decision made on the close of candle t fills at
the open of t+1. For an exchange account that open is now, so the entry order is placed as
soon as the decision is committed (entry_order_place, run by a task), sized by the same risk
limits and position sizing as a paper fill. When the engine's next tick fills the decision, the
trade takes the exchange's average price, filled quantity and fees (what is still unfilled by
then is cancelled: the decision's moment has passed). Its stop-loss and take-profit are then
placed as the exchange's conditional orders where ccxt supports them (a stop that trails or
moves to breakeven stays with the engine); exits the exchange does not hold are sent as
reduce-only market orders when the engine's rules say so. Every tick first catches up with
the exchange: a trade whose stop or target filled there is closed at that fill. A closed
exchange trade is stored and handed to learning exactly like a paper trade, flagged as
exchange-filled (PaperTrade.fill_source).
"""
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

import ccxt
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from trading import execution
from trading.marketdata.naming import normalize_symbol, timeframe_ms
from trading.models import Candle, ExchangeOrder, FillSource, PaperAccount, PaperTrade, SignalDecision
from trading.services.orders import client_order_id, order_cancel, order_place, order_refresh
from trading.services.trades import (
    Refusal,
    ReportedFill,
    TradeOpenRequest,
    TradeOpenResult,
    risk_refusal,
    trade_close,
    trade_exit_step,
    trade_open,
    trade_risk_facts,
)

logger = logging.getLogger(__name__)

Status = ExchangeOrder.Status
PROTECTIVE_ROLES = ("stop_loss", "take_profit")
# Which ccxt capability places each protective order as a conditional order on the exchange.
PROTECTIVE_CAPABILITY = {"stop_loss": "createStopLossOrder", "take_profit": "createTakeProfitOrder"}


def exchange_market(symbol: str) -> str:
    """The ccxt market symbol (among TRADING_MARKETS) of a stored symbol: BTCUSDT → BTC/USDT:USDT."""
    for market in settings.TRADING_MARKETS:
        if normalize_symbol(market) == symbol:
            return market
    raise ValueError(f"{symbol} is not among TRADING_MARKETS ({', '.join(settings.TRADING_MARKETS)}): no exchange market to place it on.")


def _closing_side(trade: PaperTrade) -> str:
    return "sell" if trade.side == "long" else "buy"


def _quote_fee(order: ExchangeOrder) -> Decimal:
    """The order's reported fee in the market's quote (or settle) currency; estimated at the account's fee rate if charged in another coin."""
    base_quote, _, settle = order.market.partition(":")
    if not order.fee_currency or order.fee_currency in (base_quote.partition("/")[2], settle):
        return order.fee
    logger.warning(
        "%s: fee %s charged in %s, not the quote currency; the account's fee rate is used instead", order.client_order_id, order.fee, order.fee_currency
    )  # fmt: skip
    notional = execution.notional_for(quantity=order.filled, price=order.average_price)
    return execution.fee_for(notional=notional, fee_rate=order.account.fee_rate)


def entry_order_place(*, decision_id: int, client_for: Callable[[PaperAccount], object]) -> ExchangeOrder | None:
    """Place a taken decision's entry (a market order) on the exchange, once; None when none should go.

    Sized as trade_open would size it, on the decision candle's close as the price estimate,
    and refused by the same risk limits (a paused account included), so the exchange never
    holds a position the paper rules would have refused. A repeat call returns the same order.
    """
    decision = SignalDecision.objects.select_related("account").filter(pk=decision_id).first()
    if decision is None or not decision.taken or decision.account.broker != "exchange":
        return None
    account, market = decision.account, exchange_market(decision.symbol)
    side = "buy" if decision.side == "long" else "sell"
    existing = ExchangeOrder.objects.filter(decision=decision, role="entry").first()
    if existing is not None:
        return order_place(account=account, decision_id=decision.pk, role="entry", market=market, side=side, amount=existing.amount, client=client_for(account))
    fill_time = decision.candle_time + timedelta(milliseconds=timeframe_ms(decision.timeframe))
    facts = trade_risk_facts(account, decision.symbol, fill_time)
    refusal = risk_refusal(account, decision.symbol, fill_time, facts)
    if refusal is not None:
        return _not_placed(decision, refusal[1])
    price = (
        Candle.objects.filter(symbol=decision.symbol, timeframe=decision.timeframe, open_time=decision.candle_time)
        .order_by("exchange").values_list("close", flat=True).first()
    )  # fmt: skip
    if price is None:
        return _not_placed(decision, f"no stored {decision.timeframe} candle at {decision.candle_time:%Y-%m-%d %H:%M} to size it on")
    quantity = execution.position_quantity(
        equity=account.current_balance, free_balance=account.current_balance - facts.margin_in_use,
        size_fraction=Decimal(repr(decision.recommendation["plan"]["size"])), entry_price=price, fee_rate=account.fee_rate,
    )  # fmt: skip
    try:
        client = client_for(account)
    except ImproperlyConfigured as error:  # no keys: nothing can be placed, and the decision says why
        logger.error("%s: %s", account.name, error)
        return _not_placed(decision, str(error))
    client.load_markets()
    try:
        amount = Decimal(client.amount_to_precision(market, float(quantity))) if quantity > 0 else Decimal(0)
    except ccxt.InvalidOrder:
        amount = Decimal(0)
    if amount <= 0:
        return _not_placed(decision, f"{quantity} {decision.symbol} is below the exchange's smallest order")
    return order_place(account=account, decision_id=decision.pk, role="entry", market=market, side=side, amount=amount, client=client)


def _not_placed(decision: SignalDecision, why: str) -> None:
    """Record why no entry went out as an entry order never sent (rejected here): the fill then says why, and the decision is followed as a shadow."""
    logger.info("No entry order for %s: %s", decision, why)
    ExchangeOrder.objects.get_or_create(
        client_order_id=client_order_id(account_id=decision.account_id, decision_id=decision.pk, role="entry"),
        defaults=dict(
            account_id=decision.account_id, decision=decision, role="entry", exchange=settings.TRADING_EXCHANGE,
            market=exchange_market(decision.symbol), side="buy" if decision.side == "long" else "sell", order_type="market",
            amount=0, status=Status.REJECTED, reject_reason=why[:255],
        ),
    )  # fmt: skip
    return None


def exchange_trade_open(*, account: PaperAccount, request: TradeOpenRequest, client_for: Callable[[PaperAccount], object]) -> TradeOpenResult:
    """Open the real trade of a decision at its entry order's reported fill, and place its protective orders.

    Not opened (Refusal.NOT_FILLED) when no entry order went out or it filled nothing; the
    engine then follows the decision as a shadow trade, as after any refusal.
    """
    order = ExchangeOrder.objects.filter(decision=request.decision, role="entry").first() if request.decision else None
    if order is None:
        return TradeOpenResult(refusal=Refusal.NOT_FILLED, detail="no entry order was placed on the exchange (its task has not run)")
    if order.submitted_at is None and order.status == Status.REJECTED:
        return TradeOpenResult(refusal=Refusal.NOT_FILLED, detail=f"no entry order placed: {order.reject_reason}")
    client = client_for(account)
    if order.status not in ExchangeOrder.TERMINAL:
        order = order_refresh(order=order, client=client)
    if order.status not in ExchangeOrder.TERMINAL:
        # The fill was due at this candle's open; what is still unfilled by its close is not wanted any more.
        order = order_cancel(order=order, client=client)
    if order.filled <= 0 or order.average_price is None:
        detail = f"entry order {order.client_order_id} {order.get_status_display().lower()}, nothing filled"
        return TradeOpenResult(refusal=Refusal.NOT_FILLED, detail=f"{detail}: {order.reject_reason}" if order.reject_reason else detail)
    fill = ReportedFill(price=order.average_price, quantity=order.filled, fee=_quote_fee(order))
    result = trade_open(account=account, request=request, fill=fill)
    ExchangeOrder.objects.filter(pk=order.pk).update(trade=result.trade)
    _protective_orders_place(trade=result.trade, market=order.market, client=client)
    return result


def _protective_orders_place(*, trade: PaperTrade, market: str, client) -> None:
    moving_stop = bool(trade.trailing_stop_pct or trade.breakeven_trigger_pct)
    prices = {"stop_loss": None if moving_stop else trade.stop_loss_price, "take_profit": trade.take_profit_price}
    for role, price in prices.items():
        if price is None or not client.has.get(PROTECTIVE_CAPABILITY[role]):
            continue  # the engine watches this exit itself
        order = order_place(
            account=trade.account, decision_id=trade.decision_id, role=role, market=market, side=_closing_side(trade),
            amount=trade.quantity, client=client, trigger_price=price, trade=trade, ask_first=True,
        )  # fmt: skip
        if order.status == Status.REJECTED:
            logger.warning("%s: the exchange refused its %s order (%s); the engine watches it", trade, role, order.reject_reason)


def _live_protective_orders(trade: PaperTrade) -> list[ExchangeOrder]:
    return list(
        ExchangeOrder.objects.filter(trade=trade, role__in=PROTECTIVE_ROLES)
        .exclude(status__in=(Status.REJECTED, Status.CANCELLED)).order_by("pk")
    )  # fmt: skip


def exchange_trades_catch_up(*, account: PaperAccount, client) -> list[PaperTrade]:
    """Close the account's exchange trades whose stop-loss or take-profit filled on the exchange, at that fill."""
    closed = []
    trades = PaperTrade.objects.filter(account=account, status=PaperTrade.Status.OPEN, is_shadow=False, fill_source=FillSource.EXCHANGE)
    for trade in trades.order_by("pk"):
        protective = [order_refresh(order=order, client=client) for order in _live_protective_orders(trade)]
        done = next((order for order in protective if order.status == Status.FILLED and order.filled > 0), None)
        if done is None:
            continue
        for other in protective:
            if other.pk != done.pk:
                order_cancel(order=other, client=client)
        closed.append(_close_at_fill(trade, done, exit_reason=done.role, otherwise_at=done.updated_at))
    return closed


def exchange_trade_manage_exit(*, trade: PaperTrade, account: PaperAccount, candle: execution.CandleLike, client) -> PaperTrade | None:
    """The engine's exit rules for an exchange trade: exits the exchange holds are left to it, others sent as market orders."""
    fill, best_price_moved = trade_exit_step(trade=trade, account=account, candle=candle)
    if fill is None:
        if best_price_moved:
            trade.save(update_fields=["best_price"])
        return None
    protective = _live_protective_orders(trade)
    if fill.kind in {order.role for order in protective}:
        return None  # the exchange's own order takes this exit; the next tick's catch-up closes the trade at its fill
    for order in protective:
        order = order_cancel(order=order, client=client)
        if order.status == Status.FILLED and order.filled > 0:  # it triggered just before the cancel
            return _close_at_fill(trade, order, exit_reason=order.role, otherwise_at=_candle_end(candle, trade.timeframe))
    exit_order = order_place(
        account=account, decision_id=trade.decision_id, role="exit", market=exchange_market(trade.symbol), side=_closing_side(trade),
        amount=trade.quantity, client=client, trade=trade, reduce_only=True, ask_first=True,
    )  # fmt: skip
    if exit_order.filled <= 0 or exit_order.average_price is None:
        logger.error("%s: %s exit order %s filled nothing (%s); the trade stays open", trade, fill.kind, exit_order.client_order_id, exit_order.reject_reason or exit_order.status)
        return None
    return _close_at_fill(trade, exit_order, exit_reason=fill.kind, otherwise_at=_candle_end(candle, trade.timeframe))


def _candle_end(candle: execution.CandleLike, timeframe: str) -> datetime:
    return candle.open_time + timedelta(milliseconds=timeframe_ms(timeframe))


def _close_at_fill(trade: PaperTrade, order: ExchangeOrder, *, exit_reason: str, otherwise_at: datetime) -> PaperTrade:
    if order.filled != trade.quantity:
        logger.warning("%s: exit %s filled %s of %s; reconciliation will report the difference", trade, order.client_order_id, order.filled, trade.quantity)
    exit_time = max(trade.entry_time, order.filled_at or otherwise_at)
    return trade_close(trade=trade, exit_time=exit_time, exit_price=order.average_price, exit_reason=exit_reason, exit_fee=_quote_fee(order))
