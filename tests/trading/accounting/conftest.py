"""API clients for the accounting tests: anonymous, and authenticated with a real token."""
import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


@pytest.fixture
def anonymous_client() -> APIClient:
    return APIClient()


@pytest.fixture
def token_client(db) -> APIClient:
    user = get_user_model().objects.create_user(username="trader", password="not-used")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client
