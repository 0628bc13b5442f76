"""API authentication with throttled failures: after API_AUTH_FAILURE_LIMIT failed HTTP Basic
or token authentications from one client address within API_AUTH_FAILURE_WINDOW_SECONDS,
every authentication attempt from it is answered 429 (with Retry-After) until the window
has passed, so passwords and tokens cannot be guessed at speed.

The count lives in Django's cache (CACHE_URL; use a shared one, e.g. Redis, with several web
machines). Successful requests are not counted.
"""

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework import exceptions
from rest_framework.authentication import BasicAuthentication, TokenAuthentication
from rest_framework.throttling import SimpleRateThrottle


class FailedAuthenticationThrottle(SimpleRateThrottle):
    """DRF's rate throttle, counting failed authentications only (see `record_failure`)."""

    scope = "auth_failure"
    cache = cache

    def get_rate(self) -> str:
        return f"{settings.API_AUTH_FAILURE_LIMIT}/s"

    def parse_rate(self, rate):
        return settings.API_AUTH_FAILURE_LIMIT, settings.API_AUTH_FAILURE_WINDOW_SECONDS

    def get_cache_key(self, request, view=None) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def _load(self, request) -> None:
        self.key = self.get_cache_key(request)
        self.now = time.time()
        self.history = [t for t in self.cache.get(self.key, []) if t > self.now - self.duration]

    def allows(self, request) -> bool:
        self._load(request)
        return len(self.history) < self.num_requests

    def record_failure(self, request) -> None:
        self._load(request)
        self.history.insert(0, self.now)
        self.cache.set(self.key, self.history, self.duration)


class ThrottledFailuresMixin:
    def authenticate(self, request):
        throttle = FailedAuthenticationThrottle()
        if not throttle.allows(request):
            raise exceptions.Throttled(wait=throttle.wait())
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            throttle.record_failure(request)
            raise


class ThrottledBasicAuthentication(ThrottledFailuresMixin, BasicAuthentication):
    pass


class ThrottledTokenAuthentication(ThrottledFailuresMixin, TokenAuthentication):
    pass
