"""The lean bulk writers store exactly what the ORM's bulk_create and save store."""
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.db import connection
from django.db.backends.sqlite3.base import DatabaseWrapper as SQLiteWrapper
from psycopg.types.json import Jsonb

from learning.models import FeatureImportance, MarketRegimeStats, SignalQuality, StrategyPerformance, TrainingRecord
from scraping.models import PriceLevel
from tradelearn.bulk import _converter, bulk_insert, bulk_update_rows
from trading.models import PaperAccount, PaperTrade, SignalDecision
from trading.services.accounts import account_create

pytestmark = pytest.mark.django_db
WHEN = datetime(2022, 5, 1, 13, tzinfo=UTC)
# Feature vectors that are equal as numbers but not as JSON, each stored as it is.
FEATURES = [{"rsi_14": 55.5, "atr_pct": 0.0123}, {"rsi_14": 55.5, "atr_pct": -0.0}, {"rsi_14": 55.5, "atr_pct": 0.0},
            {"rsi_14": 55.5, "atr_pct": 0}, {"atr_pct": 0.0, "rsi_14": 55.5}, {"rsi_14": 1e-05, "atr_pct": 1e16}, {}]  # fmt: skip


def make(account: PaperAccount, n: int) -> tuple[list[SignalDecision], list[PaperTrade]]:
    decisions, trades = [], []
    for i in range(n):
        decision = SignalDecision(
            account=account, symbol="BTCUSDT", timeframe="1h", candle_time=WHEN.replace(hour=i % 24, day=1 + i // 24),
            strategy_type="trend_momentum", side="long", features=FEATURES[i % len(FEATURES)],
            technical_score=0.61, combined_confidence=0.6, recommendation={"plan": {"size": 0.02}, "reasoning": "é"},
            market_regime="ranging", volatility_regime="low", taken=bool(i % 2),
        )  # fmt: skip
        decisions.append(decision)
        trades.append(
            PaperTrade(
                account=account, decision=decision, symbol="BTCUSDT", timeframe="1h", side="long",
                strategy_type="trend_momentum", entry_time=WHEN, entry_price=Decimal("36787.4200000001"),
                quantity=Decimal("0.01234567"), notional=Decimal("454.1656") + i, max_holding_minutes=2880,
                fees=Decimal("0.1816662400"), signal_features=decision.features, signal_confidence=0.6, ml_score=None,
                exit_time=None if i % 3 else WHEN + timedelta(hours=i), stop_loss_price=None if i % 2 else Decimal("36000"),
                market_regime="ranging", volatility_regime="low", model_versions={"batch": "batch-0001"},
            )  # fmt: skip
        )
    return decisions, trades


def rows(queryset, exclude=("id", "account", "decision", "created_at")):
    """The stored rows, JSON as the database holds it (decoded, -0.0 would equal 0.0 and 1 equal 1.0)."""
    fields = [f for f in queryset.model._meta.concrete_fields if f.name not in exclude]
    columns = ", ".join(f"{f.column}::text" if f.get_internal_type() == "JSONField" else f.column for f in fields)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {queryset.model._meta.db_table} WHERE id = ANY(%s) ORDER BY id", [list(queryset.values_list("pk", flat=True))])
        return cursor.fetchall()


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
    assert all(t.decision is d for t, d in zip(trades, decisions, strict=True))  # still the same objects, not read again
    assert rows(SignalDecision.objects.filter(account=ours)) == rows(SignalDecision.objects.filter(account=theirs))
    assert rows(PaperTrade.objects.filter(account=ours)) == rows(PaperTrade.objects.filter(account=theirs))
    assert PaperTrade.objects.get(pk=trades[3].pk).entry_price == Decimal("36787.4200000001")
    assert all(d.created_at is not None for d in SignalDecision.objects.filter(account=ours))


def test_one_row_takes_the_same_path_as_many():
    ours, theirs = (account_create(name=name, system_type="paper_trading", starting_balance=Decimal(10000)) for name in ("ours", "theirs"))
    (decision,), (trade,) = make(ours, 1)
    bulk_insert(SignalDecision, [decision])
    bulk_insert(PaperTrade, [trade])
    orm_decisions, orm_trades = make(theirs, 1)
    SignalDecision.objects.bulk_create(orm_decisions)
    PaperTrade.objects.bulk_create(orm_trades)

    assert trade.decision_id == decision.pk
    assert rows(SignalDecision.objects.filter(account=ours)) == rows(SignalDecision.objects.filter(account=theirs))
    assert rows(PaperTrade.objects.filter(account=ours)) == rows(PaperTrade.objects.filter(account=theirs))


def test_an_unsaved_related_object_is_refused_as_django_refuses_it():
    account = account_create(name="unsaved", system_type="paper_trading", starting_balance=Decimal(10000))
    _, trades = make(account, 2)
    with pytest.raises(ValueError, match="unsaved related object 'decision'"):
        bulk_insert(PaperTrade, trades)
    assert not PaperTrade.objects.exists()


SAMPLES = {
    "DecimalField": [None, Decimal("36787.4200000001"), Decimal("-0E-10"), Decimal("1E+3"), 2.5, 7, "0.1"],
    "DateTimeField": [None, WHEN, WHEN.replace(microsecond=123456), WHEN.astimezone(timezone(timedelta(hours=-5)))],
    "JSONField": [None, {}, [], {"a": 1, "b": [1.5, None, True], "c": "é"}, {"x": 0.1, "y": -0.0}, {"x": 0.1, "y": 0.0},
                  {"x": 1}, {"x": 1.0}, {"y": 1.0}, "text", 3],
}
MODELS = (SignalDecision, PaperTrade, TrainingRecord, StrategyPerformance, SignalQuality, MarketRegimeStats, FeatureImportance, PriceLevel)


@pytest.mark.parametrize("vendor", ["postgresql", "sqlite"])
def test_each_column_is_prepared_as_the_field_prepares_it(vendor):
    db = connection if vendor == "postgresql" else SQLiteWrapper({**connection.settings_dict, "NAME": ":memory:"}, alias="check")
    fields = {field for model in MODELS for field in model._meta.concrete_fields if not field.primary_key}
    checked = set()
    for field in fields:
        convert = _converter(field, db)
        if convert is None:
            continue
        checked.add(field.get_internal_type())
        for value in SAMPLES[field.get_internal_type()]:
            theirs = field.get_db_prep_save(value, db)
            if isinstance(theirs, Jsonb):  # psycopg sends the JSON text of its object
                theirs = json.dumps(theirs.obj)
            assert convert(value) == theirs and type(convert(value)) is type(theirs), (field, value)
    assert checked == set(SAMPLES)


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
