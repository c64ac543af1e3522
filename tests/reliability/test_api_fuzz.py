"""schemathesis against the project's own OpenAPI schema, in-process on the WSGI app: no 5xx, every 4xx in the API's error shape."""
import json
from collections import Counter
from decimal import Decimal

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode

from tests.learning.learnable import store_learnable
from tradelearn.wsgi import application
from trading.services.accounts import account_create

# Autocommit, as in production: a request whose query fails must not poison the ones after it.
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EXAMPLES_PER_MODE = 30
MIN_REQUESTS = 1000


def error_shape_problem(response) -> str | None:
    """Why a 4xx body is not `{"message": str, "extra": {...}}` (with "fields" for validation errors), or None."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return f"not JSON: {response.content[:200]!r}"
    if not isinstance(body, dict) or not isinstance(body.get("message"), str) or not body["message"]:
        return f"no message: {body!r}"
    if not isinstance(body.get("extra"), dict):
        return f"no extra object: {body!r}"
    if body["message"] == "Validation error" and not isinstance(body["extra"].get("fields"), dict):
        return f"validation error without fields: {body!r}"
    return None


@pytest.fixture
def wsgi_in_test_transaction():
    """Keep one database connection across requests, as Django's test client does (reconnecting each time is slow)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield application
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def test_generated_requests_never_get_a_5xx_and_every_4xx_has_the_error_shape(wsgi_in_test_transaction):
    user = get_user_model().objects.create_user("fuzzer", password="not-used-here")
    headers = {"Authorization": f"Token {Token.objects.create(user=user).key}"}
    account_create(name="fuzzed", system_type="paper_trading", starting_balance=Decimal("10000"))
    store_learnable(60)  # a few rows for the list, summary and insight endpoints to read

    schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_in_test_transaction, headers=headers)
    statuses: Counter = Counter()
    failures: list[str] = []

    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=EXAMPLES_PER_MODE, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case):
                response = case.call(headers=headers)
                statuses[response.status_code] += 1
                label = f"{case.method} {case.formatted_path} ({mode.value}) -> {response.status_code}"
                if response.status_code >= 500:
                    failures.append(f"{label}: {response.content[:300]!r}")
                elif response.status_code >= 400 and (problem := error_shape_problem(response)):
                    failures.append(f"{label}: {problem}")

            try:
                run()
            except Unsatisfiable:
                continue  # e.g. no way to make an operation without parameters or body invalid

    assert sum(statuses.values()) >= MIN_REQUESTS, statuses
    assert not failures, "\n".join(sorted(set(failures))[:40])
    assert any(200 <= status < 300 for status in statuses) and any(400 <= status < 500 for status in statuses)
