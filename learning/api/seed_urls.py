"""The seed's endpoints, at exactly the paths it names (mounted under /ml/)."""
from django.urls import path

from learning.api import ml

urlpatterns = [
    path("online/add_training_data", ml.AddTrainingDataApi.as_view(), name="ml-add-training-data"),
    path("online/update", ml.OnlineUpdateApi.as_view(), name="ml-online-update"),
    path("online/stats", ml.OnlineStatsApi.as_view(), name="ml-online-stats"),
    path("hybrid/predict", ml.HybridPredictApi.as_view(), name="ml-hybrid-predict"),
    path("hybrid/status", ml.HybridStatusApi.as_view(), name="ml-hybrid-status"),
]
