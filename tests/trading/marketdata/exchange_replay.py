"""Replays recorded Binance USDⓈ-M REST responses to ccxt: the HTTP session is the only thing stubbed.

The recordings in tests/trading/fixtures are in Binance's wire format (GET /fapi/v1/exchangeInfo
and GET /fapi/v1/klines, last 30 hours of 2023, the final candle still forming 25 minutes in).
Kline requests are answered as the exchange does: rows from `startTime` on, at most `limit`.
"""
import json
from collections import deque
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import requests
from requests.structures import CaseInsensitiveDict

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
RATE_LIMITED = (429, {"code": -1003, "msg": "Too many requests; current limit is 2400 request weight per 1 MINUTE."})
UNAVAILABLE = (503, "Service Unavailable")


def _response(url: str, status: int, body) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.reason = requests.status_codes._codes[status][0].upper()
    response.url = url
    response.headers = CaseInsensitiveDict({"Content-Type": "application/json"})
    response._content = json.dumps(body).encode()
    return response


class RecordedBinanceSession(requests.Session):
    """A requests session answering from recordings; `kline_failures` scripts transient failures.

    Each entry of `kline_failures` answers one kline request in turn: a (status, body) pair is
    returned as that HTTP error, an exception instance is raised as a dropped connection would
    be, and None lets the request through.
    """

    def __init__(self, *, kline_failures=()):
        super().__init__()
        self.exchange_info = json.loads((FIXTURES / "binanceusdm_exchange_info.json").read_text())
        self.klines = {
            symbol: json.loads((FIXTURES / f"binanceusdm_klines_{symbol}_1h.json").read_text()) for symbol in ("BTCUSDT", "ETHUSDT")
        }
        self.kline_failures = deque(kline_failures)
        self.kline_requests: list[dict] = []

    def request(self, method, url, *args, **kwargs):
        parsed = urlparse(url)
        query = {name: values[0] for name, values in parse_qs(parsed.query).items()}
        if parsed.path == "/fapi/v1/exchangeInfo":
            return _response(url, 200, self.exchange_info)
        if parsed.path != "/fapi/v1/klines":
            return _response(url, 404, {"code": -5000, "msg": f"Path {parsed.path}, Method {method} is invalid"})
        self.kline_requests.append(query)
        failure = self.kline_failures.popleft() if self.kline_failures else None
        if isinstance(failure, Exception):
            raise failure
        if failure is not None:
            return _response(url, *failure)
        rows = [row for row in self.klines[query["symbol"]] if row[0] >= int(query.get("startTime", 0))]
        return _response(url, 200, rows[: int(query.get("limit", 500))])
