"""The bundled real hourly candles as frames, read once per session."""
import pytest


@pytest.fixture(scope="session")
def btc(btc_frame):
    return btc_frame


@pytest.fixture(scope="session")
def eth(eth_frame):
    return eth_frame
