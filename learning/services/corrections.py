"""Corrections of the source of truth: changing or deleting a stored outcome is an explicit act with
a reason, recorded (who, when, why, before and after), that recomputes the aggregate rows it touches.

Training records are otherwise append-only: the engines and the API only ever add them.
"""
import json
from collections.abc import Sequence
from dataclasses import fields

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from learning.models import TrainingRecord, TrainingRecordCorrection
from learning.services.aggregates import OutcomeFacts, aggregates_rebuild_keys
from learning.services.outcomes import validate_trade_outcome
from learning.types import TradeOutcome

# What a correction may change: what the engine reported. The trade's identity (trade_id) and what
# follows from the rest (success from net P&L, the duration from the times) may not be set by hand.
CORRECTABLE_FIELDS = tuple(
    field.name for field in fields(TradeOutcome) if field.name not in ("trade_id", "success", "duration_minutes")
)


def training_record_snapshot(record: TrainingRecord) -> dict:
    """Every stored field of a record as JSON (decimals as exact strings, times in ISO 8601)."""
    values = {field.name: getattr(record, field.attname) for field in TrainingRecord._meta.concrete_fields if field.name != "id"}
    return json.loads(json.dumps(values, cls=DjangoJSONEncoder))


def _checked_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the record is changed: the reason is kept with the correction."})
    return reason


@transaction.atomic
def training_record_correct(*, record_id: int, changes: dict, reason: str, user) -> TrainingRecordCorrection:
    """Change some fields of one stored outcome, with a reason, and recompute the aggregates it touches.

    The corrected record is validated as a new outcome would be (success and duration follow from it
    again); the aggregate rows of its old and its new values are rebuilt from the records, so they
    equal a full rebuild. Raises ValidationError naming each bad field, or if nothing would change.
    """
    reason = _checked_reason(reason)
    unknown = sorted(set(changes) - set(CORRECTABLE_FIELDS))
    if unknown:
        raise ValidationError({name: f"Cannot be corrected; correctable fields: {', '.join(CORRECTABLE_FIELDS)}." for name in unknown})
    record = TrainingRecord.objects.select_for_update().get(pk=record_id)
    before = training_record_snapshot(record)
    original = OutcomeFacts.from_record(record)

    values = {name: getattr(record, name) for name in CORRECTABLE_FIELDS} | dict(changes)
    validated = validate_trade_outcome(TradeOutcome(trade_id=record.trade_id, **values))
    for field in TrainingRecord._meta.concrete_fields:
        if field.name not in ("id", "trade_id", "created_at"):
            setattr(record, field.attname, getattr(validated, field.attname))
    record.save()
    record.refresh_from_db()
    after = training_record_snapshot(record)
    if after == before:
        raise ValidationError("The correction changes nothing.")
    aggregates_rebuild_keys(facts_list=[original, OutcomeFacts.from_record(record)])
    return TrainingRecordCorrection.objects.create(
        record=record, trade_id=record.trade_id, action=TrainingRecordCorrection.Action.CORRECT,
        user=user, username=user.get_username(), reason=reason, before=before, after=after,
    )  # fmt: skip


@transaction.atomic
def training_records_delete(*, record_ids: Sequence[int], reason: str, user) -> int:
    """Delete records, with a reason kept for each (and its last state), and recompute the aggregates they touched."""
    reason = _checked_reason(reason)
    records = list(TrainingRecord.objects.select_for_update().filter(id__in=record_ids).order_by("pk"))
    if not records:
        return 0
    TrainingRecordCorrection.objects.bulk_create(
        TrainingRecordCorrection(
            trade_id=record.trade_id, action=TrainingRecordCorrection.Action.DELETE, user=user,
            username=user.get_username(), reason=reason, before=training_record_snapshot(record), after=None,
        )  # fmt: skip
        for record in records
    )
    facts = [OutcomeFacts.from_record(record) for record in records]
    TrainingRecord.objects.filter(id__in=[record.id for record in records]).delete()
    aggregates_rebuild_keys(facts_list=facts)
    return len(records)
