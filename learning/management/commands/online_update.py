"""Teach the online models the training records and examples they have not learned yet."""
import json

from django.core.management.base import BaseCommand

from learning.services.online import online_update


class Command(BaseCommand):
    help = "Run the online update now: partial_fit over records and examples not learned yet."

    def add_arguments(self, parser):
        parser.add_argument("--max-records", type=int, default=None, help="Learn at most this many samples.")
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args, **options):
        result = online_update(max_records=options["max_records"])
        if options["json"]:
            self.stdout.write(json.dumps(result.__dict__, default=str))
            return
        self.stdout.write(
            f"Learned {result.learned} samples ({result.skipped} skipped: features outside the schema); "
            f"{result.samples_seen} seen in {result.updates} updates; version {result.version or 'none'}."
        )
        for name, scores in result.metrics.items():
            if scores.get("n"):
                self.stdout.write(f"  {name}: recent log-loss {scores['log_loss']:.4f}, accuracy {scores['accuracy']:.3f} over {scores['n']}")
        self.stdout.write(self.style.SUCCESS("Online update done."))
