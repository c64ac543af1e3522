"""Admin: every learning table browsable; edits and deletes of records keep the aggregates exact."""
import pytest
from django.urls import reverse

from learning.models import StrategyPerformance, TrainingRecord
from learning.services import store_trade_outcomes
from learning.services.aggregates import AGGREGATES, aggregates_rebuild
from tests.conftest import aggregates_snapshot
from tests.factories import TradeOutcomeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def records():
    store_trade_outcomes(outcomes=TradeOutcomeFactory.build_batch(40))
    return TrainingRecord.objects.order_by("id")


def change_form_data(admin_client, record, **changes) -> tuple[str, dict]:
    """The record's admin change URL and its form as a browser would post it, with `changes`."""
    url = reverse("admin:learning_trainingrecord_change", args=[record.pk])
    form = admin_client.get(url).context["adminform"].form
    data = {name: ("" if form[name].value() is None else form[name].value()) for name in form.fields}
    data.update(
        features="{}",
        model_versions="{}",
        entry_time_0=record.entry_time.strftime("%Y-%m-%d"),
        entry_time_1=record.entry_time.strftime("%H:%M:%S"),
        exit_time_0=record.exit_time.strftime("%Y-%m-%d"),
        exit_time_1=record.exit_time.strftime("%H:%M:%S"),
    )
    data.update(changes)
    return url, data


def changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


@pytest.mark.parametrize("model", [TrainingRecord, *(aggregate.model for aggregate in AGGREGATES)])
def test_every_learning_table_lists_filters_and_searches(admin_client, records, model):
    assert admin_client.get(changelist(model)).status_code == 200
    assert admin_client.get(changelist(model), {"q": "BTC"}).status_code == 200


def test_training_record_filters(admin_client, records):
    response = admin_client.get(changelist(TrainingRecord), {"system_type__exact": "paper_trading", "success__exact": "1"})
    assert response.status_code == 200
    shown = response.context["cl"].result_count
    assert shown == TrainingRecord.objects.filter(system_type="paper_trading", success=True).count()


def test_editing_a_record_recomputes_its_aggregates(admin_client, records):
    record = records.first()
    url, data = change_form_data(
        admin_client,
        record,
        market_regime="ranging" if record.market_regime != "ranging" else "trending_up",
        net_pnl="-12.5",
        pnl_pct="-0.0125",
        features='{"rsi_14": 40.0}',
    )
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    record.refresh_from_db()
    assert record.success is False and str(record.net_pnl).startswith("-12.5")
    corrected = aggregates_snapshot()
    aggregates_rebuild()
    assert aggregates_snapshot() == corrected


def test_an_edit_that_breaks_a_rule_is_refused_with_the_field_named(admin_client, records):
    url, data = change_form_data(admin_client, records.first(), entry_price="0")
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "entry_price" in response.context["adminform"].form.errors


def test_deleting_records_recomputes_their_aggregates(admin_client, records):
    doomed = list(records.values_list("id", flat=True)[:7])
    response = admin_client.post(
        changelist(TrainingRecord), {"action": "delete_and_correct", "_selected_action": doomed}, follow=True
    )
    assert response.status_code == 200
    assert TrainingRecord.objects.count() == 33
    assert sum(row.total_trades for row in StrategyPerformance.objects.all()) == 33
    corrected = aggregates_snapshot()
    aggregates_rebuild()
    assert aggregates_snapshot() == corrected


def test_rebuild_action_restores_tampered_aggregates(admin_client, records):
    StrategyPerformance.objects.update(total_trades=999)
    first = StrategyPerformance.objects.first().pk
    admin_client.post(changelist(StrategyPerformance), {"action": "rebuild_learning_stats", "_selected_action": [first]})
    assert sum(row.total_trades for row in StrategyPerformance.objects.all()) == 40


def test_aggregates_are_read_only_in_the_admin(admin_client, records):
    row = StrategyPerformance.objects.first()
    url = reverse("admin:learning_strategyperformance_change", args=[row.pk])
    response = admin_client.post(url, {"total_trades": 5})
    row.refresh_from_db()
    assert row.total_trades != 5
    assert response.status_code in (200, 403)
