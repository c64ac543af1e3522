"""Migrations that move data: 0005 turns the online watermark and deferred ids into `learned_at`, and back."""
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from learning.models import TrainingRecord
from learning.services.online import online_update
from tests.learning.learnable import fresh_model_state, store_learnable  # noqa: F401  (autouse)

BEFORE, AFTER = ("learning", "0004_recent_performance"), ("learning", "0005_training_record_learned_at")
LAST_UPDATE = datetime(2024, 3, 1, 12, tzinfo=UTC)


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.migrate([target] if target else executor.loader.graph.leaf_nodes())
    return executor.loader.project_state([target] if target else executor.loader.graph.leaf_nodes()).apps


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_records_the_watermark_had_learned_are_marked_and_the_others_are_learned_next():
    store_learnable(6)
    ids = sorted(TrainingRecord.objects.values_list("id", flat=True))
    try:
        old = migrate(BEFORE)
        # Learned through ids[3], but ids[1] was deferred (its store had not committed then).
        old.get_model("learning", "OnlineLearningState").objects.create(
            pk=1, trained_through_record_id=ids[3], deferred_record_ids={str(ids[1]): LAST_UPDATE.isoformat()},
            samples_learned=3, updates=1, last_update_at=LAST_UPDATE,
        )  # fmt: skip
        migrate(AFTER)
        learned = dict(TrainingRecord.objects.values_list("id", "learned_at"))
        assert [learned[record_id] for record_id in ids] == [LAST_UPDATE, None, LAST_UPDATE, LAST_UPDATE, None, None]

        old = migrate(BEFORE)  # and back: the watermark and the deferred ids are what they were
        state = old.get_model("learning", "OnlineLearningState").objects.get()
        assert state.trained_through_record_id == ids[3] and list(state.deferred_record_ids) == [str(ids[1])]
    finally:
        migrate(None)
    # Migrated forward again: the next online update learns the three the watermark had not.
    unlearned = set(TrainingRecord.objects.filter(learned_at__isnull=True).values_list("id", flat=True))
    assert unlearned == {ids[1], ids[4], ids[5]}
    assert online_update().learned == 3
    assert not TrainingRecord.objects.filter(learned_at__isnull=True).exists()
