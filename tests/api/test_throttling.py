"""The counting throttles: the rate holds within a window, a new window starts afresh, and the count is one small integer."""
import uuid

import pytest
import redis
from django.contrib.auth import get_user_model
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import UserRateThrottle as DrfUserRateThrottle

from tradelearn.api.throttling import UserRateThrottle

pytestmark = pytest.mark.django_db


@pytest.fixture
def limited_client(settings, redis_url, monkeypatch):
    prefix = f"throttle-window-{uuid.uuid4().hex[:8]}"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url, "KEY_PREFIX": prefix}}
    monkeypatch.setattr(DrfUserRateThrottle, "rate", "3/minute", raising=False)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=get_user_model().objects.create_user('w')).key}")
    yield client, prefix
    connection = redis.Redis.from_url(redis_url)
    for key in connection.scan_iter(f"{prefix}:*"):
        connection.delete(key)


def test_the_rate_holds_in_a_window_and_the_next_window_starts_afresh(limited_client, monkeypatch):
    client, prefix = limited_client
    now = [1_000_000 * 60 + 10.0]  # 10 s into a minute
    monkeypatch.setattr(UserRateThrottle, "timer", lambda self: now[0])
    assert [client.get("/ml/hybrid/status").status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get("/ml/hybrid/status")
    assert refused.status_code == 429 and int(refused["Retry-After"]) == 50  # until the minute ends
    now[0] += 50.0  # the next minute
    assert client.get("/ml/hybrid/status").status_code == 200


def test_the_count_is_one_integer_whatever_the_number_of_requests(limited_client, redis_url):
    client, prefix = limited_client
    for _ in range(5):
        client.get("/ml/hybrid/status")
    keys = list(redis.Redis.from_url(redis_url).scan_iter(f"{prefix}:*throttle_user*"))
    assert len(keys) == 1
    assert cache.get(keys[0].decode().split(":", 2)[2]) == 5  # refused requests count too
