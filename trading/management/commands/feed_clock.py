"""Set the clock over stored candles: its speed (market seconds per wall second) and where in market time it is."""
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from trading.services.feeds import FeedNotReady, feed_clock_set


def _moment(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--start {value!r} is not an ISO 8601 date or time (e.g. 2022-03-01).") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Start or re-anchor the clock feed (MARKET_FEED=clock): --speed 60 closes one hourly candle a minute."

    def add_arguments(self, parser):
        parser.add_argument("--speed", type=float, default=None, help="Market seconds per wall second (default MARKET_FEED_CLOCK_SPEED).")
        parser.add_argument("--start", default=None, help="Market time to (re)start from, e.g. 2022-03-01 (default: where it is now).")

    def handle(self, *args, speed: float | None, start: str | None, **options):
        if speed is not None and speed <= 0:
            raise CommandError("--speed must be greater than 0.")
        try:
            status = feed_clock_set(speed=speed, start=_moment(start) if start else None)
        except FeedNotReady as error:
            raise CommandError(str(error).capitalize() + ".") from None
        self.stdout.write(f"Clock at market time {status.clock_origin:%Y-%m-%d %H:%M} UTC, ×{status.clock_speed:g}")
