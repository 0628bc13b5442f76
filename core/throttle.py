"""Throttling of failed authentication on the public endpoints (Jira webhooks, and the
partner installs' handshake and messages).

A counter per (client address, endpoint target) in Django's cache, in fixed windows: the
`default` cache is Redis when the broker is (shared by every web process and machine), or a
file cache beside the embedded SQLite database (shared by the processes of one machine); see
`CACHE_URL` in the settings. The target is the organization id in the URL (or "local"), so
failures against one organization never throttle another organization's partner, even from
a shared address (Atlassian's Cloud sends from shared ranges).

Only failures count; a client under the limit pays one cache read per delivery. An endpoint
may spare its known clients even that read, if it refuses a blocked client otherwise: the
incoming endpoint does, for the partners whose credentials it kept (`webhooks.blocks`, fed by
what `record_failure` and `retry_after` return here).
"""

from __future__ import annotations

import hashlib
import logging
import time

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)


def key_digest(*, client: str, target: str) -> str:
    """What identifies (client, target) in the counter's key (and in `webhooks.blocks`)."""
    return hashlib.sha256(f"{client}|{target}".encode("utf-8", "replace")).hexdigest()[:32]


def _key(*, client: str, target: str, window: int) -> str:
    digest = key_digest(client=client, target=target)
    return f"webhook-auth-failures:{int(time.time()) // window}:{digest}"


def _window() -> int:
    return max(1, int(settings.WEBHOOK_AUTH_FAILURE_WINDOW_SECONDS))


def window_end() -> int:
    """When the current window ends (seconds since the epoch): when a count made now expires
    (`retry_after`'s wait is the time left until then)."""
    window = _window()
    return (int(time.time()) // window + 1) * window


def retry_after(*, client: str, target: str) -> int | None:
    """Seconds the client must wait before trying `target` again, or None if it may try now."""
    limit = settings.WEBHOOK_AUTH_FAILURE_LIMIT
    if limit <= 0:
        return None
    window = _window()
    try:
        failures = cache.get(_key(client=client, target=target, window=window), 0)
    except Exception:  # a cache outage must not refuse (or fail) genuine deliveries
        logger.warning("throttle.cache_unavailable", exc_info=True)
        return None
    if failures < limit:
        return None
    return window - int(time.time()) % window or window


def record_failure(*, client: str, target: str) -> bool:
    """Count one failed authentication of `client` against `target`: whether that brought it
    to the limit (or past it), so that `retry_after` refuses it until the window ends."""
    limit = settings.WEBHOOK_AUTH_FAILURE_LIMIT
    if limit <= 0:
        return False
    window = _window()
    key = _key(client=client, target=target, window=window)
    try:
        # Always the same two operations (first failure or not): the work tells nothing. On
        # Redis (core/cache.py) both go in one round trip.
        add_and_incr = getattr(cache, "add_and_incr", None)
        if add_and_incr is not None:
            failures = add_and_incr(key, timeout=window + 1)
        else:
            cache.add(key, 0, timeout=window + 1)
            failures = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window + 1)
        failures = 1
    except Exception:
        logger.warning("throttle.cache_unavailable", exc_info=True)
        return False
    return failures >= limit


def client_address(meta: dict) -> str:
    """The client's address: REMOTE_ADDR, or with `NUM_PROXIES` trusted proxies in front,
    the address the outermost of them saw (from the right of X-Forwarded-For)."""
    proxies = settings.NUM_PROXIES
    remote = meta.get("REMOTE_ADDR", "")
    if proxies > 0:
        forwarded = [a.strip() for a in meta.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [a for a in forwarded if a]
        if forwarded:
            return forwarded[-min(proxies, len(forwarded))]
    return remote
