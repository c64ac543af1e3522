"""The token memory: a verified token skips the look-up, and a revoked one stops working once it expires."""
import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tradelearn.api import authentication

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_and_token(settings):
    settings.API_TOKEN_CACHE_SECONDS = 30
    authentication._verified.clear()
    token = Token.objects.create(user=get_user_model().objects.create_user("cached", password="x"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    yield client, token
    authentication._verified.clear()


def post(client):
    return client.post("/ml/online/add_training_data", {}, format="json")


def test_a_verified_token_is_not_looked_up_again(client_and_token, django_assert_num_queries):
    client, _ = client_and_token
    assert post(client).status_code == 400  # authenticated; the empty body is the only problem
    with django_assert_num_queries(0):
        assert post(client).status_code == 400


def test_a_deleted_token_stops_working_when_its_memory_expires(client_and_token, settings, monkeypatch):
    client, token = client_and_token
    post(client)
    token.delete()
    assert post(client).status_code == 400  # still remembered: the documented delay
    clock = authentication.time.monotonic() + 31
    monkeypatch.setattr(authentication.time, "monotonic", lambda: clock)
    assert post(client).status_code == 401
