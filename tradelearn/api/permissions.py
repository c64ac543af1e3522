"""Who may call the API: any authenticated user (session or token); anonymous callers only the
reads that API_PUBLIC_READ_ROUTES opens (none by default)."""
from django.conf import settings
from rest_framework.permissions import SAFE_METHODS, BasePermission


class IsAuthenticatedOrPublicRead(BasePermission):
    """The project's default: reads are private data too (accounts, trades, decisions, models).

    A deployment may open chosen read-only routes (by URL name, e.g. `ml-hybrid-status`) to
    anonymous GET/HEAD/OPTIONS; writes always need credentials.
    """

    def has_permission(self, request, view):
        if request.user and request.user.is_authenticated:
            return True
        match = request.resolver_match
        return request.method in SAFE_METHODS and match is not None and match.view_name in settings.API_PUBLIC_READ_ROUTES
