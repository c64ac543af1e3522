"""Fixtures for the evaluation tests: the bundled candles and one migrated SQLite template per session."""
from datetime import date
from pathlib import Path

import pytest

from operations.evaluation.runner import Window, migrated_template
from tests.conftest import BUNDLED_CANDLES


@pytest.fixture(scope="session")
def template_database(tmp_path_factory) -> Path:
    """An empty migrated database each run copies (migrating costs seconds; copying nothing)."""
    return migrated_template(tmp_path_factory.mktemp("evaluation-template"))


@pytest.fixture
def window():
    """Build a Window over the bundled candles (or `candles_dir`), BTCUSDT and both engines unless told."""

    def build(start: date, end: date, *, symbols=("BTCUSDT",), engines=("paper", "scraping"), candles_dir=BUNDLED_CANDLES) -> Window:
        return Window(candles_dir=candles_dir, symbols=tuple(symbols), timeframe="1h", start=start, end=end, engines=tuple(engines))

    return build
