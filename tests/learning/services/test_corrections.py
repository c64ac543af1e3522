"""Corrections of stored outcomes: validated, audited (who, when, why, before/after), aggregates kept equal to a rebuild."""
import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from learning.models import TrainingRecord, TrainingRecordCorrection
from learning.services import store_trade_outcomes
from learning.services.aggregates import aggregates_rebuild
from learning.services.corrections import training_record_correct, training_records_delete
from tests.conftest import aggregates_snapshot
from tests.factories import TradeOutcomeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator():
    return get_user_model().objects.create_user("operator", password="x-password-123")


@pytest.fixture
def record():
    store_trade_outcomes(outcomes=TradeOutcomeFactory.build_batch(30, strategy_type="trend_following"))
    return TrainingRecord.objects.order_by("id").first()


def test_a_correction_moves_the_record_between_aggregate_rows_exactly(record, operator):
    other_strategy = "mean_reversion"
    training_record_correct(record_id=record.pk, changes={"strategy_type": other_strategy, "confidence_score": 0.97}, reason="mislabelled", user=operator)
    corrected = aggregates_snapshot()
    aggregates_rebuild()
    assert aggregates_snapshot() == corrected
    assert any(key[0] == other_strategy for key in corrected["strategy_performance_learning"])


@pytest.mark.parametrize(
    ("changes", "reason", "field"),
    [
        ({"net_pnl": "1"}, "  ", "reason"),
        ({"trade_id": "renamed"}, "why", "trade_id"),
        ({"success": False}, "why", "success"),
        ({"exit_price": "-3"}, "why", "exit_price"),
    ],
)
def test_a_bad_correction_changes_nothing_and_names_the_field(record, operator, changes, reason, field):
    before = aggregates_snapshot()
    with pytest.raises(ValidationError) as raised:
        training_record_correct(record_id=record.pk, changes=changes, reason=reason, user=operator)
    assert field in raised.value.message_dict
    assert aggregates_snapshot() == before and not TrainingRecordCorrection.objects.exists()


def test_a_deletion_keeps_the_last_state_and_survives_the_record(record, operator):
    trade_id = record.trade_id
    assert training_records_delete(record_ids=[record.pk], reason="test data", user=operator) == 1
    audit = TrainingRecordCorrection.objects.get()
    assert audit.record is None and audit.trade_id == trade_id and audit.before["trade_id"] == trade_id and audit.after is None
    operator.delete()
    audit.refresh_from_db()
    assert audit.user is None and audit.username == "operator"
