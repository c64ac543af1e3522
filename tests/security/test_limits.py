"""Throttling backed by Redis answers 429 in the error shape; an oversized body is refused in it too."""
import json
import uuid

import pytest
import redis
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

from learning.models import TrainingRecord

pytestmark = pytest.mark.django_db


def assert_error_shape(response) -> dict:
    body = json.loads(response.content)
    assert isinstance(body["message"], str) and body["message"] and isinstance(body["extra"], dict), body
    return body


@pytest.fixture
def redis_cache(settings, redis_url):
    prefix = f"throttle-test-{uuid.uuid4().hex[:8]}"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url, "KEY_PREFIX": prefix}}
    yield prefix
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


@pytest.mark.parametrize("authenticated", [False, True])
def test_the_public_api_throttles_through_redis_with_a_429_in_the_error_shape(redis_cache, redis_url, monkeypatch, settings, authenticated):
    # Anonymous callers reach only reads a deployment opened; those are throttled per address.
    settings.API_PUBLIC_READ_ROUTES = frozenset({"ml-hybrid-status", "learning-summary"})
    monkeypatch.setattr(AnonRateThrottle, "rate", "3/minute", raising=False)
    monkeypatch.setattr(UserRateThrottle, "rate", "3/minute", raising=False)
    client = APIClient()
    if authenticated:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=get_user_model().objects.create_user('t')).key}")
    statuses = [client.get("/ml/hybrid/status").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    refused = client.get("/api/v1/learning/summary/")  # the count is per client, across endpoints
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "throttled" in assert_error_shape(refused)["message"].lower()
    # The counts live in Redis, so every web worker shares them.
    assert list(redis.Redis.from_url(redis_url).scan_iter(f"{redis_cache}:*throttle*"))


def test_an_oversized_body_is_refused_in_the_error_shape_and_stores_nothing(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_user("big"))
    outcome = {"trade_id": "x", "features": {f"f{i}": 0.5 for i in range(20_000)}}
    body = json.dumps(outcome)
    assert len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    for path in ("/api/v1/trade-outcomes/", "/ml/hybrid/predict", "/ml/online/add_training_data"):
        response = client.post(path, data=body, content_type="application/json")
        assert response.status_code in (400, 413), (path, response.status_code)
        assert "too large" in assert_error_shape(response)["message"].lower() or "exceeded" in response.content.decode().lower()
    assert not TrainingRecord.objects.exists()
