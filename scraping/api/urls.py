"""API routes of this app, mounted under /api/v1/."""
from django.urls import path

from scraping.api import levels as levels_api

urlpatterns: list = [
    path("price-levels/", levels_api.PriceLevelListApi.as_view(), name="price-level-list"),
]
