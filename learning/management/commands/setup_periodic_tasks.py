"""Create the learning schedule in django-celery-beat's tables; running it again changes nothing."""
import json

from django.core.management.base import BaseCommand
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

# The default schedule. Once created, the rows are edited in the admin; --reset restores these.
DEFAULT_SCHEDULE = (
    ("learning: online update", "learning.tasks.online_update_task", {"interval": {"every": 5, "period": IntervalSchedule.MINUTES}}),
    ("learning: batch retrain", "learning.tasks.batch_retrain_task", {"crontab": {"minute": "15", "hour": "2"}}),
    ("learning: prune training data", "learning.tasks.prune_training_data_task", {"crontab": {"minute": "45", "hour": "3"}}),
    ("learning: rebuild learning stats", "learning.tasks.rebuild_learning_stats_task", {"crontab": {"minute": "30", "hour": "4", "day_of_week": "0"}}),
)


def _schedule(spec: dict) -> dict:
    """The schedule row for a spec, reused when an identical one exists (the admin may have added more)."""
    if "interval" in spec:
        interval = IntervalSchedule.objects.filter(**spec["interval"]).order_by("pk").first()
        return {"interval": interval or IntervalSchedule.objects.create(**spec["interval"]), "crontab": None}
    fields = {"minute": "0", "hour": "*", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*", "timezone": "UTC", **spec["crontab"]}
    crontab = CrontabSchedule.objects.filter(**fields).order_by("pk").first()
    return {"crontab": crontab or CrontabSchedule.objects.create(**fields), "interval": None}


class Command(BaseCommand):
    help = "Create the periodic learning tasks (online update, retrain, prune, stats rebuild); idempotent."

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset", action="store_true", help="Restore the default schedule and enable tasks edited in the admin."
        )

    @transaction.atomic
    def handle(self, *args, **options):
        created = reset = kept = 0
        for name, task, spec in DEFAULT_SCHEDULE:
            existing = PeriodicTask.objects.select_for_update().filter(name=name).first()
            if existing is None:
                PeriodicTask.objects.create(name=name, task=task, args=json.dumps([]), kwargs=json.dumps({}), **_schedule(spec))
                created += 1
            elif options["reset"]:
                for field, value in {"task": task, "enabled": True, **_schedule(spec)}.items():
                    setattr(existing, field, value)
                existing.save()
                reset += 1
            else:
                kept += 1  # an operator's edits in the admin survive a re-deploy
        self.stdout.write(self.style.SUCCESS(f"Periodic learning tasks: {created} created, {reset} reset, {kept} kept."))
