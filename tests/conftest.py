"""Shared fixtures: the services the suite needs must be there under CI=true, never skipped."""
import os
from pathlib import Path

import pytest
import redis

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# The real hourly candles bundled with the project (BTC and ETH, 2022-2023).
BUNDLED_CANDLES = Path(__file__).resolve().parents[1] / "data" / "candles"


def service_missing(reason: str):
    """Fail under CI (a missing service is a broken build); skip, saying why, on a laptop."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a required service must be running)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        service_missing(f"Redis is unreachable at {REDIS_URL}: {error}")
    return REDIS_URL


@pytest.fixture
def subprocess_env(transactional_db) -> dict:
    """Environment for a `manage.py` child process that uses this test's database."""
    from django.db import connection

    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tradelearn.settings.test",
        DATABASE_URL=f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
    )
    return env


@pytest.fixture
def token_client(db):
    """An API client authenticated as an ordinary user with a real token: every API route needs one, reads too."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    user = get_user_model().objects.create_user(username="trader", password="not-used")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture(scope="session")
def btc_frame():
    from trading.selectors import read_candles_dir

    return read_candles_dir(BUNDLED_CANDLES, "BTCUSDT", "1h")


@pytest.fixture(scope="session")
def eth_frame():
    from trading.selectors import read_candles_dir

    return read_candles_dir(BUNDLED_CANDLES, "ETHUSDT", "1h")


def aggregates_snapshot() -> dict:
    """The five learned tables by key, without their timestamps: for comparing two states exactly."""
    from learning.services.aggregates import AGGREGATES

    result = {}
    for aggregate in AGGREGATES:
        rows = aggregate.model.objects.values(*aggregate.key_fields, *aggregate.value_fields())
        result[aggregate.model._meta.db_table] = {
            tuple(row[name] for name in aggregate.key_fields): {k: v for k, v in row.items() if k != "last_updated"}
            for row in rows
        }
    return result
