"""Paper accounts from the command line: list, create, pause, resume, the symbols each trades, and one live account per engine."""
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from learning.models import SystemType
from trading.models import PaperAccount
from trading.services.accounts import (
    account_create,
    account_figures,
    account_pause,
    account_resume,
    account_set_symbols,
    accounts_ensure_live,
)


def _money(value: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation:
        raise CommandError(f"--balance {value!r} is not a number.") from None


def _command_error(error: ValidationError) -> CommandError:
    return CommandError("; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items()))


class Command(BaseCommand):
    help = (
        "Manage paper accounts: list | create NAME --engine ENGINE [--balance N] [--symbols S ...] [--broker B] | pause NAME | resume NAME"
        " | symbols NAME [S ...] [--all] | ensure-live"
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("list", help="Every account with its balance, equity and state.")
        create = actions.add_parser("create", help="A new paper account.")
        create.add_argument("name")
        create.add_argument("--engine", required=True, choices=SystemType.values, help="Which engine trades it.")
        create.add_argument("--balance", default=None, help="Starting balance (default TRADING_STARTING_BALANCE).")
        create.add_argument("--symbols", nargs="+", default=[], help="Markets it trades, among TRADING_MARKETS (default: all).")
        create.add_argument("--broker", choices=("paper", "exchange"), default="paper", help="Fill on the simulator or on TRADING_EXCHANGE (its testnet).")
        symbols = actions.add_parser("symbols", help="Show or set the markets an account trades.")
        symbols.add_argument("account")
        symbols.add_argument("symbols", nargs="*", help="Markets among TRADING_MARKETS, e.g. BTC/USDT:USDT; none: show them.")
        symbols.add_argument("--all", action="store_true", help="Trade every market of TRADING_MARKETS again.")
        for name in ("pause", "resume"):
            action = actions.add_parser(name, help=f"{name.capitalize()} an account (by name or id).")
            action.add_argument("account")
        actions.add_parser("ensure-live", help="Create live-<engine> for each engine that has none (idempotent).")

    def handle(self, *args, action: str, **options):
        balance = _money(options.get("balance") or settings.TRADING_STARTING_BALANCE)
        if action == "list":
            self._list()
        elif action == "create":
            try:
                account = account_create(name=options["name"], system_type=options["engine"], starting_balance=balance, symbols=options["symbols"], broker=options["broker"])
            except ValidationError as error:
                raise _command_error(error) from None
            where = "" if account.broker == "paper" else " on the exchange"
            self.stdout.write(self.style.SUCCESS(f"Created {account} with {account.starting_balance}, trading {', '.join(account.traded_markets)}{where}"))
        elif action == "symbols":
            account = self._find(options["account"])
            if options["symbols"] or options["all"]:
                if options["symbols"] and options["all"]:
                    raise CommandError("Give symbols or --all, not both.")
                try:
                    account = account_set_symbols(account_id=account.pk, symbols=options["symbols"])
                except ValidationError as error:
                    raise _command_error(error) from None
            self.stdout.write(f"{account.name} trades {', '.join(account.traded_markets)}{'' if account.symbols else ' (all of TRADING_MARKETS)'}")
        elif action in ("pause", "resume"):
            service = account_pause if action == "pause" else account_resume
            account = service(account_id=self._find(options["account"]).pk)
            self.stdout.write(f"{account}: {'paused' if account.is_paused else 'active'}")
        else:
            for account, created in accounts_ensure_live(starting_balance=balance):
                self.stdout.write(f"{'Created' if created else 'Exists: '} {account}{' (paused)' if account.is_paused else ''}")

    def _find(self, key: str) -> PaperAccount:
        account = PaperAccount.objects.filter(pk=int(key)).first() if key.isdigit() else None
        account = account or PaperAccount.objects.filter(name=key).first()
        if account is None:
            raise CommandError(f"No account named {key!r} (manage.py accounts list shows them).")
        return account

    def _list(self) -> None:
        accounts = list(PaperAccount.objects.order_by("pk"))
        if not accounts:
            self.stdout.write("No accounts yet: manage.py accounts create NAME --engine paper_trading (or ensure-live).")
        for account in accounts:
            figures = account_figures(account=account)
            self.stdout.write(
                f"{account.pk:>4}  {account.name:<28} {account.system_type:<16} {'paused' if account.is_paused else 'active':<7}"
                f" balance {account.current_balance:.2f}  equity {figures.equity:.2f}  open {figures.open_trades}  closed {figures.closed_trades}"
                f"  {account.broker}  {', '.join(account.traded_markets) if account.symbols else 'all markets'}"
            )
