"""The OpenAPI schema generates, validates, and documents the error shape; docs are served."""
import pytest
import yaml
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_schema_generates_and_validates():
    response = APIClient().get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    validate_schema(schema)
    assert "/api/v1/trade-outcomes/" in schema["paths"]
    assert "Error" in schema["components"]["schemas"]
    post = schema["paths"]["/api/v1/trade-outcomes/"]["post"]
    assert post["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")


def test_docs_page_is_served():
    assert APIClient().get("/api/docs/").status_code == 200
