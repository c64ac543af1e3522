"""Profit scraping on SQLite: level computation throughput, and replay throughput with learning on."""
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import ROOT, SHARED_CANDLES, cpu_seconds, quiet_services, setup_django, sqlite_url, timed  # noqa: E402

SYMBOLS = ("BTCUSDT", "ETHUSDT")
START, END = datetime(2022, 1, 1, tzinfo=UTC), datetime(2022, 12, 31, 23, tzinfo=UTC)


def main() -> None:
    setup_django(sqlite_url("bench_scraping"))
    quiet_services()
    import pandas as pd

    from scraping.engine import ProfitScrapingEngine
    from scraping.levels import LevelHistory
    from operations.replay import replay
    from trading.selectors import read_candles_dir
    from trading.services.accounts import account_create

    candles_dir = SHARED_CANDLES if (SHARED_CANDLES / "BTCUSDT-1h.csv").is_file() else ROOT / "data" / "candles"
    frames = {symbol: read_candles_dir(candles_dir, symbol, "1h", end=END) for symbol in SYMBOLS}

    days = pd.date_range(START, END, freq="D")
    with timed() as levels_time:
        for frame in frames.values():
            history = LevelHistory(frame, timeframe_ns=3_600_000_000_000)
            for day in days:
                history.at(day)
    sets = len(days) * len(frames)
    print(
        f"level recomputes (30-day window, every 24 candles): {sets / levels_time['seconds']:,.0f} sets/s, "
        f"{sets * 24 / levels_time['seconds']:,.0f} candles/s of replay covered"
    )

    account = account_create(name="bench-scraping", system_type="profit_scraping", starting_balance=Decimal("10000"))
    engine = ProfitScrapingEngine(account=account, use_learning=True)
    started, before = time.perf_counter(), cpu_seconds()
    summary = replay(engines=[engine], frames=frames, timeframe="1h", start=START, end=END, learning=True, progress=False)
    seconds = time.perf_counter() - started
    replay_cpu, worker_cpu = (now - then for now, then in zip(cpu_seconds(), before))
    (figures,) = summary.accounts
    print(
        f"profit scraping replay, learning on (SQLite, {', '.join(SYMBOLS)} 1h, {START:%Y-%m-%d}..{END:%Y-%m-%d}): "
        f"{summary.candles:,} candles in {seconds:.1f} s = {summary.candles / seconds:,.0f} candles/s (target 10,000)"
    )
    print(
        f"  trades {figures.trades}, shadow {figures.shadow_trades}, win rate {figures.win_rate:.1%}, "
        f"net P&L {float(figures.net_pnl):+.2f}, model updates {summary.model_updates}, batch retrains {summary.retrains}; "
        f"of the time: online learning {summary.seconds_learning:.1f} s, batch retrains {summary.seconds_retraining:.1f} s, "
        f"database writes {summary.seconds_writing:.1f} s ({summary.writes}); CPU: replay {replay_cpu:.1f} s, training workers {worker_cpu:.1f} s"
    )


if __name__ == "__main__":
    main()
