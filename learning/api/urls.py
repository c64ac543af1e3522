"""Learning API routes, mounted under /api/v1/."""
from django.urls import path

from learning.api import views

urlpatterns = [
    path("trade-outcomes/", views.TradeOutcomeListCreateApi.as_view(), name="trade-outcomes"),
    path("recommendation/", views.RecommendationApi.as_view(), name="recommendation"),
    path("strategies/<str:strategy_type>/insights/", views.StrategyInsightsApi.as_view(), name="strategy-insights"),
    path("learning/summary/", views.LearningSummaryApi.as_view(), name="learning-summary"),
]
