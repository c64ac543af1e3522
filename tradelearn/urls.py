"""URL map: admin, the seed's /ml/ endpoints, the API under /api/v1/, schema and docs, the public /healthz."""
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from dashboard.views import healthz

api_v1 = [
    path("", include("learning.api.urls")),
    path("", include("trading.api.urls")),
    path("", include("scraping.api.urls")),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("ml/", include("learning.api.seed_urls")),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The docs page reads the schema, which needs a login: a browser without one is sent to the login.
    path("api/docs/", login_required(SpectacularSwaggerView.as_view(url_name="schema")), name="api-docs"),
    path("", include("dashboard.urls")),
]

# Routing misses and requests refused before a view keep the API's error shape under its prefixes.
handler404 = "tradelearn.api.errors.not_found"
handler400 = "tradelearn.api.errors.bad_request"
