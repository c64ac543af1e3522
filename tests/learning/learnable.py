"""Trades a model can learn from, and a fixture that keeps no model state between tests (imported where needed)."""
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from learning.ml.schema import FEATURE_SCHEMA
from learning.services import store_trade_outcomes
from learning.services.online import trainer_cache_clear
from learning.services.prediction import served_models_forget
from tests.factories import TradeOutcomeFactory

START = datetime(2024, 1, 1, tzinfo=UTC)


def learnable_features(n_trades: int, *, seed: int = 0) -> tuple[list[dict[str, float]], np.ndarray]:
    """Schema features with wins driven by momentum (roc_4) and hurt by volatility (atr_pct)."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n_trades, len(FEATURE_SCHEMA.names)))
    features = latent * np.geomspace(0.01, 50.0, len(FEATURE_SCHEMA.names))
    side = rng.choice([-1.0, 1.0], size=n_trades)
    features[:, FEATURE_SCHEMA.names.index("side")] = side
    features[:, FEATURE_SCHEMA.names.index("is_profit_scraping")] = rng.integers(0, 2, size=n_trades)
    log_odds = 2.0 * latent[:, FEATURE_SCHEMA.names.index("roc_4")] - 1.5 * latent[:, FEATURE_SCHEMA.names.index("atr_pct")]
    wins = rng.random(n_trades) < 1.0 / (1.0 + np.exp(-log_odds))
    rows = [dict(zip(FEATURE_SCHEMA.names, map(float, row))) for row in features]
    return rows, wins


def learnable_outcomes(n_trades: int, *, seed: int = 0, start: datetime = START, **fields):
    """Closed trades, one an hour, whose accounting agrees with a label a model can learn."""
    rows, wins = learnable_features(n_trades, seed=seed)
    outcomes = []
    for index, (features, win) in enumerate(zip(rows, wins)):
        side = "long" if features["side"] > 0 else "short"
        # A 2 % move in the trade's favour clears the fees; against it, it loses.
        direction = (1 if side == "long" else -1) * (1 if win else -1)
        entry_time = start + timedelta(hours=index)
        outcomes.append(
            TradeOutcomeFactory.build(
                trade_id=f"s{seed}-{index:05d}",
                side=side,
                move_pct=Decimal("0.02") * direction,
                features=features,
                entry_time=entry_time,
                exit_time=entry_time + timedelta(minutes=30),
                **fields,
            )
        )
    return outcomes


def store_learnable(n_trades: int, *, seed: int = 0, start: datetime = START, **fields) -> list:
    outcomes = learnable_outcomes(n_trades, seed=seed, start=start, **fields)
    store_trade_outcomes(outcomes=outcomes)
    return outcomes


@pytest.fixture(autouse=True)
def fresh_model_state(settings):
    """Every test sees model versions as soon as they are activated, and nothing loaded by another test."""
    settings.LEARNING_MODEL_RECHECK_SECONDS = 0.0
    served_models_forget()
    trainer_cache_clear()
    yield
    served_models_forget()
    trainer_cache_clear()
