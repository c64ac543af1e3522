"""Fetch closed candles from an exchange via ccxt, resuming after the last stored candle."""
from datetime import UTC, datetime

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from trading.marketdata.feeds import describe_failure, failure_is_lasting
from trading.services.candles import TRANSIENT_ERRORS, candles_fetch


def _since(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--since {text!r} is not a date or ISO datetime (e.g. 2024-01-01)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Fetch closed candles via ccxt for each symbol, page by page, from the last stored candle (or --since)."

    def add_arguments(self, parser):
        parser.add_argument("--exchange", default="binanceusdm")
        parser.add_argument("--symbols", required=True, help="Comma-separated ccxt symbols, e.g. BTC/USDT:USDT,ETH/USDT:USDT.")
        parser.add_argument("--timeframe", default="1h")
        parser.add_argument("--since", type=_since, help="Start (UTC) when a symbol has nothing stored after it, e.g. 2024-01-01.")

    def handle(self, *args, exchange, symbols, timeframe, since, **options):
        markets = [market.strip() for market in symbols.split(",") if market.strip()]

        def progress(symbol_report):
            self.stdout.write(
                f"{exchange} {symbol_report.market} -> {symbol_report.symbol} {timeframe}: {symbol_report.stored} new, "
                f"{symbol_report.already_present} already present, {symbol_report.dropped_unclosed} still forming (dropped), "
                f"{len(symbol_report.rejected)} rejected, {symbol_report.requests} requests, {symbol_report.retries} retries"
            )
            for reason in symbol_report.rejected[:10]:
                self.stdout.write(f"  rejected {reason}")

        try:
            report = candles_fetch(exchange=exchange, symbols=markets, timeframe=timeframe, since=since, progress=progress)
        except ValidationError as error:
            raise CommandError("; ".join(f"{name}: {' '.join(messages)}" for name, messages in error.message_dict.items())) from None
        except TRANSIENT_ERRORS as error:
            cause = describe_failure(error)
            if failure_is_lasting(error):
                raise CommandError(f"{exchange}: {cause} (is this machine online?); what was fetched is stored, run again to resume") from None
            raise CommandError(f"{exchange} kept failing ({cause}); what was fetched is stored, run again to resume") from None
        self.stdout.write(f"{report.stored} new candles stored")
