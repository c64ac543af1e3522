"""The bundled real hourly candles as frames, read once per session."""
import pytest

from tests.trading.marketdata.candle_files import CANDLES_DIR
from trading.selectors import read_candles_dir


@pytest.fixture(scope="session")
def btc():
    return read_candles_dir(CANDLES_DIR, "BTCUSDT", "1h")


@pytest.fixture(scope="session")
def eth():
    return read_candles_dir(CANDLES_DIR, "ETHUSDT", "1h")
