"""URL map: admin, the seed's /ml/ endpoints, the API under /api/v1/, schema and docs, the public /healthz."""
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from dashboard.views import healthz

# The admin's app sidebar takes a fifth of a 1440 px screen that the lists' key columns need;
# the breadcrumbs and the home page reach every table.
admin.site.enable_nav_sidebar = False
admin.site.site_header = "tradelearn administration"

api_v1 = [
    path("", include("learning.api.urls")),
    path("", include("trading.api.urls")),
    path("", include("scraping.api.urls")),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    # Browsers ask for /favicon.ico on their own, even from pages that name an icon.
    path("favicon.ico", RedirectView.as_view(url=static("dashboard/favicon.svg"), permanent=True), name="favicon"),
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
