"""Admin: every learning table browsable; records append-only, corrected and deleted only by the
audited action, which keeps the aggregates exact and the trail visible."""
import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from learning.models import StrategyPerformance, TrainingRecord, TrainingRecordCorrection
from learning.services import store_trade_outcomes
from learning.services.aggregates import AGGREGATES, aggregates_rebuild
from learning.services.corrections import training_records_delete
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


def test_the_change_form_refuses_to_edit_a_record(admin_client, records):
    """The source of truth is append-only in the admin: the edit that flipped a P&L now changes nothing."""
    record = records.first()
    before = aggregates_snapshot()
    url, data = change_form_data(admin_client, record, net_pnl="407", pnl_pct="0.407")
    response = admin_client.post(url, data)
    assert response.status_code == 403
    record.refresh_from_db()
    assert str(record.net_pnl) != "407.0000000000"
    assert aggregates_snapshot() == before
    # The page still shows the record, read-only, and offers the audited correction instead.
    page = admin_client.get(url).content.decode()
    assert 'name="net_pnl"' not in page and reverse("admin:learning_trainingrecord_correct", args=[record.pk]) in page


def test_the_delete_form_and_bulk_delete_are_refused(admin_client, records):
    record = records.first()
    response = admin_client.post(reverse("admin:learning_trainingrecord_delete", args=[record.pk]), {"post": "yes"})
    assert response.status_code == 403
    admin_client.post(changelist(TrainingRecord), {"action": "delete_selected", "_selected_action": [record.pk], "post": "yes"})
    assert TrainingRecord.objects.filter(pk=record.pk).exists()
    assert not TrainingRecordCorrection.objects.exists()


def correction_form_data(admin_client, record, **changes) -> tuple[str, dict]:
    url = reverse("admin:learning_trainingrecord_correct", args=[record.pk])
    form = admin_client.get(url).context["form"]
    data = {name: form[name].value() for name in form.fields if name != "reason"}
    data.update(
        {name: ("" if value is None else value) for name, value in data.items()},
        features=json.dumps(record.features),
        model_versions=json.dumps(record.model_versions),
        entry_time=record.entry_time.strftime("%Y-%m-%d %H:%M:%S"),
        exit_time=record.exit_time.strftime("%Y-%m-%d %H:%M:%S"),
    )
    data.update(changes)
    return url, data


def test_a_correction_changes_the_record_recomputes_the_statistics_and_is_audited(admin_client, admin_user, records):
    record = records.filter(success=True).first()
    old_pnl, old_regime = str(record.net_pnl), record.market_regime
    new_regime = "ranging" if old_regime != "ranging" else "trending_up"
    url, data = correction_form_data(
        admin_client, record, net_pnl="-12.5", pnl_pct="-0.0125", market_regime=new_regime, reason="Exit fill was booked at the wrong price (ticket 42)."
    )
    started = timezone.now()
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["form"].errors if response.context else response

    record.refresh_from_db()
    assert str(record.net_pnl) == "-12.5000000000" and record.success is False and record.market_regime == new_regime
    corrected = aggregates_snapshot()
    aggregates_rebuild()
    assert aggregates_snapshot() == corrected

    audit = TrainingRecordCorrection.objects.get()
    assert audit.action == "correct" and audit.record == record and audit.trade_id == record.trade_id
    assert audit.user == admin_user and audit.username == admin_user.username
    assert started <= audit.created_at <= timezone.now()
    assert audit.reason == "Exit fill was booked at the wrong price (ticket 42)."
    assert audit.before["net_pnl"] == old_pnl and audit.after["net_pnl"] == "-12.5000000000"
    assert audit.before["success"] is True and audit.after["success"] is False
    assert set(audit.changed_fields()) == {"net_pnl", "pnl_pct", "market_regime", "success"}

    # The trail is visible on the record's page and in its own list.
    page = admin_client.get(reverse("admin:learning_trainingrecord_change", args=[record.pk])).content.decode()
    assert "ticket 42" in page and old_pnl in page
    listed = admin_client.get(changelist(TrainingRecordCorrection)).content.decode()
    assert record.trade_id in listed and "ticket 42" in listed


def test_a_correction_needs_a_reason_and_must_keep_to_the_rules(admin_client, records):
    record = records.first()
    url, data = correction_form_data(admin_client, record, net_pnl="5")
    response = admin_client.post(url, data)
    assert response.status_code == 200 and "reason" in response.context["form"].errors
    url, data = correction_form_data(admin_client, record, entry_price="0", reason="typo")
    response = admin_client.post(url, data)
    assert response.status_code == 200 and "entry_price" in response.context["form"].errors
    url, data = correction_form_data(admin_client, record, reason="nothing to change")
    response = admin_client.post(url, data)
    assert response.status_code == 200 and "changes nothing" in str(response.context["form"].errors)
    assert not TrainingRecordCorrection.objects.exists()


def test_correcting_needs_the_change_permission(client, records):
    viewer = get_user_model().objects.create_user("auditor", password="x-password-123", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_trainingrecord"))
    client.force_login(viewer)
    record = records.first()
    assert client.get(reverse("admin:learning_trainingrecord_change", args=[record.pk])).status_code == 200
    assert client.get(reverse("admin:learning_trainingrecord_correct", args=[record.pk])).status_code == 403


def test_deleting_needs_a_reason_is_audited_and_recomputes_the_statistics(admin_client, admin_user, records):
    doomed = list(records.values_list("id", flat=True)[:7])
    kept_before = {row["trade_id"]: row for row in records.filter(id__in=doomed).values("trade_id", "net_pnl")}
    asked = admin_client.post(changelist(TrainingRecord), {"action": "delete_with_reason", "_selected_action": doomed})
    assert asked.status_code == 200 and "reason" in asked.content.decode()
    assert TrainingRecord.objects.count() == 40  # nothing deleted without a reason

    response = admin_client.post(
        changelist(TrainingRecord),
        {"action": "delete_with_reason", "_selected_action": doomed, "reason": "Duplicates of an imported file."},
        follow=True,
    )
    assert response.status_code == 200
    assert TrainingRecord.objects.count() == 33
    assert sum(row.total_trades for row in StrategyPerformance.objects.all()) == 33
    corrected = aggregates_snapshot()
    aggregates_rebuild()
    assert aggregates_snapshot() == corrected

    audits = TrainingRecordCorrection.objects.filter(action="delete")
    assert {audit.trade_id for audit in audits} == set(kept_before)
    for audit in audits:
        assert audit.user == admin_user and audit.reason == "Duplicates of an imported file." and audit.after is None
        assert audit.before["net_pnl"] == str(kept_before[audit.trade_id]["net_pnl"])
    assert "Duplicates of an imported file." in admin_client.get(changelist(TrainingRecordCorrection)).content.decode()


def test_the_audit_trail_cannot_be_edited_or_deleted(admin_client, admin_user, records):
    training_records_delete(record_ids=[records.first().pk], reason="test", user=admin_user)
    audit = TrainingRecordCorrection.objects.get()
    url = reverse("admin:learning_trainingrecordcorrection_change", args=[audit.pk])
    assert admin_client.post(url, {"reason": "rewritten"}).status_code == 403
    assert admin_client.post(reverse("admin:learning_trainingrecordcorrection_delete", args=[audit.pk]), {"post": "yes"}).status_code == 403
    audit.refresh_from_db()
    assert audit.reason == "test"


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
