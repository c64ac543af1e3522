"""List endpoints refuse query parameters no filter reads, naming the ones they know (one filter backend for all)."""
import pytest
from django.urls import URLPattern, get_resolver
from rest_framework.generics import ListAPIView

from tests.security.test_access import walk

pytestmark = pytest.mark.django_db


def list_routes() -> list[str]:
    """Every list endpoint in the URL conf (walked, so one added later is covered)."""
    routes = []
    for template, name in walk():
        view = get_resolver().resolve("/" + template.replace("<int:pk>", "1")).func if "<" not in template else None
        view_class = getattr(view, "view_class", None)
        if view_class is not None and issubclass(view_class, ListAPIView):
            routes.append("/" + template)
    return routes


def test_the_walk_finds_the_list_endpoints():
    routes = list_routes()
    assert {"/api/v1/candles/", "/api/v1/trades/", "/api/v1/accounts/", "/api/v1/trade-outcomes/", "/api/v1/model-versions/"} <= set(routes)


@pytest.mark.parametrize("route", list_routes())
def test_an_unknown_query_parameter_is_a_400_naming_the_known_ones(token_client, route):
    response = token_client.get(route, {"nonsense": "1"})
    assert response.status_code == 400, (route, response.status_code)
    message = response.json()["extra"]["fields"]["nonsense"][0]
    assert message.startswith("Unknown query parameter; this endpoint reads ") and "format" in message


def test_candles_start_is_refused_instead_of_ignored(token_client):
    """The parameter that silently returned 2022's candles for "2023-06-01" onwards."""
    response = token_client.get("/api/v1/candles/", {"start": "2023-06-01", "symbol": "BTCUSDT"})
    assert response.status_code == 400
    fields = response.json()["extra"]["fields"]
    assert list(fields) == ["start"]
    for known in ("symbol", "timeframe", "exchange", "open_time_after", "open_time_before", "cursor", "page_size"):
        assert known in fields["start"][0]
    # The parameters it names are accepted.
    assert token_client.get("/api/v1/candles/", {"open_time_after": "2023-06-01T00:00:00Z", "page_size": 5, "format": "json"}).status_code == 200
