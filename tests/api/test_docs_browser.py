"""In headless Chromium with every request off the test server refused: the API docs (Swagger UI)
render from the project's own static files and list every endpoint, behind the login."""
from urllib.parse import urlsplit

import pytest
import yaml
from playwright.sync_api import expect

from tests.dashboard.test_browser import PASSWORD, page  # noqa: F401  (the Chromium page fixture)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def offline_page(page, live_server):  # noqa: F811
    """The page, with the network closed to everything but the live server (as on a machine without internet)."""
    refused = []
    server = urlsplit(live_server.url).netloc

    def only_the_server(route):
        if urlsplit(route.request.url).netloc == server:
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort("internetdisconnected")

    page.context.route("**/*", only_the_server)
    page.refused = refused
    return page


def log_in(page, live_server, django_user_model, next_path: str) -> None:
    # The browser logs in through the admin form (LOGIN_URL), which admits staff.
    django_user_model.objects.create_user(username="reader", password=PASSWORD, is_staff=True)
    page.goto(f"{live_server.url}{next_path}")
    page.wait_for_url(f"**/admin/login/?next={next_path}")  # the docs need a login, like the data they describe
    page.fill("#id_username", "reader")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}{next_path}")


def documented_operations(page, live_server) -> list[tuple[str, str]]:
    """(method, path) of every operation in the schema, read with the browser's session."""
    schema = yaml.safe_load(page.request.get(f"{live_server.url}/api/schema/").body())
    return [(method.upper(), path) for path, item in schema["paths"].items() for method in item if method != "parameters"]


def test_swagger_ui_renders_offline_and_lists_every_endpoint(offline_page, live_server, django_user_model):
    page = offline_page
    log_in(page, live_server, django_user_model, "/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("tradelearn API", timeout=30_000)
    operations = documented_operations(page, live_server)
    assert ("POST", "/ml/hybrid/predict") in operations and ("GET", "/api/v1/trades/") in operations
    expect(page.locator(".opblock")).to_have_count(len(operations))
    shown = {
        (method.strip(), path.strip().replace("\u200b", ""))
        for method, path in zip(
            page.locator(".opblock .opblock-summary-method").all_inner_texts(),
            page.locator(".opblock .opblock-summary-path").all_inner_texts(),
            strict=True,
        )
    }
    assert shown == set(operations)
    # Swagger UI came from the project (drf-spectacular-sidecar), and nothing was asked of a CDN.
    scripts = page.locator("script[src]").evaluate_all("nodes => nodes.map(node => node.src)")
    assert scripts and all(urlsplit(src).path.startswith("/static/drf_spectacular_sidecar/") for src in scripts if "swagger" in src)
    assert page.refused == []
