"""Every route in the URL conf refuses anonymous callers, reads included: the API answers 401/403,
pages send them to the login; only the login form and the public health endpoint answer.

The routes are found by walking the URL resolver, so a route added later is covered without
editing this file.
"""
import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.checks import run_checks
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.authtoken.models import Token

from tests.learning.learnable import store_learnable
from tradelearn.api.errors import API_PREFIXES
from trading.services.accounts import account_create

pytestmark = pytest.mark.django_db

WRITE_METHODS = ("post", "put", "patch", "delete")
# Login and logout forms take anonymous POSTs by design; they are checked on their own below.
AUTH_FORMS = {"admin:login", "admin:logout"}
# The only routes an anonymous caller may read: the login form, and a health endpoint for load
# balancers (which says nothing private). Everything else, API reads included, needs credentials.
PUBLIC_READS = AUTH_FORMS | {"healthz"}
# Unnamed public routes: the favicon's redirect to its static file.
PUBLIC_PATHS = {"/favicon.ico"}


def _fill_regex(regex: str) -> str:
    regex = regex.lstrip("^").removesuffix("$").removesuffix(r"\Z")
    # A group of alternatives (the admin's app labels) takes its first; any other group a word.
    regex = re.sub(r"\(\?P<\w+>([\w-]+)(\|[^)]*)?\)", r"\1", regex)
    return re.sub(r"\(\?P<\w+>[^)]*\)|\.\+|\.\*", "x", regex).replace("\\", "")


def _fill_route(route: str, pk: int) -> str:
    return re.sub(r"<(?:(\w+):)?\w+>", lambda match: str(pk) if match.group(1) == "int" else ("x" if match.group(1) != "path" else str(pk)), route)


def walk(patterns=None, prefix="", name_prefix=""):
    """(route template, name, is regex) for every URL pattern, included ones too."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        text = str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            namespace = f"{name_prefix}{pattern.namespace}:" if pattern.namespace else name_prefix
            yield from walk(pattern.url_patterns, prefix + text, namespace)
        elif isinstance(pattern, URLPattern):
            yield prefix + text, f"{name_prefix}{pattern.name}" if pattern.name else None


def concrete_paths(pks: list[int]) -> list[tuple[str, str | None]]:
    paths = set()
    for template, name in walk():
        for pk in pks:
            path = _fill_route(_fill_regex(template), pk)
            paths.add(("/" + path.lstrip("/"), name))
    return sorted(paths, key=lambda item: item[0])


@pytest.fixture
def rows():
    """Rows for the routes' ids to point at, so a refusal is not merely a 404."""
    account = account_create(name="victim", system_type="paper_trading", starting_balance=Decimal("10000"))
    store_learnable(200)
    from learning.services.retrain import batch_retrain

    batch_retrain()
    from learning.models import ModelVersion

    return sorted({account.pk, ModelVersion.objects.get().pk, 1})


def test_no_unauthenticated_write_succeeds_on_any_route(rows):
    client = Client()  # no CSRF enforcement: what is tested is authentication, not the CSRF token
    paths = concrete_paths(rows)
    assert len(paths) > 50 and any(path == "/" for path, _ in paths)  # admin, API, /ml/ and the dashboard
    successes = []
    for path, name in paths:
        if name in AUTH_FORMS:
            continue
        for method in WRITE_METHODS:
            response = getattr(client, method)(path, data={}, content_type="application/json")
            if 200 <= response.status_code < 300:
                successes.append(f"{method.upper()} {path} ({name}) -> {response.status_code}")
    assert not successes, "\n".join(successes)


def test_no_anonymous_read_succeeds_on_any_route(rows):
    """GET of every route without credentials: the API refuses (401/403), pages redirect to the login."""
    client = Client()
    paths = concrete_paths(rows)
    api_paths = [path for path, _ in paths if path.startswith(API_PREFIXES)]
    # The seed's endpoints and the API under /api/v1/ are both in the walk.
    assert {"/ml/hybrid/status", "/ml/online/stats", "/api/v1/accounts/", "/api/v1/learning/summary/"} <= set(api_paths)
    answered = []
    for path, name in paths:
        if name in PUBLIC_READS or path in PUBLIC_PATHS:
            continue
        response = client.get(path)
        # The API's JSON routes answer 401/403; pages (the docs page too) send the browser to the login.
        refused = response.status_code in (401, 403) or (response.status_code == 302 and "/login/" in response["Location"])
        if not refused:
            answered.append(f"GET {path} ({name}) -> {response.status_code}")
    assert not answered, "\n".join(answered)
    # The allow-list is not a blind spot: the public health endpoint is in the walk and does answer.
    health = [path for path, name in paths if name == "healthz"]
    assert health and client.get(health[0]).status_code in (200, 503)


def test_every_api_read_answers_with_a_token_or_a_session(rows):
    """The refusals above are for want of credentials: with them, no API route refuses a GET."""
    admin = get_user_model().objects.create_superuser("operator", password="x-password-123")
    with_token = Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=admin).key}")
    with_session = Client()
    with_session.force_login(admin)
    api_paths = [path for path, _ in concrete_paths(rows) if path.startswith(API_PREFIXES)]
    for client in (with_token, with_session):
        refused = [path for path in api_paths if client.get(path).status_code in (401, 403)]
        assert not refused, refused
    # And the data is really there: the account list names the account the fixture made.
    assert with_token.get("/api/v1/accounts/").json()["results"][0]["name"] == "victim"


def test_a_setting_opens_chosen_reads_and_nothing_else(rows, settings):
    settings.API_PUBLIC_READ_ROUTES = frozenset({"ml-hybrid-status", "account-detail"})
    anonymous = Client()
    assert anonymous.get("/ml/hybrid/status").status_code == 200
    assert anonymous.get(f"/api/v1/accounts/{rows[0]}/").status_code in (200, 404)
    # Writes stay closed on an opened route, and other routes stay closed to reads.
    assert anonymous.post("/ml/hybrid/status", {}, content_type="application/json").status_code in (401, 403)
    assert anonymous.get("/ml/online/stats").status_code in (401, 403)
    assert anonymous.get("/api/v1/accounts/").status_code in (401, 403)


def test_public_reads_are_closed_by_default(settings):
    from tradelearn.settings import base

    assert base.API_PUBLIC_READ_ROUTES == frozenset()


def test_a_public_read_route_that_is_not_an_api_route_fails_the_checks(settings):
    settings.API_PUBLIC_READ_ROUTES = frozenset({"ml-hybrid-status", "ml-hybrid-statuz", "dashboard:index"})
    errors = [error for error in run_checks() if error.id == "tradelearn.E001"]
    assert sorted(error.msg for error in errors) == [
        "API_PUBLIC_READ_ROUTES names 'dashboard:index', which is not a route of the API.",
        "API_PUBLIC_READ_ROUTES names 'ml-hybrid-statuz', which is not a route of the API.",
    ]


def test_admin_login_form_does_not_log_in_on_bad_credentials():
    get_user_model().objects.create_user("trader", password="right-password-123", is_staff=True)
    client = Client()
    client.post("/admin/login/", {"username": "trader", "password": "wrong"})
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("user_kind", ["anonymous", "logged in, not staff"])
def test_admin_pages_need_staff(rows, user_kind):
    client = Client()
    if user_kind != "anonymous":
        client.force_login(get_user_model().objects.create_user("viewer", password="x-password-123"))
    admin_paths = [path for path, name in concrete_paths(rows) if path.startswith("/admin/") and name not in AUTH_FORMS]
    assert len(admin_paths) > 20
    for path in admin_paths:
        for method in ("get", "post"):
            response = getattr(client, method)(path)
            assert response.status_code in (302, 403, 404, 405), f"{method.upper()} {path} -> {response.status_code}"
            if response.status_code == 302:
                assert response["Location"].startswith("/admin/login/"), f"{path} -> {response['Location']}"


def test_dashboard_pages_need_a_login(rows):
    dashboard_paths = [path for path, name in concrete_paths(rows) if name and name.startswith("dashboard:")]
    assert dashboard_paths
    anonymous = Client()
    for path in dashboard_paths:
        response = anonymous.get(path)
        assert response.status_code == 302 and "login" in response["Location"], f"GET {path} -> {response.status_code}"
    member = Client()
    member.force_login(get_user_model().objects.create_user("member", password="x-password-123"))
    assert member.get("/").status_code == 200
