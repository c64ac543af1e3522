"""API clients for the accounting tests: anonymous (the token client is in tests/conftest.py)."""
import pytest
from rest_framework.test import APIClient


@pytest.fixture
def anonymous_client() -> APIClient:
    return APIClient()
