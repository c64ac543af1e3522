"""Kill switch: pause one account or every account and cancel their open exchange orders."""
from django.core.management.base import BaseCommand, CommandError

from trading.brokers import exchange_order_client
from trading.models import PaperAccount
from trading.services.orders import kill_switch


class Command(BaseCommand):
    help = "Stop trading now: pause the account (default: every account) and cancel its open exchange orders."

    def add_arguments(self, parser):
        parser.add_argument("--account", default=None, help="Name or id of one account (default: all).")

    def handle(self, *args, account: str | None, **options):
        account_id = None
        if account is not None:
            found = PaperAccount.objects.filter(pk=int(account)).first() if account.isdigit() else PaperAccount.objects.filter(name=account).first()
            if found is None:
                raise CommandError(f"No account named {account!r} (manage.py accounts list shows them).")
            account_id = found.pk
        cancelled = kill_switch(client_for=exchange_order_client, account_id=account_id)
        for name, count in cancelled.items():
            self.stdout.write(f"{name}: paused, {count} open orders cancelled")
        self.stdout.write("Resume an account with: manage.py accounts resume NAME")
