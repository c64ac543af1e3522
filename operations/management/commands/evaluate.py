"""Does learning improve trading? Replay the same candles as baseline and with learning, each from an empty store, and report."""
import tempfile
from datetime import date
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from operations.engines import ENGINES
from operations.evaluation.report import summary_text, write_report
from operations.evaluation.runner import EvaluationError, Window, default_runs, run_all
from operations.evaluation.scoring import score
from trading.selectors import candle_file


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{text!r} is not a date (use YYYY-MM-DD).") from None


class Command(BaseCommand):
    help = (
        "Walk-forward evaluation: replay candles from --candles-dir as a baseline (technical signals only), "
        "with learning, and (with both engines) with cross-system transfer switched the other way, each in its own fresh database; "
        "write report.json and report.html to --out and print a summary."
    )

    def add_arguments(self, parser):
        parser.add_argument("--candles-dir", required=True, help="directory of SYMBOL-TIMEFRAME candle files")
        parser.add_argument("--symbols", required=True, help="comma-separated, e.g. BTCUSDT,ETHUSDT")
        parser.add_argument("--timeframe", default=settings.TRADING_TIMEFRAME)
        parser.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD (UTC)")
        parser.add_argument("--to", dest="end", required=True, help="last day, YYYY-MM-DD (UTC), inclusive")
        parser.add_argument("--engines", default="paper,scraping", help="comma-separated: paper, scraping")
        parser.add_argument("--out", default=str(settings.VAR_DIR / "evaluation"), help="directory for report.json and report.html")
        parser.add_argument("--jobs", type=int, default=1, help="runs at once (each is one process)")

    def handle(self, *args, **options):
        window = Window(
            candles_dir=Path(options["candles_dir"]).resolve(),
            symbols=tuple(symbol.strip().upper() for symbol in options["symbols"].split(",") if symbol.strip()),
            timeframe=options["timeframe"],
            start=_day(options["start"]),
            end=_day(options["end"]),
            engines=tuple(name.strip() for name in options["engines"].split(",") if name.strip()),
        )
        if window.end < window.start:
            raise CommandError("--to is before --from.")
        unknown = set(window.engines) - set(ENGINES)
        if unknown or not window.engines:
            raise CommandError(f"Unknown engines {sorted(unknown)}; choose from {', '.join(ENGINES)}.")
        if not window.symbols:
            raise CommandError("Name at least one symbol.")
        for symbol in window.symbols:
            try:
                candle_file(window.candles_dir, symbol, window.timeframe)
            except FileNotFoundError as error:
                raise CommandError(str(error)) from None

        runs = default_runs(window.engines)
        self.stdout.write(f"Evaluating {', '.join(run.name for run in runs)}, each in its own database (a child process per run)...")
        with tempfile.TemporaryDirectory(prefix="tradelearn-evaluate-") as workdir:
            try:
                payloads = run_all(
                    window=window,
                    runs=runs,
                    workdir=Path(workdir),
                    jobs=options["jobs"],
                    on_done=lambda payload: self.stdout.write(f"  {payload['name']} done in {payload['seconds']:.0f} s"),
                )
            except EvaluationError as error:
                raise CommandError(str(error)) from None
        report = score(payloads=payloads, window=window)
        paths = write_report(report, Path(options["out"]))
        self.stdout.write("")
        self.stdout.write(summary_text(report))
        self.stdout.write(f"\nReport: {paths['html']} and {paths['json']}")
