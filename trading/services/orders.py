"""Orders on an exchange: each placed once under a client order id derived from its decision, its state from the exchange's reports.

A task that places an order may die after sending it and before hearing back; its retry finds
the order row already submitted and asks the exchange about that client order id instead of
sending again (and the exchange refuses a second order with the same id anyway). The state
machine only moves forward: new → partially filled → filled, or to cancelled or rejected; a
report older than what is stored is ignored. Reconciliation compares the exchange's open orders
and positions with the books and pauses the account on anything it cannot explain; the kill
switch pauses accounts and cancels their open orders.
"""
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import ccxt
from django.db import transaction
from django.utils import timezone

from trading.brokers import uses_real_money
from trading.models import ExchangeOrder, PaperAccount, PaperTrade
from trading.services.accounts import account_pause
from tradelearn.notifications import notify

logger = logging.getLogger(__name__)

Status = ExchangeOrder.Status
ROLE_CODES = {"entry": "e", "exit": "x", "stop_loss": "s", "take_profit": "t"}
# Where each state may go next on a new report (a terminal state goes nowhere).
NEXT_STATES = {
    Status.NEW: {Status.NEW, Status.PARTIALLY_FILLED, Status.FILLED, Status.CANCELLED, Status.REJECTED},
    Status.PARTIALLY_FILLED: {Status.PARTIALLY_FILLED, Status.FILLED, Status.CANCELLED},
}


def client_order_id(*, account_id: int, decision_id: int, role: str) -> str:
    """The same decision and role always give the same id (Binance allows 36 characters of [A-Za-z0-9-_.:/])."""
    return f"tl-{account_id}-{decision_id}-{ROLE_CODES[role]}"


def _decimal(value) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _status_of(report: dict) -> str:
    state = (report.get("status") or "").lower()
    filled = _decimal(report.get("filled")) or Decimal(0)
    if state == "closed":
        return Status.FILLED
    if state in ("canceled", "cancelled", "expired"):
        return Status.CANCELLED
    if state == "rejected":
        return Status.REJECTED
    return Status.PARTIALLY_FILLED if filled > 0 else Status.NEW


@transaction.atomic
def order_apply_report(*, order_id: int, report: dict) -> ExchangeOrder:
    """Move the order to what the exchange reports, if that is a step forward; fills and fees as reported."""
    order = ExchangeOrder.objects.select_for_update().get(pk=order_id)
    status = _status_of(report)
    filled = _decimal(report.get("filled")) or Decimal(0)
    if order.status in ExchangeOrder.TERMINAL or status not in NEXT_STATES[order.status] or filled < order.filled:
        logger.info("%s: report %s (filled %s) does not move it on; kept as %s", order.client_order_id, status, filled, order.status)
        return order
    order.status = status
    order.filled = filled
    order.average_price = _decimal(report.get("average")) or order.average_price
    order.exchange_order_id = str(report.get("id") or order.exchange_order_id)
    reported_at = report.get("lastTradeTimestamp") or report.get("lastUpdateTimestamp") or report.get("timestamp")
    if filled > 0 and reported_at:
        order.filled_at = datetime.fromtimestamp(reported_at / 1000, tz=UTC)
    fees = [fee for fee in (report.get("fees") or ([report["fee"]] if report.get("fee") else [])) if fee and fee.get("cost") is not None]
    if fees:
        order.fee = sum((_decimal(fee["cost"]) for fee in fees), Decimal(0))
        order.fee_currency = fees[0].get("currency") or ""
    order.last_report = report.get("info") or {}
    order.save()
    return order


def _fees_from_trades(order: ExchangeOrder, client) -> ExchangeOrder:
    """Futures order reports carry no fee: the fills (GET userTrades) do. Summed and stored on the order."""
    if not order.exchange_order_id or order.filled == 0:
        return order
    fills = client.fetch_my_trades(order.market, params={"orderId": order.exchange_order_id})
    costs = [(fill.get("fee") or {}) for fill in fills]
    total = sum((_decimal(fee.get("cost")) or Decimal(0) for fee in costs), Decimal(0))
    currency = next((fee.get("currency") for fee in costs if fee.get("currency")), "")
    ExchangeOrder.objects.filter(pk=order.pk).update(fee=total, fee_currency=currency or "")
    order.fee, order.fee_currency = total, currency or ""
    return order


def _lookup_params(order: ExchangeOrder) -> dict:
    # Conditional (trigger) orders live apart from plain ones on some exchanges (Binance futures' algo orders).
    return {"origClientOrderId": order.client_order_id, **({"trigger": True} if order.trigger_price is not None else {})}


def _triggered_order_report(order: ExchangeOrder, report: dict, client) -> dict | None:
    """What a conditional order's report says of its fill: for Binance's algo orders, the market order it placed when triggered.

    None while it has not triggered, or when it says triggered without naming the order placed.
    """
    actual_id = str((report.get("info") or {}).get("actualOrderId") or "")
    if actual_id:
        return client.fetch_order(actual_id, order.market)
    return None if _status_of(report) == Status.FILLED and not (_decimal(report.get("filled")) or 0) else report


def order_apply_exchange_report(*, order: ExchangeOrder, report: dict, client) -> ExchangeOrder:
    """order_apply_report for any order, conditional ones followed to their fill, with fees from the fills."""
    if order.trigger_price is not None:
        report = _triggered_order_report(order, report, client)
        if report is None:
            return order
    return _fees_from_trades(order_apply_report(order_id=order.pk, report=report), client)


def order_refresh(*, order: ExchangeOrder, client) -> ExchangeOrder:
    """Ask the exchange about a sent order that is not final yet, and move it on from its answer."""
    if order.status in ExchangeOrder.TERMINAL or order.submitted_at is None:
        return order
    return order_apply_exchange_report(order=order, report=client.fetch_order(None, order.market, params=_lookup_params(order)), client=client)


def order_cancel(*, order: ExchangeOrder, client) -> ExchangeOrder:
    """Cancel what is left of a sent order; one that is already gone is brought up to date instead."""
    if order.status in ExchangeOrder.TERMINAL or order.submitted_at is None:
        return order
    try:
        answer = client.cancel_order(order.exchange_order_id or None, order.market, params=_lookup_params(order))
    except ccxt.OrderNotFound:
        answer = client.fetch_order(None, order.market, params=_lookup_params(order))
    if order.trigger_price is not None:
        # Binance's algo cancel answers only "success": its state (cancelled, or triggered just before) is asked.
        return order_refresh(order=order, client=client)
    if _status_of(answer) == Status.CANCELLED and not answer.get("filled"):
        # A cancel answer may leave out the filled quantity (Binance's algo cancel does): keep what is known.
        answer = {**answer, "filled": float(order.filled), "average": order.average_price and float(order.average_price)}
    return _fees_from_trades(order_apply_report(order_id=order.pk, report=answer), client)


def order_place(
    *, account: PaperAccount, decision_id: int, role: str, market: str, side: str, amount: Decimal, client,
    order_type: str = "market", trigger_price: Decimal | None = None, trade: PaperTrade | None = None,
    reduce_only: bool = False, ask_first: bool = False,
) -> ExchangeOrder:  # fmt: skip
    """Place the decision's order once; a repeat call (a retried task, a restart) returns the same order, asking the exchange if needed.

    A stop-loss or take-profit with a `trigger_price` is placed as the exchange's conditional
    market order (ccxt's stopLossPrice / takeProfitPrice: Binance futures' STOP_MARKET /
    TAKE_PROFIT_MARKET), reduce-only. `ask_first` asks the exchange about the client order id
    before sending even a new row: for callers inside a transaction that may roll back after the
    order went out (an engine tick), where the row saying it was sent would roll back with it.
    """
    cid = client_order_id(account_id=account.pk, decision_id=decision_id, role=role)
    order, _ = ExchangeOrder.objects.get_or_create(
        client_order_id=cid,
        defaults=dict(
            account=account, decision_id=decision_id, trade=trade, role=role, exchange=client.id, market=market, side=side,
            order_type=order_type, amount=amount, trigger_price=trigger_price, is_real_money=uses_real_money(account),
        ),
    )  # fmt: skip
    if order.status in ExchangeOrder.TERMINAL:
        return order
    if order.submitted_at is not None or ask_first:
        # Sent before, answer unknown (the worker died, or the connection dropped): ask, never resend blind.
        try:
            report = client.fetch_order(None, market, params=_lookup_params(order))
        except ccxt.OrderNotFound:
            report = None  # it never reached the exchange: send it now
        if report is not None:
            return order_apply_exchange_report(order=order, report=report, client=client)
    ExchangeOrder.objects.filter(pk=order.pk).update(submitted_at=timezone.now())
    order.submitted_at = timezone.now()
    params = {"newClientOrderId": cid}
    if trigger_price is not None:
        params.update({"takeProfitPrice" if role == "take_profit" else "stopLossPrice": float(trigger_price), "reduceOnly": True})
    elif reduce_only:
        params["reduceOnly"] = True
    try:
        report = client.create_order(market, order_type, side, float(amount), None, params)
    except ccxt.ExchangeError as error:  # the exchange answered no (margin, size, symbol, keys); network errors propagate and are retried
        return _reject(order, f"{type(error).__name__}: {error}"[:255])
    if trigger_price is not None:
        return _fees_from_trades(order_apply_report(order_id=order.pk, report=report), client)  # just placed: not triggered yet
    return order_apply_exchange_report(order=order, report=report, client=client)


@transaction.atomic
def _reject(order: ExchangeOrder, reason: str) -> ExchangeOrder:
    order = ExchangeOrder.objects.select_for_update().get(pk=order.pk)
    if order.status not in ExchangeOrder.TERMINAL:
        order.status, order.reject_reason = Status.REJECTED, reason
        order.save(update_fields=["status", "reject_reason", "updated_at"])
        logger.warning("%s rejected by the exchange: %s", order.client_order_id, reason)
    return order


@dataclass
class ReconciliationReport:
    account: str
    orders_updated: int = 0
    unexplained: list[str] = field(default_factory=list)
    paused: bool = False


def account_reconcile(*, account: PaperAccount, client, markets: list[str]) -> ReconciliationReport:
    """Match the exchange's open orders and positions with the books; anything unexplained pauses the account.

    Our orders still open here are brought up to date from the exchange's reports. An open order
    with an id this account did not give, or a position that the account's open trades do not
    add up to, is reported and never guessed at.
    """
    report = ReconciliationReport(account=account.name)
    known = {order.client_order_id: order for order in ExchangeOrder.objects.filter(account=account)}
    seen = set()
    for market in markets:
        for exchange_order in client.fetch_open_orders(market):
            cid = exchange_order.get("clientOrderId")
            if cid in known:
                seen.add(cid)
                order_apply_report(order_id=known[cid].pk, report=exchange_order)
                report.orders_updated += 1
            else:
                report.unexplained.append(
                    f"open order {exchange_order.get('id')} ({exchange_order.get('side')} {exchange_order.get('amount')} {market}, client id {cid!r}) was not placed by {account.name}"
                )
    for order in ExchangeOrder.objects.filter(account=account).exclude(status__in=ExchangeOrder.TERMINAL).exclude(client_order_id__in=seen):
        if order.submitted_at is None:
            continue
        try:
            order_refresh(order=order, client=client)
        except ccxt.OrderNotFound:
            report.unexplained.append(f"order {order.client_order_id} was sent but the exchange does not know it")
            continue
        report.orders_updated += 1
    for position in client.fetch_positions(markets):
        contracts = _decimal(position.get("contracts")) or Decimal(0)
        held = contracts if position.get("side") != "short" else -contracts
        expected = _expected_position(account, position.get("symbol") or "")
        if held != expected:
            report.unexplained.append(f"position {held} {position.get('symbol')} on the exchange; the books hold {expected}")
    if report.unexplained:
        account_pause(account_id=account.pk)
        report.paused = True
        logger.error("reconciliation of %s: %d unexplained, account paused: %s", account.name, len(report.unexplained), "; ".join(report.unexplained))
        notify("reconciliation_mismatch", f"{account.name} paused: " + "; ".join(report.unexplained), account=account.name, unexplained=report.unexplained)
    return report


def _expected_position(account: PaperAccount, market: str) -> Decimal:
    """Net contracts the account's open real trades hold in `market` (filled entry orders only)."""
    from trading.marketdata.naming import normalize_symbol

    trades = PaperTrade.objects.filter(account=account, is_shadow=False, status=PaperTrade.Status.OPEN, symbol=normalize_symbol(market))
    return sum(((1 if trade.side == "long" else -1) * trade.quantity for trade in trades), Decimal(0))


def kill_switch(*, client_for, account_id: int | None = None) -> dict[str, int]:
    """Stop trading: pause the account (or every account) and cancel its open exchange orders. Returns orders cancelled per account."""
    accounts = PaperAccount.objects.order_by("pk")
    if account_id is not None:
        accounts = accounts.filter(pk=account_id)
    cancelled = {}
    for account in accounts:
        account_pause(account_id=account.pk)
        cancelled[account.name] = 0
        open_orders = ExchangeOrder.objects.filter(account=account).exclude(status__in=ExchangeOrder.TERMINAL).exclude(submitted_at=None)
        if not open_orders.exists():
            continue
        client = client_for(account)
        for order in open_orders:
            cancelled[account.name] += order_cancel(order=order, client=client).status == Status.CANCELLED
    scope = "every account" if account_id is None else ", ".join(cancelled)
    logger.warning("KILL SWITCH: %s paused, %d open orders cancelled", scope, sum(cancelled.values()))
    notify("kill_switch", f"kill switch: {scope} paused, {sum(cancelled.values())} open orders cancelled", cancelled=cancelled)
    return cancelled
