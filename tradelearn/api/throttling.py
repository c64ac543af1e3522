"""Request rate limits that cost the same at any rate: a counter per client and time window.

DRF's own throttles keep every request's timestamp of the last period in one cache entry, read
and written back whole on each request: at the user rate (6,000 a minute) that entry is a list
of thousands of floats pickled twice per call, which cost more than the prediction it guarded.
Here each client has one integer per window of the rate's period, created by `add` and raised
by `incr` (atomic in Redis, so every web worker shares the count). The price of a fixed window:
a client may send up to the rate at the end of one window and again at the start of the next.
"""
from rest_framework import throttling


class _WindowCounter:
    """allow_request/wait for a SimpleRateThrottle subclass, counting in fixed windows of its period."""

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_ends = (window + 1) * self.duration
        self.key = f"{key}_{window}"
        # The entry outlives its window a little, so a late incr never finds it expired.
        self.cache.add(self.key, 0, self.duration + 5)
        try:
            count = self.cache.incr(self.key)
        except ValueError:  # evicted between add and incr
            self.cache.add(self.key, 1, self.duration + 5)
            count = 1
        return count <= self.num_requests

    def wait(self):
        return max(self.window_ends - self.now, 1.0)


class AnonRateThrottle(_WindowCounter, throttling.AnonRateThrottle):
    """Anonymous callers, per address (DRF's scope "anon")."""


class UserRateThrottle(_WindowCounter, throttling.UserRateThrottle):
    """Authenticated callers, per user (DRF's scope "user")."""
