"""One evaluation run in its own database: replay the candles, then write what it decided and traded as JSON."""
import json
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand

from operations.evaluation.export import run_export


class Command(BaseCommand):
    help = "Run by `evaluate` in a child process on a fresh database: replay, then export decisions and trades."

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, help="JSON file to write")
        parser.add_argument("--candles-dir", required=True)
        parser.add_argument("--symbols", required=True)
        parser.add_argument("--timeframe", required=True)
        parser.add_argument("--from", dest="start", required=True)
        parser.add_argument("--to", dest="end", required=True)
        parser.add_argument("--engines", required=True)
        parser.add_argument("--no-learning", action="store_true")
        parser.add_argument(
            "--shuffle-labels-seed", type=int, help="tests only: learning sees other trades' results (leakage guard)"
        )

    def handle(self, *args, **options):
        call_command(
            "replay",
            candles_dir=options["candles_dir"],
            symbols=options["symbols"],
            timeframe=options["timeframe"],
            start=options["start"],
            end=options["end"],
            engines=options["engines"],
            no_learning=options["no_learning"],
            shuffle_labels_seed=options["shuffle_labels_seed"],
            account_prefix="evaluation",
            no_progress=True,
            stdout=self.stdout,
        )
        Path(options["out"]).write_text(json.dumps(run_export()))
