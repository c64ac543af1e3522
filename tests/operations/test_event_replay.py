"""A replay that visits only the candles where something can happen equals one that visits every candle.

Both run the same `on_candle_close` a live tick runs; the event replay skips the candles on which it
would change nothing. Compared on the bundled real candles with both engines, with gaps (a decision
whose next candle never came expires), a symbol that starts later, time exits, breakeven and
trailing stops, and with learning on (online updates, retrains adopted with and without a lag).
"""
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest

from learning.models import FeatureImportance, LearningLease, ModelKind, ModelVersion, OnlineLearningState
from operations.replay import replay
from scraping.engine import ProfitScrapingEngine
from tests.operations.test_replay import wipe
from trading.engine import BarSource, TradingEngine
from trading.models import PaperTrade, SignalDecision
from trading.services.accounts import account_create
from trading.signals import technical_signal

START, END = datetime(2022, 5, 1, tzinfo=UTC), datetime(2022, 8, 31, 23, tzinfo=UTC)


def test_signal_rows_are_the_rows_where_technical_signal_fires(btc_frame):
    source = BarSource(symbol="BTCUSDT", timeframe="1h", frame=btc_frame)
    fires = [
        row for row in range(len(source))
        if source.ready[row] and technical_signal(source.technical_score(row), source.technical_score(row - 1)) is not None
    ]  # fmt: skip
    assert len(fires) > 200
    assert source.signal_rows().tolist() == fires


def test_first_outside_finds_the_first_row_leaving_a_range_near_and_far(btc_frame):
    source = BarSource(symbol="BTCUSDT", timeframe="1h", frame=btc_frame)
    lows, highs = btc_frame["low"].to_numpy(), btc_frame["high"].to_numpy()
    for start, (low_above, high_below) in [(100, (lows[100] - 1, highs[100] + 1)), (5000, (15000.0, 70000.0)), (9000, (1.0, 1e9))]:
        expected = next((row for row in range(start, len(source)) if lows[row] <= low_above or highs[row] >= high_below), len(source))
        assert source.first_outside(low_above=low_above, high_below=high_below, start=start, stop=len(source)) == expected
    assert source.first_outside(low_above=1.0, high_below=1e9, start=50, stop=40) == 40


def with_gaps(frame: pd.DataFrame, source: BarSource) -> pd.DataFrame:
    """`frame` without a day of candles in June, and without the candle after a few signals (their decisions expire)."""
    in_range = [row for row in source.signal_rows().tolist() if START <= source.moments[row] < END]
    after_signals = [source.moments[row + 1] for row in in_range[5:40:7]]
    june = pd.date_range("2022-06-10", periods=24, freq="h", tz=UTC)
    return frame.drop(index=[*after_signals, *june])


def run(engine_classes, frames, *, every_candle: bool, learning: bool = False, name: str) -> list:
    engines = [
        engine_class(
            account=account_create(name=f"{name}-{engine_class.system_type}", system_type=engine_class.system_type, starting_balance=Decimal("10000")),
            use_learning=learning,
        )
        for engine_class in engine_classes
    ]  # fmt: skip
    summary = replay(
        engines=engines, frames=frames, timeframe="1h", start=START, end=END, learning=learning,
        retrain_every=40, background=False, progress=False, every_candle=every_candle,
    )  # fmt: skip
    books = []
    for engine in engines:
        trades = PaperTrade.objects.filter(account=engine.account).order_by("pk").values_list(
            "symbol", "side", "is_shadow", "entry_time", "entry_price", "stop_loss_price", "take_profit_price", "exit_time",
            "exit_price", "exit_reason", "best_price", "quantity", "fees", "net_pnl",
        )  # fmt: skip
        decisions = SignalDecision.objects.filter(account=engine.account).order_by("pk").values_list(
            "symbol", "candle_time", "side", "taken", "technical_score", "model_probability", "combined_confidence",
            "model_versions", "features", "recommendation", "reason",
        )  # fmt: skip
        books.append((list(trades), list(decisions)))
    versions = list(ModelVersion.objects.order_by("kind", "sequence").values_list("kind", "sequence", "active", "samples_seen", "metrics"))
    return [summary.candles, summary.model_updates, summary.retrains, books, versions]


def forget():
    wipe()
    for model in (ModelVersion, OnlineLearningState, FeatureImportance, LearningLease):
        model.objects.all().delete()


@pytest.fixture(scope="module")
def gappy_frames(btc_frame, eth_frame):
    btc = with_gaps(btc_frame, BarSource(symbol="BTCUSDT", timeframe="1h", frame=btc_frame))
    # ETH starts three weeks into the replay: the moments of the two symbols differ.
    return {"BTCUSDT": btc, "ETHUSDT": eth_frame[eth_frame.index >= START - timedelta(days=40)]}


@pytest.mark.django_db
@pytest.mark.parametrize("engine_classes", [(TradingEngine,), (ProfitScrapingEngine,), (TradingEngine, ProfitScrapingEngine)])
def test_visiting_events_gives_the_replay_of_every_candle(engine_classes, gappy_frames):
    events = run(engine_classes, gappy_frames, every_candle=False, name="events")
    forget()
    every = run(engine_classes, gappy_frames, every_candle=True, name="every")
    assert events == every

    candles, _, _, books, _ = events
    assert candles == sum(len(frame[(frame.index >= START) & (frame.index <= END)]) for frame in gappy_frames.values())
    for engine_class, (trades, decisions) in zip(engine_classes, books):
        reasons = {trade[9] for trade in trades}
        assert len(trades) > 30 and "take_profit" in reasons
        if engine_class is TradingEngine:
            assert "stop_loss" in reasons and any(decision[-1].startswith("expired") for decision in decisions)
        else:  # its trailing stop starts at the initial stop's distance, so it names every stop exit
            assert {"time_exit", "breakeven_stop", "trailing_stop"} <= reasons


def learning_replays_agree(frames) -> list:
    """Both engines learning, replayed visiting events and then every candle: the same everything; the first run's figures."""
    engine_classes = (TradingEngine, ProfitScrapingEngine)
    events = run(engine_classes, frames, every_candle=False, learning=True, name="events")
    forget()
    assert run(engine_classes, frames, every_candle=True, learning=True, name="every") == events
    return events


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("lag", [0, 15])
def test_with_learning_the_models_learn_and_serve_at_the_same_moments(lag, gappy_frames, settings):
    settings.REPLAY_RETRAIN_LAG = lag
    _, model_updates, retrains, books, versions = learning_replays_agree(gappy_frames)
    assert model_updates > 5 and retrains >= 2
    served = {tuple(sorted(decision[7].items())) for _, decisions in books for decision in decisions}
    assert len(served) > 3  # decisions were made under several model versions


@pytest.mark.django_db(transaction=True)
def test_retrains_in_market_time_are_the_same_visiting_events_and_come_once_a_period(gappy_frames, settings):
    settings.REPLAY_RETRAIN_DAYS, settings.REPLAY_RETRAIN_LAG_HOURS = 10, 24
    _, _, retrains, _, versions = learning_replays_agree(gappy_frames)
    periods = (END - START) // timedelta(days=10)
    batch = [version for version in versions if version[0] == "batch"]
    # One retrain per ten-day boundary once there are enough outcomes to train on, never more.
    assert 2 <= len(batch) <= periods and retrains >= 1
