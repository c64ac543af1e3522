"""Create every app's default schedule in django-celery-beat's tables; running it again changes nothing."""
import importlib
import importlib.util
import json

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask


def default_schedule() -> list[tuple[str, str, dict]]:
    """`PERIODIC_TASKS` of every installed app's `schedule` module (so learning need not know the engines)."""
    schedule = []
    for app in apps.get_app_configs():
        if importlib.util.find_spec(f"{app.name}.schedule") is not None:
            schedule.extend(importlib.import_module(f"{app.name}.schedule").PERIODIC_TASKS)
    return schedule


def _schedule(spec: dict) -> dict:
    """The schedule row for a spec, reused when an identical one exists (the admin may have added more)."""
    if "interval" in spec:
        interval = IntervalSchedule.objects.filter(**spec["interval"]).order_by("pk").first()
        return {"interval": interval or IntervalSchedule.objects.create(**spec["interval"]), "crontab": None}
    fields = {"minute": "0", "hour": "*", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*", "timezone": "UTC", **spec["crontab"]}
    crontab = CrontabSchedule.objects.filter(**fields).order_by("pk").first()
    return {"crontab": crontab or CrontabSchedule.objects.create(**fields), "interval": None}


class Command(BaseCommand):
    help = "Create the periodic tasks (learning: update, retrain, prune, rebuild; trading: candles and ticks); idempotent."

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset", action="store_true", help="Restore the default schedule and enable tasks edited in the admin."
        )

    @transaction.atomic
    def handle(self, *args, **options):
        created = reset = kept = 0
        for name, task, spec in default_schedule():
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
        self.stdout.write(self.style.SUCCESS(f"Periodic tasks: {created} created, {reset} reset, {kept} kept."))
