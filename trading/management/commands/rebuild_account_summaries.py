"""Rebuild the dashboard's per-account summaries (closed trades per day, decision counts) from the trades and decisions."""
from django.core.management.base import BaseCommand

from trading.models import AccountDay, AccountDecisionCounts
from trading.services.summaries import account_summaries_rebuild


class Command(BaseCommand):
    help = (
        "Recompute the per-account summaries the dashboard reads (closed real trades per UTC exit day, decision counts) "
        "from paper_trades and signal_decisions: after rows were written around the services (a raw bulk load)."
    )

    def handle(self, *args, **options):
        account_summaries_rebuild()
        self.stdout.write(f"account days: {AccountDay.objects.count()} rows; decision counts: {AccountDecisionCounts.objects.count()} rows")
        self.stdout.write(self.style.SUCCESS("Account summaries rebuilt."))
