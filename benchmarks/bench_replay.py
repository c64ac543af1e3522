"""Replay throughput with learning on, end to end, on SQLite and PostgreSQL, and peak memory."""
import argparse
import os
import resource
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import ROOT, SHARED_CANDLES, cpu_seconds, postgres_url, quiet_services, setup_django, sqlite_url  # noqa: E402

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT")


def run_one(database: str, engines: str, start: str, end: str, learning: bool = True) -> None:
    """One replay in this process (a fresh database), printing throughput and peak RSS."""
    name = "bench_replay" if learning else "bench_replay_baseline"
    setup_django(postgres_url(f"tradelearn_{name}") if database == "postgresql" else sqlite_url(name))
    quiet_services()
    from decimal import Decimal

    from scraping.engine import ProfitScrapingEngine
    from trading.engine import TradingEngine
    from operations.replay import replay
    from trading.selectors import read_candles_dir
    from trading.services.accounts import account_create

    directory = SHARED_CANDLES if SHARED_CANDLES.exists() else ROOT / "data" / "candles"
    symbols = [s for s in SYMBOLS if (directory / f"{s}-1h.csv").exists()]
    first, last = datetime.fromisoformat(start).replace(tzinfo=UTC), datetime.fromisoformat(end).replace(tzinfo=UTC)
    frames = {symbol: read_candles_dir(directory, symbol, "1h", end=last) for symbol in symbols}
    classes = {"paper": TradingEngine, "scraping": ProfitScrapingEngine}
    engine_list = [
        classes[kind](
            account=account_create(name=f"bench-{kind}", system_type=classes[kind].system_type, starting_balance=Decimal("10000")),
            use_learning=learning,
        )
        for kind in engines.split(",")
    ]
    before = cpu_seconds()
    summary = replay(engines=engine_list, frames=frames, timeframe="1h", start=first, end=last, learning=learning, progress=False)
    replay_cpu, worker_cpu = (now - then for now, then in zip(cpu_seconds(), before))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    trades = sum(account.trades + account.shadow_trades for account in summary.accounts)
    print(
        f"replay {engines} {'with learning' if learning else 'no learning  '}, {database:10} {', '.join(symbols)} 1h {start}..{end} ({directory.name} data): "
        f"{summary.candles:,} candles in {summary.seconds:.1f} s = {summary.candles / summary.seconds:,.0f} candles/s; "
        f"peak RSS {peak_mb:,.0f} MB; {trades:,} trades (real + shadow), {summary.model_updates} online updates, "
        f"{summary.retrains} batch retrains; of the time: online learning {summary.seconds_learning:.1f} s, "
        f"batch retrains {summary.seconds_retraining:.1f} s, database writes {summary.seconds_writing:.1f} s ({summary.writes}); "
        f"CPU: replay {replay_cpu:.1f} s, training workers {worker_cpu:.1f} s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", choices=("sqlite", "postgresql"))
    parser.add_argument("--engines", default="paper")
    parser.add_argument("--from", dest="start", default=os.environ.get("BENCH_REPLAY_FROM", "2020-01-01"))
    parser.add_argument("--to", dest="end", default=os.environ.get("BENCH_REPLAY_TO", "2023-12-31"))
    parser.add_argument("--no-learning", action="store_true")
    args = parser.parse_args()
    if args.database:
        run_one(args.database, args.engines, args.start, args.end, learning=not args.no_learning)
        return
    # Each run in its own process, so each peak RSS is that run's alone. The run without learning
    # (technical signals only, outcomes still stored) shows what the engine itself costs.
    runs = [("sqlite", []), ("postgresql", []), ("sqlite", ["--no-learning"])]
    for database, extra in runs:
        subprocess.run(
            [sys.executable, __file__, "--database", database, "--engines", args.engines, "--from", args.start, "--to", args.end, *extra],
            check=True,
        )
    print("targets: ≥ 20,000 candles/s with learning on; peak RSS ≤ 500 MB")


if __name__ == "__main__":
    main()
