"""The OpenAPI schema generates, validates, and documents the error shape; docs are served to a login."""
import pytest
import yaml
from django.contrib.auth import get_user_model
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_schema_generates_and_validates(token_client):
    response = token_client.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    validate_schema(schema)
    assert "/api/v1/trade-outcomes/" in schema["paths"]
    assert "Error" in schema["components"]["schemas"]
    post = schema["paths"]["/api/v1/trade-outcomes/"]["post"]
    assert post["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")


def test_schema_and_docs_need_a_login(client):
    # The schema lists every private route; the docs page sends a browser to the login first.
    assert APIClient().get("/api/schema/").status_code == 401
    response = client.get("/api/docs/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    client.force_login(get_user_model().objects.create_user("reader", password="x-password-123"))
    assert client.get("/api/docs/").status_code == 200
    assert client.get("/api/schema/").status_code == 200
