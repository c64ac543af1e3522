"""Import candle files (project CSV, Binance klines, freqtrade JSON) and summarise what was stored."""
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from tradelearn.console import results_printed_by_command
from trading.marketdata.readers import FORMATS
from trading.services import candles


class Command(BaseCommand):
    help = (
        "Load candles from files; bad rows are reported with their line numbers and the good ones kept. "
        "Importing a file twice stores nothing new. Symbol and timeframe come from names like BTCUSDT-1h.csv."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE")
        parser.add_argument(
            "--exchange",
            default=settings.TRADING_EXCHANGE,
            help=f"Exchange the candles are stored under (default TRADING_EXCHANGE, {settings.TRADING_EXCHANGE}: the one replay and live trading read).",
        )
        parser.add_argument("--symbol", help="Symbol for every file (default: from each file name).")
        parser.add_argument("--timeframe", help="Timeframe for every file, e.g. 1h (default: from each file name).")
        parser.add_argument("--format", dest="file_format", default="auto", choices=("auto", *FORMATS))
        parser.add_argument("--show-rejections", type=int, default=10, metavar="N", help="Rejected rows to print per file.")

    def handle(self, *args, **options):
        with results_printed_by_command(candles.__name__, verbosity=options["verbosity"]):
            self._import(**options)

    def _import(self, *, files, exchange, symbol, timeframe, file_format, show_rejections, **options):
        total_read = 0
        for path in files:
            with tqdm(desc=path, unit=" candles", disable=None, leave=False) as bar:
                try:
                    report = candles.candles_import(
                        path=path, exchange=exchange, symbol=symbol, timeframe=timeframe, file_format=file_format, progress=bar.update
                    )
                except ValidationError as error:
                    problems = "; ".join(
                        " ".join(messages) if name == "path" else f"{name}: {' '.join(messages)}" for name, messages in error.message_dict.items()
                    )
                    self.stderr.write(f"{path}: {problems}")
                    continue
            total_read += report.read
            span = f" from {report.first_open_time:%Y-%m-%d %H:%M} to {report.last_open_time:%Y-%m-%d %H:%M}" if report.read else ""
            self.stdout.write(
                f"{path}: {report.symbol} {report.timeframe} ({report.file_format}){span}: {report.loaded} loaded, "
                f"{report.already_present} already present, {report.rejected} rejected, "
                f"{report.missing_candles} missing in {len(report.gaps)} gaps ({report.candles_per_second:,.0f} candles/s)"
            )
            for rejection in report.rejections[:show_rejections]:
                self.stdout.write(f"  rejected {rejection}")
            if report.rejected > show_rejections:
                self.stdout.write(f"  ... and {report.rejected - show_rejections} more rejected rows")
            for gap in report.gaps[:show_rejections]:
                self.stdout.write(f"  gap {gap}")
            if len(report.gaps) > show_rejections:
                self.stdout.write(f"  ... and {len(report.gaps) - show_rejections} more gaps")
        if total_read == 0:
            raise CommandError("no candle could be read from the given files")
