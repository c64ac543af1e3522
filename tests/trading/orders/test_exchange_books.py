"""An exchange account's engine ticks against Binance USDⓈ-M replies (only ccxt's HTTP layer stubbed): entries, fills, exits, learning."""
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import ccxt
import pytest
import requests

from learning.models import TrainingRecord
from operations.ticks import engine_tick
from tests.conftest import BUNDLED_CANDLES
from tests.trading.orders.binance_futures import ScriptedBinanceFutures, algo_body, fill_body, order_body, position_body
from trading import brokers
from trading.exchange_books import ExchangeBooks
from trading.models import Candle, ExchangeOrder, PaperAccount, PaperTrade, SignalDecision
from trading.services.accounts import account_create, account_pause
from trading.services.candles import candles_import
from trading.services.exchange_trades import entry_order_place
from trading.services.orders import account_reconcile, client_order_id

pytestmark = pytest.mark.django_db
EXCHANGE, MARKET = "binanceusdm", "BTC/USDT:USDT"
START = datetime(2022, 5, 10, tzinfo=UTC)
NOT_FOUND = (400, {"code": -2013, "msg": "Order does not exist."})


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@pytest.fixture
def session(monkeypatch, settings):
    settings.TRADING_EXCHANGE = EXCHANGE
    settings.TRADING_MARKETS = [MARKET]
    monkeypatch.setenv("EXCHANGE_API_KEY", "test-api-key")
    monkeypatch.setenv("EXCHANGE_API_SECRET", "test-api-secret")
    session = ScriptedBinanceFutures()
    real_client = brokers.exchange_order_client
    monkeypatch.setattr(brokers, "exchange_order_client", lambda account, session=session: real_client(account, session=session))
    return session


@pytest.fixture
def account(db, session) -> PaperAccount:
    candles_import(path=BUNDLED_CANDLES / "BTCUSDT-1h.csv", exchange=EXCHANGE)
    account = account_create(name="testnet-paper", system_type="paper_trading", starting_balance=Decimal("100000"))
    PaperAccount.objects.filter(pk=account.pk).update(broker="exchange")
    account.refresh_from_db()
    return account


def tick(account, at):
    return engine_tick(account_id=account.pk, symbol="BTCUSDT", timeframe="1h", exchange=EXCHANGE, now=at)


def next_open(decision: SignalDecision) -> Candle:
    return Candle.objects.get(exchange=EXCHANGE, symbol="BTCUSDT", timeframe="1h", open_time=decision.candle_time + timedelta(hours=1))


def entry_reply(status: str, *, part: str = "1"):
    """The exchange's answer to the entry: `part` of the quantity filled at the next candle's open, 20 s in."""

    def reply(params):
        decision = SignalDecision.objects.get(pk=int(params["newClientOrderId"].split("-")[2]))
        candle = next_open(decision)
        executed = str((Decimal(params["quantity"]) * Decimal(part)).quantize(Decimal("0.001"))) if status != "NEW" else "0"
        return order_body(
            params["newClientOrderId"], status, executed=executed, average=str(candle.open) if executed != "0" else "0",
            quantity=params["quantity"], side=params["side"], update_time=ms(candle.open_time) + 20_000,
        )  # fmt: skip

    return reply


def algo_reply(params):
    return algo_body(
        params["clientAlgoId"], "NEW", order_type=params["type"], side=params["side"], quantity=params["quantity"],
        trigger_price=params["triggerPrice"], algo_id=7001 if params["type"] == "STOP_MARKET" else 7002,
    )  # fmt: skip


def tick_hourly_until(account, capture, found) -> datetime:
    """Tick hour by hour from START, committing as a worker would (so queued tasks run), until `found()`; returns that hour."""
    at = START
    tick(account, at)
    for _ in range(24 * 20):
        at += timedelta(hours=1)
        with capture(execute=True):
            tick(account, at)
        if found():
            return at
    raise AssertionError("nothing found in 20 days of candles")


def tick_until_an_entry(account, capture) -> tuple[datetime, ExchangeOrder]:
    """Tick until a taken decision's entry goes out; then pause the account, so only this trade's life is followed."""
    entries = ExchangeOrder.objects.filter(account=account, role="entry")
    at = tick_hourly_until(account, capture, entries.exists)
    account_pause(account_id=account.pk)
    return at, entries.get()


def test_a_tick_places_the_entry_the_trade_takes_the_exchange_fill_and_the_target_closes_it_on_the_exchange(
    account, session, django_capture_on_commit_callbacks
):
    session.answer("POST", "/fapi/v1/order", entry_reply("FILLED"))
    session.answer("GET", "/fapi/v1/userTrades", lambda params: [fill_body(4001, quantity="0.001", price="1", commission="0.0123", fill_id=1)])
    at, entry = tick_until_an_entry(account, django_capture_on_commit_callbacks)
    decision = entry.decision
    assert entry.client_order_id == client_order_id(account_id=account.pk, decision_id=decision.pk, role="entry")
    posted = session.calls("POST", "/fapi/v1/order")[0]
    assert posted["newClientOrderId"] == entry.client_order_id and posted["type"] == "MARKET"
    assert posted["side"] == ("BUY" if decision.side == "long" else "SELL")
    assert (entry.status, entry.fee) == ("filled", Decimal("0.0123"))
    assert not PaperTrade.objects.filter(account=account, is_shadow=False).exists()  # the trade opens when the engine fills the decision

    # The next tick fills the decision: the trade is the exchange's fill, and its exits go to the exchange.
    session.answer("GET", "/fapi/v1/algoOrder", NOT_FOUND, NOT_FOUND)  # asked first: never sent before
    session.answer("POST", "/fapi/v1/algoOrder", algo_reply, algo_reply)
    tick(account, at + timedelta(hours=1))
    trade = PaperTrade.objects.get(account=account, is_shadow=False)
    assert (trade.fill_source, trade.entry_price, trade.quantity, trade.fees) == ("exchange", next_open(decision).open, entry.amount, Decimal("0.0123"))
    assert trade.entry_time == next_open(decision).open_time
    algo = session.calls("POST", "/fapi/v1/algoOrder")
    assert [(call["type"], call["reduceOnly"], Decimal(call["quantity"])) for call in algo] == [
        ("STOP_MARKET", "true", trade.quantity), ("TAKE_PROFIT_MARKET", "true", trade.quantity)
    ]
    assert [Decimal(call["triggerPrice"]) for call in algo] == [trade.stop_loss_price.quantize(Decimal("0.1")), trade.take_profit_price.quantize(Decimal("0.1"))]
    stop, target = ExchangeOrder.objects.filter(trade=trade).exclude(role="entry").order_by("pk")
    assert (stop.role, stop.status, target.role, target.status) == ("stop_loss", "new", "take_profit", "new")

    # The target triggers on the exchange; the next tick catches up: closed at that fill, its fee, the stop cancelled.
    close_side = "SELL" if trade.side == "long" else "BUY"
    exit_price, filled_at = str(trade.take_profit_price.quantize(Decimal("0.1"))), ms(trade.entry_time + timedelta(minutes=150))
    session.answer("GET", "/fapi/v1/algoOrder", algo_reply_for(stop, "NEW"), algo_reply_for(target, "TRIGGERED", actual="5002"))
    session.answer("GET", "/fapi/v1/order", order_body("autoclose-5002", "FILLED", executed=str(trade.quantity), average=exit_price,
                                                       order_id=5002, quantity=str(trade.quantity), side=close_side, update_time=filled_at))  # fmt: skip
    session.answer("GET", "/fapi/v1/userTrades", [fill_body(5002, quantity=str(trade.quantity), price=exit_price, commission="0.0456", fill_id=9, side=close_side)])
    session.answer("DELETE", "/fapi/v1/algoOrder", {"algoId": 7001, "clientAlgoId": stop.client_order_id, "code": "200", "msg": "success"})
    session.answer("GET", "/fapi/v1/algoOrder", algo_reply_for(stop, "CANCELED"))
    tick(account, at + timedelta(hours=2))
    trade.refresh_from_db()
    assert (trade.status, trade.exit_reason, trade.exit_price) == ("closed", "take_profit", Decimal(exit_price))
    assert trade.exit_time == datetime.fromtimestamp(filled_at / 1000, tz=UTC)
    assert trade.fees == Decimal("0.0123") + Decimal("0.0456")
    sign = 1 if trade.side == "long" else -1
    assert trade.net_pnl == (sign * trade.quantity * (Decimal(exit_price) - trade.entry_price)).quantize(Decimal("1e-10")) - trade.fees
    stop.refresh_from_db()
    target.refresh_from_db()
    assert (stop.status, target.status, target.exchange_order_id) == ("cancelled", "filled", "5002")
    record = TrainingRecord.objects.get(trade_id=f"acct{account.pk}-trade{trade.pk}")
    assert (record.net_pnl, record.fees, record.exit_price, record.fill_source) == (trade.net_pnl, trade.fees, trade.exit_price, "exchange")
    assert session.unanswered() == {}


def algo_reply_for(order: ExchangeOrder, status: str, *, actual: str = ""):
    order_type = "STOP_MARKET" if order.role == "stop_loss" else "TAKE_PROFIT_MARKET"
    return algo_body(
        order.client_order_id, status, order_type=order_type, side=order.side.upper(), quantity=str(order.amount),
        trigger_price=str(order.trigger_price), algo_id=7001 if order.role == "stop_loss" else 7002, actual_order_id=actual,
    )  # fmt: skip


def test_a_partial_fill_then_the_rest_the_trade_holds_the_whole_fill_and_both_fees(account, session, django_capture_on_commit_callbacks):
    session.answer("POST", "/fapi/v1/order", entry_reply("PARTIALLY_FILLED", part="0.5"))
    session.answer("GET", "/fapi/v1/userTrades", lambda params: [fill_body(4001, quantity="0.001", price="1", commission="0.01", fill_id=1)])
    at, entry = tick_until_an_entry(account, django_capture_on_commit_callbacks)
    assert entry.status == "partially_filled" and entry.filled == (entry.amount / 2).quantize(Decimal("0.001")) > 0

    price = next_open(entry.decision).open
    session.answer("GET", "/fapi/v1/order", order_body(entry.client_order_id, "FILLED", executed=str(entry.amount), average=str(price + 1),
                                                       quantity=str(entry.amount), side=entry.side.upper()))  # fmt: skip
    session.answer("GET", "/fapi/v1/userTrades", [
        fill_body(4001, quantity=str(entry.filled), price=str(price), commission="0.01", fill_id=1),
        fill_body(4001, quantity=str(entry.amount - entry.filled), price=str(price + 2), commission="0.02", fill_id=2),
    ])  # fmt: skip
    session.answer("GET", "/fapi/v1/algoOrder", NOT_FOUND, NOT_FOUND)
    session.answer("POST", "/fapi/v1/algoOrder", algo_reply, algo_reply)
    tick(account, at + timedelta(hours=1))
    trade = PaperTrade.objects.get(account=account, is_shadow=False)
    assert (trade.quantity, trade.entry_price, trade.fees) == (entry.amount, price + 1, Decimal("0.03"))
    assert len(session.calls("POST", "/fapi/v1/order")) == 1


def test_a_rejected_entry_opens_no_trade_and_the_decision_is_followed_as_a_shadow(account, session, django_capture_on_commit_callbacks):
    session.answer("POST", "/fapi/v1/order", (400, {"code": -2019, "msg": "Margin is insufficient."}))
    at, entry = tick_until_an_entry(account, django_capture_on_commit_callbacks)
    assert entry.status == "rejected"
    tick(account, at + timedelta(hours=1))
    assert not PaperTrade.objects.filter(account=account, is_shadow=False).exists()
    shadow = PaperTrade.objects.get(decision=entry.decision)
    assert shadow.is_shadow and shadow.fill_source == "paper"
    reason = SignalDecision.objects.get(pk=entry.decision_id).reason
    assert reason.startswith("not opened: entry order") and "rejected" in reason and "Margin is insufficient" in reason


def test_a_retried_entry_task_asks_the_exchange_and_never_places_twice(account, session, django_capture_on_commit_callbacks):
    session.answer("POST", "/fapi/v1/order", entry_reply("FILLED"))
    session.answer("GET", "/fapi/v1/userTrades", lambda params: [fill_body(4001, quantity="0.001", price="1", commission="0.01", fill_id=1)])
    at, entry = tick_until_an_entry(account, django_capture_on_commit_callbacks)
    assert entry_order_place(decision_id=entry.decision_id, client_for=brokers.exchange_order_client).pk == entry.pk  # filled: nothing asked
    assert len(session.calls("POST", "/fapi/v1/order")) == 1

    # A second decision's order reaches the exchange but the answer is lost; the task's retry asks instead of resending.
    second = SignalDecision.objects.create(**{
        **{f.name: getattr(entry.decision, f.name) for f in SignalDecision._meta.concrete_fields if f.name not in ("id", "created_at", "reason")},
        "candle_time": entry.decision.candle_time + timedelta(hours=3),
    })  # fmt: skip
    account.refresh_from_db()
    PaperAccount.objects.filter(pk=account.pk).update(is_paused=False, max_open_per_symbol=5)
    session.answer("POST", "/fapi/v1/order", requests.ConnectionError("Connection aborted."))
    with pytest.raises(ccxt.NetworkError):
        entry_order_place(decision_id=second.pk, client_for=brokers.exchange_order_client)
    cid = client_order_id(account_id=account.pk, decision_id=second.pk, role="entry")
    session.answer("GET", "/fapi/v1/order", order_body(cid, "FILLED", executed="0.030", average="30000", quantity="0.030"))
    session.answer("GET", "/fapi/v1/userTrades", [fill_body(4001, quantity="0.030", price="30000", commission="0.36", fill_id=3)])
    retried = entry_order_place(decision_id=second.pk, client_for=brokers.exchange_order_client)
    assert (retried.status, retried.fee) == ("filled", Decimal("0.36"))
    assert [call["newClientOrderId"] for call in session.calls("POST", "/fapi/v1/order")] == [entry.client_order_id, cid]


def test_a_tick_that_rolls_back_queues_no_entry_order(account, session, django_capture_on_commit_callbacks, monkeypatch):
    record_decision = ExchangeBooks.record_decision

    def record_then_die(self, decision):
        record_decision(self, decision)
        if decision.taken:
            raise RuntimeError("worker died mid-tick")

    monkeypatch.setattr(ExchangeBooks, "record_decision", record_then_die)
    at = START
    tick(account, at)
    for _ in range(24 * 20):
        at += timedelta(hours=1)
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            try:
                tick(account, at)
            except RuntimeError:
                break
    else:
        raise AssertionError("no taken decision in 20 days of candles")
    # The decision rolled back with the tick, and its entry order was never queued: the retried tick decides afresh.
    assert callbacks == [] and session.calls("POST", "/fapi/v1/order") == []
    assert not SignalDecision.objects.filter(account=account, taken=True).exists()


def test_a_restart_mid_order_resumes_from_the_exchange_and_reconciliation_agrees(account, session, django_capture_on_commit_callbacks):
    session.answer("POST", "/fapi/v1/order", entry_reply("NEW"))
    at, entry = tick_until_an_entry(account, django_capture_on_commit_callbacks)
    assert (entry.status, entry.filled) == ("new", 0)

    # The worker restarts. Reconciliation at start-up finds the order partly filled.
    price = next_open(entry.decision).open
    half = (entry.amount / 2).quantize(Decimal("0.001"))
    partly = order_body(entry.client_order_id, "PARTIALLY_FILLED", executed=str(half), average=str(price), quantity=str(entry.amount), side=entry.side.upper())
    session.answer("GET", "/fapi/v1/openOrders", [partly])
    session.answer("GET", "/fapi/v3/positionRisk", [position_body(str(half if entry.side == "buy" else -half))])
    report = account_reconcile(account=account, client=brokers.exchange_order_client(account), markets=[MARKET])
    assert len(report.unexplained) == 1 and report.unexplained[0].endswith(f"{MARKET} on the exchange; the books hold 0")
    PaperAccount.objects.filter(pk=account.pk).update(is_paused=True)

    # A new engine (new books) ticks the next candle: still partly filled, so the rest is cancelled and the trade holds the half.
    session.answer("GET", "/fapi/v1/order", partly)
    session.answer("DELETE", "/fapi/v1/order", order_body(entry.client_order_id, "CANCELED", executed=str(half), average=str(price),
                                                          quantity=str(entry.amount), side=entry.side.upper()))  # fmt: skip
    fills = [fill_body(4001, quantity=str(half), price=str(price), commission="0.05", fill_id=1)]
    session.answer("GET", "/fapi/v1/userTrades", fills, fills)  # asked after the fetch and after the cancel
    session.answer("GET", "/fapi/v1/algoOrder", NOT_FOUND, NOT_FOUND)
    session.answer("POST", "/fapi/v1/algoOrder", algo_reply, algo_reply)
    tick(account, at + timedelta(hours=1))
    trade = PaperTrade.objects.get(account=account, is_shadow=False)
    assert (trade.quantity, trade.entry_price, trade.fees) == (half, price, Decimal("0.05"))
    entry.refresh_from_db()
    assert (entry.status, entry.filled) == ("cancelled", half)
    # Now the books hold what the exchange holds.
    session.answer("GET", "/fapi/v1/openOrders", [])
    session.answer("GET", "/fapi/v1/algoOrder", algo_reply_for(trade.exchange_orders.get(role="stop_loss"), "NEW"),
                   algo_reply_for(trade.exchange_orders.get(role="take_profit"), "NEW"))  # fmt: skip
    session.answer("GET", "/fapi/v3/positionRisk", [position_body(str(half if entry.side == "buy" else -half))])
    assert account_reconcile(account=account, client=brokers.exchange_order_client(account), markets=[MARKET]).unexplained == []


def test_exits_the_exchange_refused_to_hold_are_watched_by_the_engine_and_sent_as_market_orders(
    account, session, django_capture_on_commit_callbacks
):
    fills = lambda params: [fill_body(int(params["orderId"]), quantity="0.001", price="1", commission="0.02", fill_id=int(params["orderId"]))]  # noqa: E731
    session.answer("POST", "/fapi/v1/order", entry_reply("FILLED"))
    session.answer("GET", "/fapi/v1/userTrades", fills)
    at, entry = tick_until_an_entry(account, django_capture_on_commit_callbacks)
    would_trigger = (400, {"code": -2021, "msg": "Order would immediately trigger."})
    session.answer("GET", "/fapi/v1/algoOrder", NOT_FOUND, NOT_FOUND)
    session.answer("POST", "/fapi/v1/algoOrder", would_trigger, would_trigger)
    at += timedelta(hours=1)
    tick(account, at)
    trade = PaperTrade.objects.get(account=account, is_shadow=False)
    assert set(trade.exchange_orders.exclude(role="entry").values_list("status", flat=True)) == {"rejected"}

    # From here the engine watches the stop, target and holding time; its exit is a reduce-only market order.
    last_close = {}

    def exit_reply(params):
        return order_body(
            params["newClientOrderId"], "FILLED", executed=params["quantity"], average=str(last_close["price"]), order_id=6001,
            quantity=params["quantity"], side=params["side"], update_time=ms(at), reduce_only=True,
        )  # fmt: skip

    session.answer("GET", "/fapi/v1/order", NOT_FOUND)
    session.answer("POST", "/fapi/v1/order", exit_reply)
    session.answer("GET", "/fapi/v1/userTrades", fills)
    for _ in range(60):
        at += timedelta(hours=1)
        last_close["price"] = Candle.objects.get(exchange=EXCHANGE, symbol="BTCUSDT", timeframe="1h", open_time=at).close
        tick(account, at)
        trade.refresh_from_db()
        if trade.status == "closed":
            break
    assert trade.status == "closed" and trade.exit_reason in ("stop_loss", "take_profit", "time_exit")
    exit_call = session.calls("POST", "/fapi/v1/order")[-1]
    assert exit_call["reduceOnly"] == "true" and exit_call["newClientOrderId"] == client_order_id(account_id=account.pk, decision_id=trade.decision_id, role="exit")
    assert exit_call["side"] == ("SELL" if trade.side == "long" else "BUY") and Decimal(exit_call["quantity"]) == trade.quantity
    assert trade.exit_price == last_close["price"] and trade.fees == Decimal("0.04")
    assert session.unanswered() == {}


def test_without_keys_an_exchange_account_places_nothing_keeps_ticking_and_says_why(account, session, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.delenv("EXCHANGE_API_SECRET")
    taken = SignalDecision.objects.filter(account=account, taken=True)
    at = tick_hourly_until(account, django_capture_on_commit_callbacks, taken.exists)
    decision = taken.get()
    account_pause(account_id=account.pk)
    assert tick(account, at + timedelta(hours=1)) == 1  # the tick runs; the decision is followed as a shadow trade
    decision.refresh_from_db()
    assert decision.reason.startswith("not opened: no entry order placed: Set EXCHANGE_API_KEY and EXCHANGE_API_SECRET")
    assert PaperTrade.objects.get(decision=decision).is_shadow and session.requests == []
