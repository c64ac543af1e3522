"""Load demo data for browsing: the bundled candles and a short replay of them, learning as it goes; idempotent."""
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

CANDLES_DIR = Path(settings.BASE_DIR) / "data" / "candles"


class Command(BaseCommand):
    help = (
        "Import the bundled candles and replay a few months of them into the current database, so the "
        "dashboard and admin have trades, decisions, learned tables and models to show. Running it again adds nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="start", default="2022-07-01", help="first replayed day, YYYY-MM-DD (UTC)")
        parser.add_argument("--to", dest="end", default="2022-12-31", help="last replayed day, YYYY-MM-DD (UTC), inclusive")
        parser.add_argument("--engines", default="paper", help="comma-separated: paper, scraping")
        parser.add_argument("--account-prefix", default="demo")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        unapplied = len(executor.migration_plan(executor.loader.graph.leaf_nodes()))
        if unapplied:
            # A fresh database: create its tables rather than fail on the first missing one.
            self.stdout.write(f"The database lacks {unapplied} migrations; applying them first (manage.py migrate).")
            call_command("migrate", verbosity=0, interactive=False)
        files = sorted(str(path) for path in CANDLES_DIR.glob("*.csv"))
        if not files:
            raise CommandError(f"No bundled candle files in {CANDLES_DIR}.")
        call_command("import_candles", *files, exchange=settings.TRADING_EXCHANGE, stdout=self.stdout, stderr=self.stderr)
        call_command(
            "replay",
            engines=options["engines"],
            start=options["start"],
            end=options["end"],
            account_prefix=options["account_prefix"],
            skip_done=True,
            no_progress=options["no_progress"],
            verbosity=options["verbosity"],
            stdout=self.stdout,
            stderr=self.stderr,
        )
        self.stdout.write(self.style.SUCCESS("Demo data loaded: browse it on the dashboard (/) and in the admin (/admin/)."))
