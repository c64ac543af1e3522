"""Rebuild the five learned aggregates from the training records."""
from django.core.management.base import BaseCommand

from learning.services.aggregates import aggregates_rebuild


class Command(BaseCommand):
    help = "Recompute strategy, signal, regime, sizing and feature statistics from ml_training_data."

    def handle(self, *args, **options):
        counts = aggregates_rebuild()
        for table, rows in counts.items():
            self.stdout.write(f"{table}: {rows} rows")
        self.stdout.write(self.style.SUCCESS("Learning statistics rebuilt."))
