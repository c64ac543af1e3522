"""Learning core on PostgreSQL: store_trade_outcome throughput, recommendation latency at 100k records."""
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import percentiles_ms, postgres_url, setup_django, timed  # noqa: E402

TARGET_RECORDS = 100_000
SINGLES = int(os.environ.get("BENCH_LEARNING_SINGLES", "2000"))  # fewer for a quick side-by-side of two checkouts


def main() -> None:
    setup_django(postgres_url("tradelearn_bench_learning"))
    from learning.services import get_signal_recommendation, store_trade_outcome, store_trade_outcomes
    from learning.models import TrainingRecord
    from tests.factories import SignalContextFactory, TradeOutcomeFactory

    # The floor: a raw single-row INSERT with its own durable commit, which no store can beat.
    # Both run in turns, side by side, so load from elsewhere falls on both alike.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_floor (id bigserial PRIMARY KEY, trade_id text UNIQUE, features jsonb)")
        cursor.execute("SELECT pg_backend_pid()")
        backend = Path(f"/proc/{cursor.fetchone()[0]}/stat")

    def cpu() -> tuple[float, float]:
        """CPU seconds so far of the PostgreSQL backend serving this connection, and of this process."""
        fields = backend.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), time.process_time()

    singles = TradeOutcomeFactory.build_batch(SINGLES)
    floor_seconds = store_seconds = 0.0
    floor_cpu, store_cpu = [0.0, 0.0], [0.0, 0.0]
    for turn in range(0, len(singles), 100):
        before_floor = cpu()
        with timed() as floor, connection.cursor() as cursor:
            for outcome in singles[turn : turn + 100]:
                cursor.execute("INSERT INTO bench_floor (trade_id, features) VALUES (%s, %s)", [outcome.trade_id, "{}"])
        before_store = cpu()
        with timed() as single:
            for outcome in singles[turn : turn + 100]:
                store_trade_outcome(outcome=outcome)
        after_store = cpu()
        for side in (0, 1):
            floor_cpu[side] += before_store[side] - before_floor[side]
            store_cpu[side] += after_store[side] - before_store[side]
        floor_seconds, store_seconds = floor_seconds + floor["seconds"], store_seconds + single["seconds"]
    floor_rate, store_rate = len(singles) / floor_seconds, len(singles) / store_seconds
    print(f"raw single-row INSERT with its own commit (the floor, PostgreSQL):  {floor_rate:,.0f} rows/s")
    print(
        f"store_trade_outcome, one call per outcome (PostgreSQL, 1 process): {store_rate:,.0f} outcomes/s "
        f"= {store_rate / floor_rate:.2f} of the floor (side by side, in turns of 100; target ≥ 0.75)"
    )
    per_call = lambda seconds: seconds * 1000 / len(singles)  # noqa: E731
    print(
        f"  CPU per call, PostgreSQL backend + this process: floor {per_call(floor_cpu[0]):.2f} + {per_call(floor_cpu[1]):.2f} ms, "
        f"store {per_call(store_cpu[0]):.2f} + {per_call(store_cpu[1]):.2f} ms (the rest of a call's time is waiting: commit, round trip)"
    )

    batch = TradeOutcomeFactory.build_batch(10_000)
    with timed() as batched:
        for start in range(0, len(batch), 100):
            store_trade_outcomes(outcomes=batch[start : start + 100])
    print(f"store_trade_outcomes, batches of 100 (PostgreSQL, 1 process):       {len(batch) / batched['seconds']:,.0f} outcomes/s")

    while (stored := TrainingRecord.objects.count()) < TARGET_RECORDS:
        store_trade_outcomes(outcomes=TradeOutcomeFactory.build_batch(min(2000, TARGET_RECORDS - stored)))

    rng = random.Random(1)
    contexts = [
        SignalContextFactory(
            strategy_type=rng.choice(["trend_following", "mean_reversion"]),
            system_type=rng.choice(["paper_trading", "profit_scraping"]),
            confidence_score=rng.random(),
            market_regime=rng.choice(["trending_up", "trending_down", "ranging"]),
            volatility_regime=rng.choice(["low", "medium", "high"]),
        )
        for _ in range(3000)
    ]
    for context in contexts[:200]:  # warm-up: connections, query plans
        get_signal_recommendation(context=context)
    durations = []
    for context in contexts:
        start = time.perf_counter()
        get_signal_recommendation(context=context)
        durations.append(time.perf_counter() - start)
    p50, p99 = percentiles_ms(durations)
    print(f"get_signal_recommendation with {TrainingRecord.objects.count():,} records: p50 {p50:.3f} ms, p99 {p99:.3f} ms")
    print("targets: ≥ 1,500 outcomes/s; recommendation p99 ≤ 2 ms")


if __name__ == "__main__":
    main()
