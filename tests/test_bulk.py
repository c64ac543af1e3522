"""The lean bulk writers store exactly what the ORM's bulk_create and save store."""
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tradelearn.bulk import bulk_insert, bulk_update_rows
from trading.models import PaperAccount, PaperTrade, SignalDecision
from trading.services.accounts import account_create

pytestmark = pytest.mark.django_db
WHEN = datetime(2022, 5, 1, 13, tzinfo=UTC)


def make(account: PaperAccount, n: int) -> tuple[list[SignalDecision], list[PaperTrade]]:
    decisions, trades = [], []
    for i in range(n):
        decision = SignalDecision(
            account=account, symbol="BTCUSDT", timeframe="1h", candle_time=WHEN.replace(hour=i % 24, day=1 + i // 24),
            strategy_type="trend_momentum", side="long", features={"rsi_14": 55.5 + i, "atr_pct": 0.0123},
            technical_score=0.61, combined_confidence=0.6, recommendation={"plan": {"size": 0.02}, "reasoning": "é"},
            market_regime="ranging", volatility_regime="low", taken=bool(i % 2),
        )  # fmt: skip
        decisions.append(decision)
        trades.append(
            PaperTrade(
                account=account, decision=decision, symbol="BTCUSDT", timeframe="1h", side="long",
                strategy_type="trend_momentum", entry_time=WHEN, entry_price=Decimal("36787.4200000001"),
                quantity=Decimal("0.01234567"), notional=Decimal("454.1656") + i, max_holding_minutes=2880,
                fees=Decimal("0.1816662400"), signal_features=decision.features, signal_confidence=0.6,
                market_regime="ranging", volatility_regime="low", model_versions={"batch": "batch-0001"},
            )  # fmt: skip
        )
    return decisions, trades


def rows(queryset, exclude=("id", "account", "decision", "created_at")):
    fields = [f.attname for f in queryset.model._meta.concrete_fields if f.name not in exclude]
    return list(queryset.order_by("pk").values_list(*fields))


def test_bulk_insert_stores_what_bulk_create_stores_and_sets_primary_keys():
    ours, theirs = (account_create(name=name, system_type="paper_trading", starting_balance=Decimal(10000)) for name in ("ours", "theirs"))
    decisions, trades = make(ours, 30)
    bulk_insert(SignalDecision, decisions)
    bulk_insert(PaperTrade, trades)  # each trade's decision was saved meanwhile: its key is taken from it
    orm_decisions, orm_trades = make(theirs, 30)
    SignalDecision.objects.bulk_create(orm_decisions)
    PaperTrade.objects.bulk_create(orm_trades)

    assert all(obj.pk is not None and not obj._state.adding for obj in decisions + trades)
    assert [t.decision_id for t in trades] == [d.pk for d in decisions]
    assert rows(SignalDecision.objects.filter(account=ours)) == rows(SignalDecision.objects.filter(account=theirs))
    assert rows(PaperTrade.objects.filter(account=ours)) == rows(PaperTrade.objects.filter(account=theirs))
    assert PaperTrade.objects.get(pk=trades[3].pk).entry_price == Decimal("36787.4200000001")
    assert all(d.created_at is not None for d in SignalDecision.objects.filter(account=ours))


def test_bulk_update_rows_writes_the_named_columns_only():
    account = account_create(name="upd", system_type="paper_trading", starting_balance=Decimal(10000))
    decisions, trades = make(account, 5)
    bulk_insert(SignalDecision, decisions)
    bulk_insert(PaperTrade, trades)
    for i, trade in enumerate(trades):
        trade.status, trade.exit_time, trade.exit_price = PaperTrade.Status.CLOSED, WHEN.replace(hour=20), Decimal("37000.5") + i
        trade.net_pnl, trade.symbol = Decimal("2.5"), "ETHUSDT"  # symbol is not named: it must not change
    bulk_update_rows(PaperTrade, trades, ["status", "exit_time", "exit_price", "net_pnl"])
    stored = list(PaperTrade.objects.order_by("pk").values_list("status", "exit_time", "exit_price", "net_pnl", "symbol"))
    assert stored == [("closed", WHEN.replace(hour=20), Decimal("37000.5") + i, Decimal("2.5"), "BTCUSDT") for i in range(5)]
