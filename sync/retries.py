"""The one retry policy for Jira work: the Celery task and the backfill command both use it."""

import random

from django.conf import settings


def backoff_seconds(attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter, capped, never sooner than Retry-After."""
    base = settings.SYNC_RETRY_BASE_SECONDS * (2 ** max(0, attempt - 1))
    delay = random.uniform(base / 2, base)  # noqa: S311 - jitter, not cryptography
    delay = min(delay, settings.SYNC_RETRY_MAX_SECONDS)
    if retry_after is not None:
        delay = max(delay, retry_after + random.uniform(0, 0.5))  # noqa: S311
    return delay
