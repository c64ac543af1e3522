"""Shared fixtures: the services the suite needs must be there under CI=true, never skipped."""
import os

import pytest
import redis

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


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
