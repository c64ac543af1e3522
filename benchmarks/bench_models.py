"""Model services on PostgreSQL: online_update throughput through the database, retrain time, hybrid_predict latency."""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import percentiles_ms, postgres_url, setup_django, timed  # noqa: E402

RECORDS = 20_000
TIMED_CALLS = 10_000
WARM_UP_CALLS = 1_000


def main() -> None:
    setup_django(postgres_url("tradelearn_bench_models"))
    from learning.services import store_trade_outcomes
    from learning.services.online import online_update
    from learning.services.prediction import hybrid_predict
    from learning.services.retrain import batch_retrain
    from tests.learning.learnable import learnable_features, learnable_outcomes

    outcomes = learnable_outcomes(RECORDS, seed=1)
    for start in range(0, RECORDS, 2000):
        store_trade_outcomes(outcomes=outcomes[start : start + 2000])

    with timed() as update:
        result = online_update()
    print(
        f"online_update over {result.learned:,} stored records (PostgreSQL, checkpoint every 500): "
        f"{result.learned / update['seconds']:,.0f} samples/s (target >= 20,000)"
    )
    with timed() as idle:
        for _ in range(100):
            online_update()
    print(f"online_update with nothing new to learn: {idle['seconds'] * 10:.2f} ms per call")

    with timed() as retrain:
        retrained = batch_retrain()
    print(f"batch_retrain on {RECORDS:,} records: {retrain['seconds']:.2f} s ({retrained.reason})")

    rows = learnable_features(1_000, seed=2)[0]
    for call in range(WARM_UP_CALLS):
        hybrid_predict(features=rows[call % len(rows)])
    durations = []
    for call in range(TIMED_CALLS):
        features = rows[call % len(rows)]
        start = time.perf_counter()
        hybrid_predict(features=features)
        durations.append(time.perf_counter() - start)
    p50, p99 = percentiles_ms(durations)
    versions = hybrid_predict(features=rows[0]).versions
    print(f"hybrid_predict service, 1 row, {versions['batch']} + {versions['online']} (schema check included): p50 {p50:.3f} ms, p99 {p99:.3f} ms (target p99 <= 1 ms)")


if __name__ == "__main__":
    main()
