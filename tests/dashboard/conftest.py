"""Dashboard data built with the real services: a month of replayed BTC trades, scraping outcomes, open trades, models."""
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import transaction
from factory import Iterator, fuzzy

from learning.models import SystemType, TrainingRecord
from learning.services import store_trade_outcomes
from learning.services.online import online_update
from learning.services.retrain import batch_retrain
from operations.replay import replay
from tests.conftest import BUNDLED_CANDLES
from tests.factories import TradeOutcomeFactory
from trading.engine import TradingEngine
from trading.models import PaperAccount
from trading.selectors import read_candles_dir
from trading.services.accounts import account_create
from trading.services.candles import candles_import
from trading.services.trades import TradeOpenRequest, trade_open

CANDLES = BUNDLED_CANDLES
START, END = datetime(2022, 6, 1, tzinfo=UTC), datetime(2022, 6, 30, 23, tzinfo=UTC)
SCRAPING_OUTCOMES = 120


def _month_of_candles(directory: Path) -> Path:
    """The bundled BTC file cut to the replayed month, so the import stays quick."""
    source = CANDLES / "BTCUSDT-1h.csv"
    first_ms, last_ms = int(START.timestamp() * 1000), int(END.timestamp() * 1000)
    lines = source.read_text().splitlines()
    kept = [line for line in lines[1:] if first_ms <= int(line.split(",", 1)[0]) <= last_ms]
    path = directory / "BTCUSDT-1h.csv"
    path.write_text("\n".join([lines[0], *kept]) + "\n")
    return path


def build_dashboard_data(directory: Path) -> PaperAccount:
    """Trades, decisions, outcomes of both systems, learned tables, candles to mark open trades, and models."""
    account = account_create(name="replay-paper", system_type=SystemType.PAPER_TRADING, starting_balance=Decimal("10000"))
    frame = read_candles_dir(CANDLES, "BTCUSDT", "1h", end=END)
    replay(
        engines=[TradingEngine(account=account, use_learning=False)],
        frames={"BTCUSDT": frame}, timeframe="1h", start=START, end=END, learning=False, progress=False,
    )  # fmt: skip
    candles_import(path=_month_of_candles(directory), exchange="binanceusdm")
    # The replayed features, so the models can learn from these outcomes too (they fit the schema).
    features = list(TrainingRecord.objects.order_by("pk").values_list("features", flat=True))
    store_trade_outcomes(
        outcomes=TradeOutcomeFactory.build_batch(
            SCRAPING_OUTCOMES,
            system_type=SystemType.PROFIT_SCRAPING,
            entry_time=fuzzy.FuzzyDateTime(START, END - timedelta(hours=8)),
            features=Iterator(features),
        )
    )
    online_update()
    batch_retrain()
    _open_desk_trades(features[0])
    return account


def _open_desk_trades(features: dict) -> None:
    """A long and a short left open five hours before the last stored candle: the dashboard marks them to it."""
    desk = account_create(name="desk-paper", system_type=SystemType.PAPER_TRADING, starting_balance=Decimal("5000"), max_open_per_symbol=2)
    for side, price in (("long", Decimal("19800")), ("short", Decimal("20100"))):
        trade_open(account=desk, request=TradeOpenRequest(
            decision=None, symbol="BTCUSDT", timeframe="1h", side=side, strategy_type="manual",
            fill_time=END - timedelta(hours=5), fill_price=price, size_fraction=Decimal("0.1"), stop_loss_price=None,
            take_profit_price=None, signal_features=features, signal_confidence=0.6, market_regime="ranging",
            volatility_regime="medium", max_holding_minutes=24 * 60,
        ))  # fmt: skip


@pytest.fixture(scope="module")
def dashboard_data(django_db_setup, django_db_blocker, tmp_path_factory):
    """Built once per module inside a transaction that is rolled back after it (tests nest in savepoints)."""
    with django_db_blocker.unblock(), transaction.atomic():
        account = build_dashboard_data(tmp_path_factory.mktemp("candles"))
        yield account
        transaction.set_rollback(True)


@pytest.fixture(autouse=True)
def fresh_chart_cache():
    # Charts are cached by their data; a test that counts or inspects rendering starts from none.
    cache.clear()
