"""ML models in-process: hybrid single-row prediction latency and online update throughput."""
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import percentiles_ms, timed  # noqa: E402
from learning.ml.batch import train_batch_model  # noqa: E402
from learning.ml.hybrid import HybridPredictor  # noqa: E402
from learning.ml.online import OnlineEnsemble  # noqa: E402
from learning.ml.schema import FEATURE_SCHEMA  # noqa: E402

N_FEATURES = len(FEATURE_SCHEMA.names)
WARM_UP_CALLS = 1_000
TIMED_CALLS = 10_000
UPDATE_BATCH = 256
UPDATE_SAMPLES = 25_600


def synthetic_trades(n_trades: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n_trades, N_FEATURES))
    features = latent * np.geomspace(0.01, 50.0, N_FEATURES)
    log_odds = latent[:, 5] - 0.8 * latent[:, 13] + 0.8 * latent[:, 0] * latent[:, 21]
    outcomes = (rng.random(n_trades) < 1.0 / (1.0 + np.exp(-log_odds))).astype(np.int64)
    return features, outcomes


def single_row_latencies(predict, rows: list) -> list[float]:
    for call in range(WARM_UP_CALLS):
        predict(rows[call % len(rows)])
    durations = []
    for call in range(TIMED_CALLS):
        row = rows[call % len(rows)]
        start = time.perf_counter()
        predict(row)
        durations.append(time.perf_counter() - start)
    return durations


def main() -> None:
    X, y = synthetic_trades(5_000, seed=0)
    online = OnlineEnsemble()
    for start in range(0, 4_000, UPDATE_BATCH):
        online.partial_fit(X[start : start + UPDATE_BATCH], y[start : start + UPDATE_BATCH])
    rows = list(X[4_000:])
    feature_rows = [dict(zip(FEATURE_SCHEMA.names, row.tolist())) for row in rows]

    for kind in ("hgb", "logistic"):
        batch = train_batch_model(X[:4_000], y[:4_000], np.arange(4_000.0), kind=kind).model
        for weighting in ("fixed", "adaptive"):
            hybrid = HybridPredictor(online=online, batch=batch, weighting=weighting, batch_log_loss=0.6)
            p50, p99 = percentiles_ms(single_row_latencies(hybrid.predict, rows))
            print(f"hybrid predict, 1 row, batch={kind:<8} + sgd/pa/mlp, {weighting:<8} weights: p50 {p50:.3f} ms  p99 {p99:.3f} ms")
        p50, p99 = percentiles_ms(
            single_row_latencies(lambda features: hybrid.predict(FEATURE_SCHEMA.vector(features)), feature_rows)
        )
        print(f"schema.vector + hybrid predict, batch={kind:<8} (adaptive):          p50 {p50:.3f} ms  p99 {p99:.3f} ms")
    print(f"({TIMED_CALLS:,} timed calls each after {WARM_UP_CALLS:,} warm-up calls; target p99 <= 1 ms)")

    X_updates, y_updates = synthetic_trades(UPDATE_SAMPLES, seed=1)
    ensemble = OnlineEnsemble()
    with timed() as batched:
        for start in range(0, UPDATE_SAMPLES, UPDATE_BATCH):
            ensemble.partial_fit(X_updates[start : start + UPDATE_BATCH], y_updates[start : start + UPDATE_BATCH])
    print(
        f"online ensemble update, batches of {UPDATE_BATCH} (sgd+pa+mlp, scored before learning): "
        f"{UPDATE_SAMPLES / batched['seconds']:,.0f} samples/s (target >= 20,000)"
    )
    with timed() as single:
        for index in range(500):
            ensemble.partial_fit(X_updates[index : index + 1], y_updates[index : index + 1])
    print(f"online ensemble update, one trade per call:                           {500 / single['seconds']:,.0f} samples/s")


if __name__ == "__main__":
    main()
