"""The profit scraping engine over real candles: shared simulator and books, decisions, stored levels, determinism."""
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest
from django.conf import settings
from django.core.management import call_command

from learning.models import TrainingRecord
from scraping.engine import STRATEGY_TYPE, ProfitScrapingEngine
from scraping.models import PriceLevel
from tests.scraping.conftest import END, START, run_replay, trades_of
from tests.trading.accounting.helpers import assert_account_balanced
from trading.engine import BarSource
from trading.models import Candle, PaperAccount, PaperTrade, SignalDecision
from trading.services.accounts import account_create

pytestmark = pytest.mark.django_db


def test_trades_go_through_the_shared_simulator_and_books(btc_frame, eth_frame):
    (account,) = run_replay({"BTCUSDT": btc_frame, "ETHUSDT": eth_frame})
    real = PaperTrade.objects.filter(account=account, is_shadow=False)
    assert real.count() >= 10
    assert set(real.values_list("strategy_type", flat=True)) == {STRATEGY_TYPE}
    for trade in real.select_related("decision")[:30]:
        # Decided on a close, filled at the next open, with the scraping exits attached.
        assert trade.entry_time == trade.decision.candle_time + timedelta(hours=1)
        assert trade.max_holding_minutes == 12 * 60
        assert trade.trailing_stop_pct > 0 and trade.breakeven_trigger_pct > 0
        assert trade.decision.features["is_profit_scraping"] == 1.0
        sign = 1 if trade.side == "long" else -1
        target_pct = sign * (trade.take_profit_price / trade.entry_price - 1)
        # A target leaves something after both fees and both slippages.
        assert target_pct > 2 * (account.fee_rate + account.slippage_rate)
    reasons = set(PaperTrade.objects.filter(account=account, status="closed").values_list("exit_reason", flat=True))
    assert "take_profit" in reasons and reasons & {"breakeven_stop", "trailing_stop"}
    assert_account_balanced(account)
    closed = PaperTrade.objects.filter(account=account, status="closed").count()
    assert TrainingRecord.objects.filter(system_type="profit_scraping", strategy_type=STRATEGY_TYPE).count() == closed


def test_the_rule_is_tuned_by_the_scraping_settings(btc_frame, settings):
    settings.SCRAPING_MAX_HOLDING_CANDLES = 6
    (account,) = run_replay({"BTCUSDT": btc_frame}, prefix="six-candles")
    holding = set(PaperTrade.objects.filter(account=account).values_list("max_holding_minutes", flat=True))
    assert holding == {6 * 60}
    settings.SCRAPING_MIN_STRENGTH = 1.01  # no level is that strong
    (account,) = run_replay({"BTCUSDT": btc_frame}, prefix="no-level")
    assert not SignalDecision.objects.filter(account=account).exists()


def test_decisions_taken_and_skipped_are_recorded_and_followed(btc_frame):
    (account,) = run_replay({"BTCUSDT": btc_frame}, use_learning=True)
    decisions = SignalDecision.objects.filter(account=account)
    assert decisions.filter(taken=True).exists() and decisions.filter(taken=False).exists()
    for decision in decisions.filter(taken=False).select_related("trade"):
        assert decision.recommendation["reasoning"] and decision.strategy_type == STRATEGY_TYPE
        assert decision.trade.is_shadow or decision.reason
    assert PaperTrade.objects.filter(account=account, is_shadow=True).exists()


def test_levels_are_stored_once_per_recompute_as_candles_close(btc_frame):
    run_replay({"BTCUSDT": btc_frame})
    times = sorted(set(PriceLevel.objects.filter(symbol="BTCUSDT", timeframe="1h").values_list("computed_at", flat=True)))
    # One set per day of the replay, each computed at 00:00 UTC from the candles up to then.
    assert times == [START + timedelta(days=day) for day in range((END - START).days + 1)]
    level = PriceLevel.objects.filter(computed_at=times[-1]).order_by("-strength").first()
    assert isinstance(level.price, Decimal) and level.last_test_time <= level.computed_at
    assert 0 <= level.strength <= 1 and level.touches >= 2


def test_two_replays_into_fresh_accounts_give_identical_trades(btc_frame, eth_frame):
    frames = {"BTCUSDT": btc_frame, "ETHUSDT": eth_frame}
    levels_before = PriceLevel.objects.count()
    (first,) = run_replay(frames, prefix="first")
    stored_levels = PriceLevel.objects.count()
    (second,) = run_replay(frames, prefix="second")
    assert trades_of(first) == trades_of(second) and len(trades_of(first)) > 10
    # The second run rewrote the same level sets instead of adding copies.
    assert PriceLevel.objects.count() == stored_levels > levels_before


def test_a_fresh_engine_without_a_prepared_frame_reads_the_same_levels_from_the_database(btc_frame):
    at = datetime(2022, 6, 10, 15, tzinfo=UTC)
    window = btc_frame[(btc_frame.index > at - timedelta(days=40)) & (btc_frame.index <= at)]
    Candle.objects.bulk_create(
        Candle(
            exchange=settings.TRADING_EXCHANGE, symbol="BTCUSDT", timeframe="1h", open_time=moment.to_pydatetime(),
            **{name: Decimal(repr(float(row[name]))) for name in ("open", "high", "low", "close", "volume")},
        )
        for moment, row in window.iterrows()
    )  # fmt: skip
    account = account_create(name="live", system_type="profit_scraping", starting_balance=Decimal("10000"))
    prepared = ProfitScrapingEngine(account=account)
    prepared.prepare(symbol="BTCUSDT", timeframe="1h", frame=btc_frame)
    source = BarSource(symbol="BTCUSDT", timeframe="1h", frame=btc_frame)
    bar = source.bar(btc_frame.index.get_loc(at))
    from_frame, from_database = prepared.levels_at(bar), ProfitScrapingEngine(account=account).levels_at(bar)
    assert from_frame.computed_at == from_database.computed_at == pd.Timestamp(datetime(2022, 6, 10, tzinfo=UTC))
    assert from_frame.rows() == from_database.rows() and len(from_frame) > 0
    # Live, each tick's fresh engine proposes what the prepared one does (a long at 23:00 on the 9th).
    proposals = []
    for row in range(btc_frame.index.get_loc(at - timedelta(hours=16)), btc_frame.index.get_loc(at) + 1):
        bar = source.bar(row)
        proposals.append(ProfitScrapingEngine(account=account).propose(bar))
        assert proposals[-1] == prepared.propose(bar)
    assert any(proposals)


def test_proposals_from_prepared_candles_equal_the_one_candle_path_at_every_candle(btc_frame, eth_frame):
    # A replay runs the rule once per level set over the candles it is in force for; a live tick
    # runs it on the bar it closes. Both must propose exactly the same, candle by candle.
    account = account_create(name="both-paths", system_type="profit_scraping", starting_balance=Decimal("10000"))
    proposals = 0
    for symbol, frame in (("BTCUSDT", btc_frame), ("ETHUSDT", eth_frame)):
        replayed, alone = ProfitScrapingEngine(account=account), ProfitScrapingEngine(account=account)
        replayed.prepare(symbol=symbol, timeframe="1h", frame=frame)
        alone.prepare_levels(symbol=symbol, timeframe="1h", frame=frame)  # the levels only, as a live tick loads them
        source = BarSource(symbol=symbol, timeframe="1h", frame=frame)
        for row in range(len(frame)):
            bar = source.bar(row)
            if bar.ready:
                proposal = replayed.propose(bar)
                assert proposal == alone.propose(bar), (symbol, bar.open_time)
                proposals += proposal is not None
    assert proposals > 1000


def test_the_replay_command_runs_both_engines(btc_frame, tmp_path):
    candles = btc_frame[btc_frame.index <= datetime(2022, 6, 7, 23, tzinfo=UTC)].copy()
    candles.index = candles.index.asi8 // 1_000_000  # the candle files' Unix milliseconds
    candles.to_csv(tmp_path / "BTCUSDT-1h.csv", index_label="open_time")
    call_command(
        "replay", symbols="BTCUSDT", start="2022-06-01", end="2022-06-07", engines="paper,scraping",
        candles_dir=str(tmp_path), no_learning=True, no_progress=True,
    )  # fmt: skip
    assert set(PaperAccount.objects.values_list("system_type", flat=True)) == {"paper_trading", "profit_scraping"}
    assert SignalDecision.objects.filter(account__system_type="profit_scraping").exists()
