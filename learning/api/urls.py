"""Learning API routes, mounted under /api/v1/."""
from django.urls import path

from learning.api import ml, views

urlpatterns = [
    path("trade-outcomes/", views.TradeOutcomeListCreateApi.as_view(), name="trade-outcomes"),
    path("recommendation/", views.RecommendationApi.as_view(), name="recommendation"),
    path("strategies/<str:strategy_type>/insights/", views.StrategyInsightsApi.as_view(), name="strategy-insights"),
    path("learning/summary/", views.LearningSummaryApi.as_view(), name="learning-summary"),
    path("learning/recent-performance/", views.RecentPerformanceListApi.as_view(), name="recent-performance"),
    path("learning/recent-record/", views.RecentRecordApi.as_view(), name="recent-record"),
    path("model-versions/", ml.ModelVersionListApi.as_view(), name="model-versions"),
    path("model-versions/rollback/", ml.ModelVersionRollbackApi.as_view(), name="model-version-rollback"),
    path("model-versions/<int:pk>/", ml.ModelVersionDetailApi.as_view(), name="model-version"),
    path("model-versions/<int:pk>/activate/", ml.ModelVersionActivateApi.as_view(), name="model-version-activate"),
]
