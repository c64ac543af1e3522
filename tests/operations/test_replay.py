"""The engine over real candles: determinism, no look-ahead, fills at the next open, books that balance."""
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum

from learning.ml.schema import FEATURE_SCHEMA, feature_value_errors
from learning.models import TrainingRecord
from learning.services.aggregates import AGGREGATE_MODELS
from operations.replay import replay
from trading.engine import TradingEngine
from trading.models import PaperAccount, PaperTrade, SignalDecision
from trading.services.accounts import account_create

pytestmark = pytest.mark.django_db
START, END = datetime(2022, 6, 1, tzinfo=UTC), datetime(2022, 8, 31, 23, tzinfo=UTC)


def run(frames, *, end=END, name="replay-paper", learning=False) -> PaperAccount:
    account = account_create(name=name, system_type="paper_trading", starting_balance=Decimal("10000"))
    replay(
        engines=[TradingEngine(account=account, use_learning=learning)],
        frames=frames, timeframe="1h", start=START, end=end, learning=learning, progress=False,
    )  # fmt: skip
    return account


def trades_of(account) -> list[tuple]:
    return list(
        PaperTrade.objects.filter(account=account)
        .order_by("entry_time", "symbol", "is_shadow")
        .values_list("symbol", "side", "is_shadow", "entry_time", "entry_price", "exit_time", "exit_price", "exit_reason", "net_pnl")
    )


def wipe():
    PaperTrade.objects.all().delete()
    SignalDecision.objects.all().delete()
    PaperAccount.objects.all().delete()
    TrainingRecord.objects.all().delete()
    for model in AGGREGATE_MODELS:
        model.objects.all().delete()


def test_two_replays_of_the_same_candles_give_identical_trades(btc_frame, eth_frame):
    frames = {"BTCUSDT": btc_frame, "ETHUSDT": eth_frame}
    first = trades_of(run(frames))
    assert len(first) > 20
    wipe()
    assert trades_of(run(frames)) == first


def test_decisions_before_t_do_not_depend_on_later_candles(btc_frame):
    cut = datetime(2022, 7, 15, tzinfo=UTC)

    def decisions(account):
        return list(
            SignalDecision.objects.filter(account=account, candle_time__lt=cut)
            .order_by("candle_time")
            .values_list("candle_time", "side", "technical_score", "taken", "features")
        )

    full = decisions(run({"BTCUSDT": btc_frame}, name="full"))
    # Each run with its own learning store: the features hold the strategy's recent record.
    wipe()
    truncated = decisions(run({"BTCUSDT": btc_frame[btc_frame.index <= cut]}, end=cut, name="truncated"))
    assert full == truncated and len(full) > 5
    assert len({features["recent_system_count"] for *_, features in full}) > 1


def test_each_trade_fills_at_the_open_after_its_decision_with_slippage(btc_frame):
    account = run({"BTCUSDT": btc_frame})
    trades = PaperTrade.objects.filter(account=account).select_related("decision")
    assert trades.count() > 10
    for trade in trades:
        fill_time = trade.decision.candle_time + timedelta(hours=1)
        assert trade.entry_time == fill_time
        candle_open = Decimal(repr(float(btc_frame.loc[fill_time, "open"])))
        sign = 1 if trade.side == "long" else -1
        assert trade.entry_price == (candle_open * (1 + sign * account.slippage_rate)).quantize(Decimal("1e-10"))


def test_books_balance_and_every_closed_trade_is_learned_once(btc_frame, eth_frame):
    account = run({"BTCUSDT": btc_frame, "ETHUSDT": eth_frame})
    account.refresh_from_db()
    real = PaperTrade.objects.filter(account=account, is_shadow=False)
    closed_pnl = real.filter(status="closed").aggregate(total=Sum("net_pnl"))["total"] or 0
    open_entry_fees = real.filter(status="open").aggregate(total=Sum("fees"))["total"] or 0
    assert account.current_balance == account.starting_balance + closed_pnl - open_entry_fees

    closed = PaperTrade.objects.filter(account=account, status="closed")
    records = TrainingRecord.objects.filter(trade_id__startswith=f"acct{account.pk}-")
    assert records.count() == closed.count() > 0
    assert records.filter(is_shadow=True).count() == closed.filter(is_shadow=True).count()
    for trade in closed.filter(is_shadow=False)[:20]:
        record = records.get(trade_id=f"acct{account.pk}-trade{trade.pk}")
        assert record.net_pnl == trade.net_pnl and record.success == (trade.net_pnl > 0)
        assert record.features == trade.signal_features and set(record.features) == set(FEATURE_SCHEMA.names)
        assert feature_value_errors(record.features) == {}  # every value inside its documented range


def test_every_decision_is_recorded_and_followed(btc_frame):
    account = run({"BTCUSDT": btc_frame})
    decisions = SignalDecision.objects.filter(account=account)
    assert decisions.filter(taken=True).exists()
    last_candle = decisions.order_by("-candle_time").first().candle_time
    for decision in decisions.exclude(candle_time=last_candle):
        # Each decision became a trade (real, or shadow when skipped or refused) or says why not.
        assert hasattr(decision, "trade") or decision.reason, decision
