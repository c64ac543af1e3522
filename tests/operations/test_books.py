"""A replay's books, kept in memory and written in bulk, end exactly where the live path's writes do."""
import inspect
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Max, Sum

from learning.models import ModelKind, ModelVersion, OnlineLearningState, TrainingRecord
from learning.services.aggregates import aggregates_rebuild
from learning.services.online import online_update
from operations.books import MemoryBooks
from operations.replay import replay
from tests.conftest import aggregates_snapshot
from tests.operations.test_replay import wipe
from trading.books import Books, DatabaseBooks
from trading.engine import BarSource, TradingEngine
from trading.models import PaperAccount, PaperTrade, SignalDecision
from trading.services.accounts import account_create
from trading.services.trades import model_updates_deferred

pytestmark = pytest.mark.django_db
START, END = datetime(2022, 6, 1, tzinfo=UTC), datetime(2022, 7, 20, 23, tzinfo=UTC)
TRADE_COLUMNS = (
    "symbol", "side", "is_shadow", "status", "entry_time", "entry_price", "exit_time", "exit_price", "exit_reason",
    "quantity", "notional", "fees", "net_pnl", "pnl_pct", "stop_loss_price", "take_profit_price", "best_price",
    "signal_confidence", "signal_features", "market_regime", "volatility_regime", "decision__candle_time",
)  # fmt: skip
DECISION_COLUMNS = ("symbol", "candle_time", "side", "taken", "combined_confidence", "recommendation", "reason", "features")
RECORD_COLUMNS = (
    "symbol", "strategy_type", "system_type", "side", "confidence_score", "entry_price", "exit_price", "pnl_pct",
    "net_pnl", "fees", "success", "exit_reason", "entry_time", "exit_time", "features", "is_shadow",
)  # fmt: skip


def new_account(name: str) -> PaperAccount:
    return account_create(name=name, system_type="paper_trading", starting_balance=Decimal("10000"))


def drive_live(engine: TradingEngine, frames: dict) -> None:
    """The live path: every candle through the engine with its books in the database, in replay order."""
    sources = {symbol: BarSource(symbol=symbol, timeframe="1h", frame=frame) for symbol, frame in frames.items()}
    rows = {symbol: {moment: row for row, moment in enumerate(source.times) if START <= moment <= END} for symbol, source in sources.items()}
    for moment in sorted(set().union(*(set(by_time) for by_time in rows.values()))):
        for symbol, source in sources.items():
            if moment in rows[symbol]:
                engine.on_candle_close(source.bar(rows[symbol][moment]))


def books_of(account: PaperAccount) -> dict:
    account.refresh_from_db()
    return {
        "balance": account.current_balance,
        "trades": list(PaperTrade.objects.filter(account=account).order_by("entry_time", "symbol", "is_shadow").values_list(*TRADE_COLUMNS)),
        "decisions": list(SignalDecision.objects.filter(account=account).order_by("candle_time", "symbol").values_list(*DECISION_COLUMNS)),
        "records": list(TrainingRecord.objects.order_by("exit_time", "symbol", "is_shadow", "entry_time").values_list(*RECORD_COLUMNS)),
        "aggregates": aggregates_snapshot(),
    }


def test_a_replay_in_memory_writes_what_the_live_path_writes_candle_by_candle(btc_frame, eth_frame):
    # Learning gates and sizes every trade from the learned statistics (no models, whose cadence differs).
    frames = {"BTCUSDT": btc_frame, "ETHUSDT": eth_frame}
    live = new_account("books")
    with model_updates_deferred():
        drive_live(TradingEngine(account=live, use_learning=True, use_model=False), frames)
    expected = books_of(live)
    wipe()

    replayed = new_account("books")
    replay(
        engines=[TradingEngine(account=replayed, use_learning=True, use_model=False)], frames=frames, timeframe="1h",
        start=START, end=END, learning=False, write_every=7, progress=False,
    )  # fmt: skip
    actual = books_of(replayed)

    assert len(expected["trades"]) > 30 and any(not row[2] for row in expected["trades"]) and any(row[2] for row in expected["trades"])
    assert any(not row[3] for row in expected["decisions"])  # learning skipped a signal
    for part in ("balance", "trades", "decisions", "records", "aggregates"):
        assert actual[part] == expected[part], part


def test_a_replay_cut_short_leaves_the_books_as_of_its_last_write(btc_frame, monkeypatch):
    account = new_account("cut")
    engine = TradingEngine(account=account, use_learning=False)
    original, seen = TradingEngine.on_candle_close, []

    def dies_after_a_month(self, bar):
        seen.append(bar.open_time)
        if bar.open_time >= START + timedelta(days=30):
            raise RuntimeError("killed")
        return original(self, bar)

    monkeypatch.setattr(TradingEngine, "on_candle_close", dies_after_a_month)
    with pytest.raises(RuntimeError):
        replay(engines=[engine], frames={"BTCUSDT": btc_frame}, timeframe="1h", start=START, end=END, learning=False, write_every=5, progress=False)

    account.refresh_from_db()
    trades = PaperTrade.objects.filter(account=account)
    closed = trades.filter(status=PaperTrade.Status.CLOSED)
    assert closed.count() >= 5
    # Every closed trade's outcome was written with it, and nothing else was.
    assert TrainingRecord.objects.count() == closed.count()
    assert set(TrainingRecord.objects.values_list("trade_id", flat=True)) == {f"acct{account.pk}-trade{pk}" for pk in closed.values_list("pk", flat=True)}
    # The balance is the written trades' money: closed real trades' net P&L, less open real trades' entry fees.
    real = trades.filter(is_shadow=False)
    realised = real.filter(status=PaperTrade.Status.CLOSED).aggregate(pnl=Sum("net_pnl"))["pnl"] or Decimal(0)
    open_fees = real.filter(status=PaperTrade.Status.OPEN).aggregate(fees=Sum("fees"))["fees"] or Decimal(0)
    assert account.current_balance == account.starting_balance + realised - open_fees
    assert all(trade.decision_id is not None for trade in trades)
    # The learned statistics are the fold of the written records.
    written = aggregates_snapshot()
    aggregates_rebuild()
    assert aggregates_snapshot() == written


def test_a_replay_saves_its_online_ensemble_with_the_records_it_learned(btc_frame):
    account = new_account("learns")
    summary = replay(
        engines=[TradingEngine(account=account, use_learning=True)], frames={"BTCUSDT": btc_frame}, timeframe="1h",
        start=START, end=END, learning=True, online_update_every=5, write_every=10, progress=False,
    )  # fmt: skip
    records = TrainingRecord.objects.count()
    assert records > 20 and summary.model_updates > 3 and summary.writes > 2
    version = ModelVersion.objects.get(kind=ModelKind.ONLINE, active=True)
    state = OnlineLearningState.objects.get()
    top = TrainingRecord.objects.aggregate(top=Max("id"))["top"]
    assert version.samples_seen == records and version.trained_through_record_id == top
    assert state.samples_learned == records
    # Every record the replay wrote was claimed by the checkpoint that saved the ensemble that learned it.
    assert not TrainingRecord.objects.filter(learned_at__isnull=True).exists()
    # The live learner takes over where the replay left off: nothing is learned twice.
    assert online_update().learned == 0


@pytest.mark.parametrize("books_class", [DatabaseBooks, MemoryBooks])
def test_both_books_keep_the_protocol_an_engine_uses(books_class):
    """Each method of trading.books.Books, with its parameters and return type, on both books (no shared base class)."""
    methods = [name for name, member in vars(Books).items() if inspect.isfunction(member) and not name.startswith("_")]
    assert len(methods) == 11
    for name in methods:
        expected, actual = inspect.signature(getattr(Books, name)), inspect.signature(getattr(books_class, name))
        assert actual == expected, f"{books_class.__name__}.{name}{actual} is not Books.{name}{expected}"
    assert DatabaseBooks not in books_class.__mro__[1:] and Books not in books_class.__mro__
