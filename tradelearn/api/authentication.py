"""Token authentication that remembers a verified token briefly, so each API call skips a database look-up."""
import time

from django.conf import settings
from rest_framework.authentication import TokenAuthentication

# key → (verified at, user, token); kept per process and bounded so it cannot grow without end.
_verified: dict[str, tuple[float, object, object]] = {}
_MAX_ENTRIES = 10_000


class CachedTokenAuthentication(TokenAuthentication):
    """DRF's TokenAuthentication, with each verified token remembered for API_TOKEN_CACHE_SECONDS.

    Looking the token and its user up cost more than a model prediction; the price is that a
    deleted token, a deactivated user or a changed staff flag take effect within that many
    seconds rather than at once (0 turns the memory off).
    """

    def authenticate_credentials(self, key):
        ttl = settings.API_TOKEN_CACHE_SECONDS
        if ttl > 0:
            hit = _verified.get(key)
            if hit is not None and time.monotonic() - hit[0] < ttl:
                return hit[1], hit[2]
        user, token = super().authenticate_credentials(key)
        if ttl > 0:
            if len(_verified) >= _MAX_ENTRIES:
                _verified.clear()
            _verified[key] = (time.monotonic(), user, token)
        return user, token
