"""Learning core on PostgreSQL: store_trade_outcome throughput, recommendation latency at 100k records."""
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import percentiles_ms, postgres_url, setup_django, timed  # noqa: E402

TARGET_RECORDS = 100_000


def main() -> None:
    setup_django(postgres_url("tradelearn_bench_learning"))
    from learning.services import get_signal_recommendation, store_trade_outcome, store_trade_outcomes
    from learning.models import TrainingRecord
    from tests.factories import SignalContextFactory, TradeOutcomeFactory

    singles = TradeOutcomeFactory.build_batch(2000)
    with timed() as single:
        for outcome in singles:
            store_trade_outcome(outcome=outcome)
    print(f"store_trade_outcome, one call per outcome (PostgreSQL, 1 process): {len(singles) / single['seconds']:,.0f} outcomes/s")

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
