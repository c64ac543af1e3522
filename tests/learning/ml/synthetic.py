"""Seeded synthetic trade outcomes with a known, learnable signal, for the ML tests."""

import numpy as np

from learning.ml.schema import FEATURE_SCHEMA, FEATURE_SCHEMA_V1

N_FEATURES = len(FEATURE_SCHEMA.names)
N_V1 = len(FEATURE_SCHEMA_V1.names)  # the schema starts with v1's features; the signal lives among them


def synthetic_trades(n_trades: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features on realistic, unequal scales; wins driven by a few of them; entry times in order.

    The later schema groups are held at zero: the signal is v1's, and these tests ask what they always
    asked of the learners (the harness in operations/research measures the real v2 groups).
    """
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n_trades, N_V1))
    side = rng.choice([-1.0, 1.0], size=n_trades)
    scales = np.geomspace(0.01, 50.0, N_V1)
    features = latent * scales + 10.0 * rng.normal(size=N_V1)
    features[:, FEATURE_SCHEMA.names.index("side")] = side
    features[:, FEATURE_SCHEMA.names.index("is_profit_scraping")] = rng.integers(0, 2, size=n_trades)
    # Momentum helps, volatility hurts, trend strength helps, and RSI interacts with volume.
    log_odds = 1.0 * latent[:, 5] - 0.8 * latent[:, 13] + 0.5 * latent[:, 11] + 0.8 * latent[:, 0] * latent[:, 21]
    outcomes = (rng.random(n_trades) < 1.0 / (1.0 + np.exp(-log_odds))).astype(np.int64)
    features = np.hstack([features, np.zeros((n_trades, N_FEATURES - N_V1))])
    entry_times = np.arange(n_trades, dtype=np.float64) * 3600.0
    return features, outcomes, entry_times
