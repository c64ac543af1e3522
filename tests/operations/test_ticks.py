"""Live ticks: each closed candle runs once per account, a crash rolls its claim back, racing workers never double-trade."""
import logging
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from operations.ticks import engine_tick
from tests.conftest import BUNDLED_CANDLES as CANDLES
from trading.engine import TradingEngine
from trading.models import EngineTick, PaperAccount, SignalDecision
from trading.services.accounts import account_create
from trading.services.candles import candles_import

EXCHANGE = "binanceusdm"
NOW = datetime(2022, 5, 10, tzinfo=UTC)


@pytest.fixture
def btc_candles(db):
    candles_import(path=CANDLES / "BTCUSDT-1h.csv", exchange=EXCHANGE)


@pytest.fixture
def account(db) -> PaperAccount:
    return account_create(name="live-paper", system_type="paper_trading", starting_balance=Decimal("10000"))


def tick(account, now):
    return engine_tick(account_id=account.pk, symbol="BTCUSDT", timeframe="1h", exchange=EXCHANGE, now=now)


def test_each_candle_runs_once_and_a_new_account_starts_at_the_latest(btc_candles, account):
    assert tick(account, NOW) == 1
    assert tick(account, NOW) == 0
    assert tick(account, NOW + timedelta(hours=30)) == 30
    times = list(EngineTick.objects.order_by("candle_time").values_list("candle_time", flat=True))
    assert times[0] == NOW and times[-1] == NOW + timedelta(hours=30) and len(times) == len(set(times)) == 31


def test_live_ticks_decide_exactly_as_a_replay_does(btc_candles, account, btc_frame):
    from operations.replay import replay

    tick(account, NOW)
    tick(account, NOW + timedelta(days=10))
    replayed = account_create(name="replayed", system_type="paper_trading", starting_balance=Decimal("10000"))
    replay(
        engines=[TradingEngine(account=replayed, use_learning=False)], frames={"BTCUSDT": btc_frame}, timeframe="1h",
        start=NOW, end=NOW + timedelta(days=10), learning=False, progress=False,
    )  # fmt: skip
    columns = ("candle_time", "side", "taken", "technical_score")
    live = list(SignalDecision.objects.filter(account=account).order_by("candle_time").values_list(*columns))
    assert live  # ten days of hourly candles give signals
    # The live account learns from its own closes here, so compare where both decided on the signal alone.
    assert [row[:2] for row in live] == [row[:2] for row in SignalDecision.objects.filter(account=replayed).order_by("candle_time").values_list(*columns)]


def test_a_failing_tick_rolls_back_its_claim_and_runs_again(btc_candles, account, monkeypatch):
    tick(account, NOW)

    def crash(self, bar):
        raise RuntimeError("worker died")

    monkeypatch.setattr(TradingEngine, "on_candle_close", crash)
    with pytest.raises(RuntimeError):
        tick(account, NOW + timedelta(hours=1))
    assert not EngineTick.objects.filter(candle_time=NOW + timedelta(hours=1)).exists()
    monkeypatch.undo()
    assert tick(account, NOW + timedelta(hours=1)) == 1


def test_too_little_history_decides_nothing_and_says_why(db, account, caplog, tmp_path):
    lines = (CANDLES / "BTCUSDT-1h.csv").read_text().splitlines()[:101]
    short = tmp_path / "BTCUSDT-1h.csv"
    short.write_text("\n".join(lines) + "\n")
    candles_import(path=short, exchange=EXCHANGE)
    with caplog.at_level(logging.WARNING, logger="operations.ticks"):
        tick(account, datetime(2023, 1, 1, tzinfo=UTC))
    assert "only 100 candles stored, 301 needed" in caplog.text
    assert not SignalDecision.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_racing_workers_claim_each_candle_once():
    candles_import(path=CANDLES / "BTCUSDT-1h.csv", exchange=EXCHANGE)
    account = account_create(name="raced", system_type="paper_trading", starting_balance=Decimal("10000"))
    tick(account, NOW)
    errors = []

    def worker():
        try:
            tick(account, NOW + timedelta(days=3))
        except Exception as error:  # surfaced below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    times = list(EngineTick.objects.filter(account=account).values_list("candle_time", flat=True))
    assert len(times) == len(set(times)) == 1 + 72
    decided = list(SignalDecision.objects.filter(account=account).values_list("candle_time", flat=True))
    assert len(decided) == len(set(decided))
