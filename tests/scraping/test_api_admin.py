"""The price levels API (filters, read-only) and admin (list, filters) over levels stored from real candles."""
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from scraping.levels import LevelHistory
from scraping.models import PriceLevel
from scraping.services import price_levels_replace

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored_levels(btc_frame):
    history = LevelHistory(btc_frame, timeframe_ns=3_600_000_000_000)
    level_sets = [history.at(datetime(2022, 6, day, tzinfo=UTC)) for day in (10, 11)]
    price_levels_replace(symbol="BTCUSDT", timeframe="1h", level_sets=level_sets)
    return PriceLevel.objects.all()


def test_levels_are_listed_with_filters_newest_first(stored_levels, token_client):
    client = token_client
    response = client.get("/api/v1/price-levels/", {"symbol": "BTC/USDT:USDT", "kind": "support", "min_strength": 0.8})
    assert response.status_code == 200
    results = response.json()["results"]
    expected = stored_levels.filter(kind="support", strength__gte=0.8)
    assert len(results) == expected.count() > 0
    assert all(row["kind"] == "support" and row["strength"] >= 0.8 for row in results)
    times = [row["computed_at"] for row in results]
    assert times == sorted(times, reverse=True)
    assert client.get("/api/v1/price-levels/", {"kind": "sideways"}).status_code == 400
    assert APIClient().post("/api/v1/price-levels/", {}).status_code in (401, 403, 405)


def test_the_admin_lists_and_filters_levels(client, stored_levels):
    client.force_login(get_user_model().objects.create_superuser("admin", "admin@example.com", "not-used"))
    page = client.get("/admin/scraping/pricelevel/", {"kind__exact": "resistance", "o": "-5"})
    assert page.status_code == 200
    assert page.context["cl"].result_count == stored_levels.filter(kind="resistance").count()
    level = stored_levels.first()
    assert client.get(f"/admin/scraping/pricelevel/{level.pk}/change/").status_code == 200
    assert client.get("/admin/scraping/pricelevel/add/").status_code == 403
