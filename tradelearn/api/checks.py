"""System checks of the API's configuration that need the URL conf (so cannot run in settings)."""
from django.conf import settings
from django.core.checks import Error, register
from django.urls import get_resolver

from tradelearn.api.errors import API_PREFIXES


def _route_path(name: str) -> str | None:
    """The path pattern of a (non-namespaced) URL name, e.g. "/ml/hybrid/status", or None."""
    # reverse_dict: name → [(possibilities, pattern, defaults, converters)], a possibility being (format, params).
    entries = get_resolver().reverse_dict.getlist(name)
    return "/" + entries[0][0][0][0] if entries else None


@register()
def check_public_read_routes(app_configs=None, **kwargs):
    """Every name in API_PUBLIC_READ_ROUTES must be a route of the API: a typo would open nothing, silently."""
    errors = []
    for name in settings.API_PUBLIC_READ_ROUTES:
        path = _route_path(name)
        if path is None or not path.startswith(API_PREFIXES):
            errors.append(
                Error(
                    f"API_PUBLIC_READ_ROUTES names {name!r}, which is not a route of the API.",
                    hint=f"Use URL names of routes under {', '.join(API_PREFIXES)} (e.g. ml-hybrid-status), comma-separated.",
                    id="tradelearn.E001",
                )
            )
    return errors
