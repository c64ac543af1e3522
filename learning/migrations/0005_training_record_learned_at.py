"""Learned exactly once, one way: each training record says when it was learned (`learned_at`, as examples do).

The online state's watermark and deferred ids are turned into `learned_at` first: a record at
or below the watermark and not deferred was learned, so it is stamped with the last update's
time; the others stay unlearned, for the next online update. Reversing recomputes them.
"""
from django.db import migrations, models
from django.db.models import Max
from django.utils import timezone


def watermark_to_learned_at(apps, schema_editor):
    state = apps.get_model("learning", "OnlineLearningState").objects.first()
    if state is None:
        return
    deferred = [int(record_id) for record_id in state.deferred_record_ids]
    records = apps.get_model("learning", "TrainingRecord").objects.filter(id__lte=state.trained_through_record_id)
    records.exclude(id__in=deferred).update(learned_at=state.last_update_at or timezone.now())


def learned_at_to_watermark(apps, schema_editor):
    records = apps.get_model("learning", "TrainingRecord").objects
    watermark = records.filter(learned_at__isnull=False).aggregate(top=Max("id"))["top"] or 0
    stamp = timezone.now().isoformat()
    deferred = records.filter(id__lt=watermark, learned_at__isnull=True).values_list("id", flat=True)
    apps.get_model("learning", "OnlineLearningState").objects.update(
        trained_through_record_id=watermark, deferred_record_ids={str(record_id): stamp for record_id in deferred}
    )


class Migration(migrations.Migration):
    dependencies = [("learning", "0004_recent_performance")]

    operations = [
        migrations.AddField(
            model_name="trainingrecord",
            name="learned_at",
            field=models.DateTimeField(
                blank=True,
                editable=False,
                help_text="When an online update (or a replay's checkpoint) claimed it: learned, or skipped as not fitting the schema.",
                null=True,
            ),
        ),
        migrations.AddIndex(
            model_name="trainingrecord",
            index=models.Index(condition=models.Q(("learned_at__isnull", True)), fields=["id"], name="ml_training_unlearned_idx"),
        ),
        migrations.RunPython(watermark_to_learned_at, learned_at_to_watermark),
        migrations.RemoveField(model_name="onlinelearningstate", name="deferred_record_ids"),
        migrations.RemoveField(model_name="onlinelearningstate", name="trained_through_record_id"),
    ]
