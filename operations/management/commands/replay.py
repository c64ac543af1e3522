"""Replay stored (or file) candles through the engines, learning as they go, and print a summary."""
import logging
import os
import resource
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from operations.engines import ENGINES
from operations.evaluation.shuffle import ShuffledLabels
from operations.replay import replay
from trading.models import PaperAccount, PaperTrade, SignalDecision
from trading.selectors import candles_frame, read_candles_dir
from trading.services.accounts import account_create


def process_seconds() -> float | None:
    """Seconds since this process started (interpreter start-up and imports included); None where /proc cannot tell."""
    try:
        with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
            started = int(stat.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
            return float(uptime.read().split()[0]) - started
    except (OSError, ValueError, IndexError):
        return None


def parse_day(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError:
        raise CommandError(f"{text!r} is not a date (use YYYY-MM-DD).") from None


class Command(BaseCommand):
    help = "Drive the trading engines over candles in time order, learning from every closed trade."

    def add_arguments(self, parser):
        parser.add_argument("--symbols", default=",".join(settings.TRADING_SYMBOLS))
        parser.add_argument("--timeframe", default=settings.TRADING_TIMEFRAME)
        parser.add_argument("--from", dest="start", required=True, help="first candle day, YYYY-MM-DD (UTC)")
        parser.add_argument("--to", dest="end", required=True, help="last candle day, YYYY-MM-DD (UTC), inclusive")
        parser.add_argument("--engines", default="paper", help="comma-separated: paper, scraping")
        parser.add_argument("--no-learning", action="store_true", help="technical signals only: no models, no learned gating")
        parser.add_argument("--candles-dir", help="read SYMBOL-TIMEFRAME.csv files here instead of the database")
        parser.add_argument("--account-prefix", default="replay")
        parser.add_argument("--reset", action="store_true", help="delete the replay accounts' trades and decisions first")
        parser.add_argument("--skip-done", action="store_true", help="leave an account that has replayed already as it is")
        parser.add_argument("--no-progress", action="store_true")
        parser.add_argument(
            "--shuffle-labels-seed", type=int, help="evaluation's control: learning is told other trades' results (see evaluate)"
        )

    def handle(self, *args, **options):
        if options["verbosity"] < 2:
            # One line per fill and exit is useful live; over years of candles it drowns the summary.
            for name in ("trading.services", "learning.services"):
                logging.getLogger(name).setLevel(logging.WARNING)
        symbols = [symbol.strip().upper() for symbol in options["symbols"].split(",") if symbol.strip()]
        start, end = parse_day(options["start"]), parse_day(options["end"]) + timedelta(days=1) - timedelta(microseconds=1)
        if end < start:
            raise CommandError("--to is before --from.")
        available = ENGINES
        names = [name.strip() for name in options["engines"].split(",") if name.strip()]
        unknown = [name for name in names if name not in available]
        if unknown or not names:
            raise CommandError(f"Unknown engines {unknown}; choose from {', '.join(available)}.")

        frames = {}
        for symbol in symbols:
            try:
                if options["candles_dir"]:
                    frame = read_candles_dir(options["candles_dir"], symbol, options["timeframe"], end=end)
                else:
                    frame = candles_frame(symbol=symbol, timeframe=options["timeframe"], exchange=settings.TRADING_EXCHANGE, end=end)
            except (ValueError, FileNotFoundError) as error:
                raise CommandError(str(error)) from None
            if frame.empty:
                raise CommandError(f"No {options['timeframe']} candles for {symbol}: import them first (manage.py import_candles).")
            frames[symbol] = frame

        engines = []
        for name in names:
            engine_class = available[name]
            account_name = f"{options['account_prefix']}-{name}"
            account = PaperAccount.objects.filter(name=account_name).first()
            if account and options["reset"]:
                SignalDecision.objects.filter(account=account).delete()
                PaperTrade.objects.filter(account=account).delete()
                account.delete()
                account = None
            if account and SignalDecision.objects.filter(account=account).exists():
                if options["skip_done"]:
                    self.stdout.write(f"{account_name} has replayed already; left as it is (--reset starts it again).")
                    continue
                raise CommandError(f"Account {account_name} has replayed already; pass --reset to start it again.")
            if account is None:
                account = account_create(
                    name=account_name,
                    system_type=engine_class.system_type,
                    starting_balance=Decimal(settings.TRADING_STARTING_BALANCE),
                )
            engines.append(engine_class(account=account, use_learning=not options["no_learning"]))

        if not engines:
            return
        started_up = process_seconds()
        summary = replay(
            engines=engines,
            frames=frames,
            timeframe=options["timeframe"],
            start=start,
            end=end,
            learning=not options["no_learning"],
            progress=not options["no_progress"],
            outcome_transform=None if options["shuffle_labels_seed"] is None else ShuffledLabels(seed=options["shuffle_labels_seed"]),
        )
        self.stdout.write(
            f"Replayed {summary.candles:,} candles in {summary.seconds:.1f} s "
            f"({summary.candles / max(summary.seconds, 1e-9):,.0f} candles/s, {summary.visited:,} of them visited); "
            f"model updates {summary.model_updates}, batch retrains {summary.retrains}."
        )
        own, workers = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
        self.stdout.write(
            f"Time: start-up {'?' if started_up is None else f'{started_up:.1f}'} s, learning session start {summary.seconds_session:.1f} s, features {summary.seconds_preparing:.1f} s, "
            f"events {summary.seconds_events:.1f} s, learning in process {summary.seconds_learning + summary.seconds_retraining:.1f} s, "
            f"writes {summary.seconds_writing:.1f} s; CPU: this process {own.ru_utime + own.ru_stime:.1f} s, "
            f"learning workers {workers.ru_utime + workers.ru_stime:.1f} s; peak RSS {own.ru_maxrss / 1024:.0f} MB "
            f"(largest worker {workers.ru_maxrss / 1024:.0f} MB)."
        )
        for figures in summary.accounts:
            factor = "n/a" if figures.profit_factor is None else f"{figures.profit_factor:.2f}"
            self.stdout.write(
                f"  {figures.account:18} trades {figures.trades:5}  win rate {figures.win_rate:6.1%}  "
                f"net P&L {float(figures.net_pnl):+10.2f}  profit factor {factor:>5}  "
                f"max drawdown {figures.max_drawdown_pct:6.2%}  shadow {figures.shadow_trades}"
            )
