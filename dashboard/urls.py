"""Dashboard routes, mounted at the site root."""
from django.urls import path

from dashboard import views

app_name = "dashboard"
urlpatterns = [
    path("", views.dashboard, name="index"),
    path("audit/", views.audit, name="audit"),
]
