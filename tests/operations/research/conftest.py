"""A signal dataset exported once per session from a baseline replay of the bundled candles (BTC and ETH, 2022-2023)."""
from pathlib import Path

import pytest
from django.core.management import call_command

from operations.research.dataset import read_dataset

BUNDLED_CANDLES = Path(__file__).resolve().parents[3] / "data" / "candles"


@pytest.fixture(scope="session")
def dataset_path(tmp_path_factory, django_db_blocker) -> Path:
    """The export reads the run's own SQLite file, never the test database."""
    path = tmp_path_factory.mktemp("research") / "signals.csv.gz"
    with django_db_blocker.unblock():
        call_command(
            "research", "export", f"--candles-dir={BUNDLED_CANDLES}", "--symbols=BTCUSDT,ETHUSDT",
            "--from=2022-01-01", "--to=2023-12-31", f"--out={path}",
        )  # fmt: skip
    return path


@pytest.fixture(scope="session")
def signals(dataset_path):
    return read_dataset(dataset_path)
