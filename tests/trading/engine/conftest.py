"""Fixtures for engine tests: real BTC/ETH hourly candles from the bundled slice."""
from pathlib import Path

import pytest

from trading.selectors import read_candles_dir

CANDLES = Path(__file__).resolve().parents[3] / "data" / "candles"


@pytest.fixture(scope="session")
def btc_frame():
    return read_candles_dir(CANDLES, "BTCUSDT", "1h")


@pytest.fixture(scope="session")
def eth_frame():
    return read_candles_dir(CANDLES, "ETHUSDT", "1h")
