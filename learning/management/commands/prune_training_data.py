"""Delete training records older than LEARNING_RETENTION_DAYS (aggregates are kept)."""
from django.core.management.base import BaseCommand

from learning.services.retention import training_records_prune


class Command(BaseCommand):
    help = "Delete training records past the retention window, in batches."

    def handle(self, *args, **options):
        deleted = training_records_prune()
        self.stdout.write(self.style.SUCCESS(f"Pruned {deleted} training records."))
