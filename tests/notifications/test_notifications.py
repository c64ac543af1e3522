"""Notifications reach a real local HTTP receiver (webhook JSON, Telegram's sendMessage), are retried, and are off by default."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tradelearn.notifications import notify
from tradelearn.notifications.tasks import deliver_notification_task


class Receiver:
    """A local HTTP server recording each POST; `failures` scripts error statuses for the first requests."""

    def __init__(self, failures=()):
        self.requests: list[tuple[str, dict]] = []
        self.failures = list(failures)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = receiver.failures.pop(0) if receiver.failures else 200
                receiver.requests.append((self.path, body))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def retries_run_in_process(monkeypatch):
    # In-process (no broker) a retry runs at once, inside apply(); it must not raise to the caller.
    monkeypatch.setitem(deliver_notification_task.app.conf, "task_eager_propagates", False)


@pytest.fixture
def configured(settings, receiver):
    settings.NOTIFY_WEBHOOK_URL = f"{receiver.url}/hook"
    settings.NOTIFY_TELEGRAM_BOT_TOKEN = "123:secret-token"
    settings.NOTIFY_TELEGRAM_CHAT_ID = "-42"
    settings.NOTIFY_TELEGRAM_API_URL = receiver.url
    return receiver


def test_off_by_default_nothing_is_sent(settings, receiver, django_capture_on_commit_callbacks):
    assert settings.NOTIFY_WEBHOOK_URL is None and settings.NOTIFY_TELEGRAM_BOT_TOKEN is None
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        notify("kill_switch", "all trading stopped")
    assert callbacks == [] and receiver.requests == []


@pytest.mark.django_db
def test_webhook_and_telegram_receive_the_event_after_commit(configured, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        notify("trade_closed", "BTCUSDT long closed: +12.30 USDT", symbol="BTCUSDT", net_pnl="12.30")
        assert configured.requests == []  # nothing leaves before the transaction commits
    for callback in callbacks:
        callback()
    by_path = dict(configured.requests)
    hook = by_path["/hook"]
    assert (hook["event"], hook["text"], hook["data"]) == ("trade_closed", "BTCUSDT long closed: +12.30 USDT", {"symbol": "BTCUSDT", "net_pnl": "12.30"})
    assert by_path["/bot123:secret-token/sendMessage"] == {"chat_id": "-42", "text": "BTCUSDT long closed: +12.30 USDT"}


def test_a_failing_target_is_retried_alone_and_delivered(configured, settings):
    configured.failures = [500, 502]  # the first two requests fail, whichever target they were
    delivered = deliver_notification_task.apply(args=({"event": "kill_switch", "text": "stop", "data": {}, "at": "now"},), throw=False).get()
    paths = [path for path, _ in configured.requests]
    # First run: both fail. The retry sends to both again (both failed), then each was delivered once.
    assert paths.count("/hook") == 2 and paths.count("/bot123:secret-token/sendMessage") == 2
    assert sorted(delivered) == ["telegram", "webhook"]


def test_a_target_that_worked_is_not_sent_the_message_again(configured):
    configured.failures = [200, 503]  # webhook first: delivered; telegram: fails once
    deliver_notification_task.apply(args=({"event": "kill_switch", "text": "stop", "data": {}, "at": "now"},), throw=False).get()
    paths = [path for path, _ in configured.requests]
    assert paths.count("/hook") == 1 and paths.count("/bot123:secret-token/sendMessage") == 2


def test_an_unreachable_target_is_dropped_after_the_retries_with_one_line_and_no_token(settings, caplog):
    settings.NOTIFY_TELEGRAM_BOT_TOKEN = "123:secret-token"
    settings.NOTIFY_TELEGRAM_CHAT_ID = "-42"
    settings.NOTIFY_TELEGRAM_API_URL = "http://127.0.0.1:9"  # discard port: nothing listens
    delivered = deliver_notification_task.apply(args=({"event": "kill_switch", "text": "stop", "data": {}, "at": "now"},), throw=False).get()
    assert delivered == []
    dropped = [record.getMessage() for record in caplog.records if "dropped" in record.getMessage()]
    assert len(dropped) == 1 and "after 6 attempts" in dropped[0]
    assert "secret-token" not in caplog.text


def test_unknown_events_are_refused():
    with pytest.raises(ValueError, match="Unknown notification event 'oops'"):
        notify("oops", "x")


@pytest.mark.django_db
def test_live_trades_and_a_failing_feed_notify_once_each(configured, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from tests.trading.accounting.helpers import candle, open_at
    from tests.trading.factories import PaperAccountFactory
    from tests.trading.marketdata.test_feeds import WALL, unreachable_client
    from trading.marketdata.feeds import ExchangeFeed
    from trading.services.feeds import feed_poll
    from trading.services.trades import trade_close

    account = PaperAccountFactory(name="live-test")
    with django_capture_on_commit_callbacks(execute=True):
        trade = open_at(account, "BTCUSDT", "2022-02-28T22:00").trade
        open_at(account, "ETHUSDT", "2022-02-28T22:00", is_shadow=True)  # a shadow trade is not news
    exit_bar = candle("BTCUSDT", "2022-03-01T05:00")
    with django_capture_on_commit_callbacks(execute=True):
        trade = trade_close(trade=trade, exit_time=exit_bar.open_time, exit_price=exit_bar.open, exit_reason="time_exit")
    feed = ExchangeFeed(exchange="binanceusdm", markets=["BTC/USDT:USDT"], timeframe="1h", client=unreachable_client())
    with django_capture_on_commit_callbacks(execute=True):
        for seconds in (0, 3600, 7200):  # one streak of three failures
            feed_poll(feed=feed, now=WALL + timedelta(seconds=seconds))
    events = [body["event"] for path, body in configured.requests if path == "/hook"]
    assert events == ["trade_opened", "trade_closed", "feed_failing"]
    closed = next(body for path, body in configured.requests if path == "/hook" and body["event"] == "trade_closed")
    assert closed["data"]["trade_id"] == trade.pk and closed["data"]["net_pnl"] == str(trade.net_pnl)
    assert "cannot resolve host" in next(body["text"] for path, body in configured.requests if body.get("event") == "feed_failing")


@pytest.mark.django_db
def test_a_retrain_notifies_whether_its_model_was_adopted(configured, django_capture_on_commit_callbacks):
    from learning.tasks import batch_retrain_task
    from tests.learning.learnable import store_learnable

    store_learnable(200, seed=5)
    with django_capture_on_commit_callbacks(execute=True):
        result = batch_retrain_task.apply().get()
    hooks = [body for path, body in configured.requests if path == "/hook"]
    assert result["version"] and [body["event"] for body in hooks] == ["retrain_adopted" if result["activated"] else "retrain_refused"]
    assert hooks[0]["data"] == {"version": result["version"], "reason": result["reason"]}
