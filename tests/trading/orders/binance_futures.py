"""Binance USDⓈ-M order endpoints answered from scripted replies in Binance's wire format; only ccxt's HTTP session is replaced.

The bodies follow Binance's documented responses (POST/GET/DELETE /fapi/v1/order, openOrders,
userTrades, v3 positionRisk, and the algo order endpoints /fapi/v1/algoOrder that conditional
orders use since Binance moved them there). They were written from that documentation, not
recorded: this machine has no network to reach the demo-trading endpoint. Each scripted reply
answers one request to its method and path in turn; an exception instance is raised as a
dropped connection would be, and a callable answers from the request's parameters (as the
exchange echoes a client order id and quantity back).
"""
import json
from collections import defaultdict, deque
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import requests

from tests.trading.marketdata.exchange_replay import _response

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
UPDATE_TIME = 1704067200000  # 2024-01-01


def order_body(
    client_order_id: str, status: str, *, executed: str = "0", average: str = "0", order_id: int = 4001, quantity: str = "0.010",
    side: str = "BUY", update_time: int = UPDATE_TIME, reduce_only: bool = False,
) -> dict:  # fmt: skip
    return {
        "orderId": order_id, "symbol": "BTCUSDT", "status": status, "clientOrderId": client_order_id, "price": "0",
        "avgPrice": average, "origQty": quantity, "executedQty": executed, "cumQuote": str(float(executed) * float(average)),
        "timeInForce": "GTC", "type": "MARKET", "reduceOnly": False, "closePosition": False, "side": side,
        "positionSide": "BOTH", "stopPrice": "0", "workingType": "CONTRACT_PRICE", "priceProtect": False,
        "origType": "MARKET", "updateTime": update_time,
    } | {"reduceOnly": reduce_only}  # fmt: skip


def algo_body(
    client_algo_id: str, status: str, *, order_type: str, side: str, quantity: str, trigger_price: str, algo_id: int = 7001,
    actual_order_id: str = "", update_time: int = UPDATE_TIME,
) -> dict:  # fmt: skip
    """GET/POST /fapi/v1/algoOrder: a conditional order (STOP_MARKET, TAKE_PROFIT_MARKET); once triggered it names the order it placed."""
    return {
        "algoId": algo_id, "clientAlgoId": client_algo_id, "algoType": "CONDITIONAL", "orderType": order_type, "symbol": "BTCUSDT",
        "side": side, "positionSide": "BOTH", "timeInForce": "GTC", "quantity": quantity, "algoStatus": status,
        "actualOrderId": actual_order_id, "actualPrice": "0", "triggerPrice": trigger_price, "price": "0", "icebergQuantity": None,
        "selfTradePreventionMode": "EXPIRE_MAKER", "workingType": "CONTRACT_PRICE", "priceMatch": "NONE", "closePosition": False,
        "priceProtect": False, "reduceOnly": True, "createTime": update_time, "updateTime": update_time,
        "triggerTime": update_time if actual_order_id else 0, "goodTillDate": 0,
    }  # fmt: skip


def fill_body(order_id: int, *, quantity: str, price: str, commission: str, fill_id: int, side: str = "BUY") -> dict:
    return {
        "symbol": "BTCUSDT", "id": fill_id, "orderId": order_id, "side": side, "price": price, "qty": quantity,
        "realizedPnl": "0", "quoteQty": str(float(quantity) * float(price)), "commission": commission,
        "commissionAsset": "USDT", "time": UPDATE_TIME, "positionSide": "BOTH", "buyer": side == "BUY", "maker": False,
    }  # fmt: skip


def position_body(amount: str, *, entry: str = "42000") -> dict:
    return {
        "symbol": "BTCUSDT", "positionSide": "BOTH", "positionAmt": amount, "entryPrice": entry, "breakEvenPrice": entry,
        "markPrice": "42100", "unRealizedProfit": "1.0", "liquidationPrice": "0", "isolatedMargin": "0", "notional": str(float(amount) * 42100),
        "marginAsset": "USDT", "isolatedWallet": "0", "initialMargin": "42.1", "maintMargin": "1.68", "positionInitialMargin": "42.1",
        "openOrderInitialMargin": "0", "adl": 1, "bidNotional": "0", "askNotional": "0", "updateTime": UPDATE_TIME,
    }  # fmt: skip


LEVERAGE_BRACKETS = [{"symbol": "BTCUSDT", "brackets": [
    {"bracket": 1, "initialLeverage": 125, "notionalCap": 50000, "notionalFloor": 0, "maintMarginRatio": 0.004, "cum": 0.0}
]}]  # fmt: skip


class ScriptedBinanceFutures(requests.Session):
    """Answers ccxt's requests to Binance USDⓈ-M from `script[(METHOD, path)]`, in order; records every request."""

    def __init__(self):
        super().__init__()
        self.exchange_info = json.loads((FIXTURES / "binanceusdm_exchange_info.json").read_text())
        self.script: dict[tuple[str, str], deque] = defaultdict(deque)
        self.requests: list[tuple[str, str, dict]] = []

    def answer(self, method: str, path: str, *replies) -> "ScriptedBinanceFutures":
        self.script[(method, path)].extend(replies)
        return self

    def unanswered(self) -> dict[tuple[str, str], int]:
        """Scripted replies no request came for."""
        return {key: len(replies) for key, replies in self.script.items() if replies}

    def calls(self, method: str, path: str) -> list[dict]:
        return [params for made, at, params in self.requests if (made, at) == (method, path)]

    def request(self, method, url, *args, data=None, **kwargs):
        parsed = urlparse(url)
        if parsed.path == "/fapi/v1/exchangeInfo":
            return _response(url, 200, self.exchange_info)
        if parsed.path == "/fapi/v1/leverageBracket":
            return _response(url, 200, LEVERAGE_BRACKETS)
        body = data.decode() if isinstance(data, bytes) else (data or "")
        params = {name: values[0] for name, values in parse_qs(parsed.query or body).items()}
        self.requests.append((method, parsed.path, params))
        replies = self.script.get((method, parsed.path))
        if not replies:
            return _response(url, 400, {"code": -1000, "msg": f"unscripted {method} {parsed.path}"})
        reply = replies.popleft()
        if isinstance(reply, Exception):
            raise reply
        if callable(reply):
            reply = reply(params)
        status, payload = reply if isinstance(reply, tuple) else (200, reply)
        return _response(url, status, payload)
