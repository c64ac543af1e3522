"""Retrain the batch model now and report whether the challenger became active."""
import json

from django.core.management.base import BaseCommand

from learning.services.retrain import batch_retrain
from tradelearn.console import results_printed_by_command


class Command(BaseCommand):
    help = "Train a batch model on all training records; activate it if it beats the active one."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args, **options):
        # The retrain's log lines ("Batch retrain ...", "Activated ...") say what the lines below print.
        with results_printed_by_command("learning", verbosity=options["verbosity"]):
            result = batch_retrain()
        if options["json"]:
            self.stdout.write(json.dumps(result.__dict__, default=str))
            return
        if result.metrics:
            scores = ", ".join(f"{name} {result.metrics[name]:.4f}" for name in ("log_loss", "brier", "accuracy") if result.metrics.get(name) is not None)
            self.stdout.write(f"{result.version}: {scores}")
        style = self.style.SUCCESS if result.activated else self.style.WARNING
        self.stdout.write(style(result.reason))
