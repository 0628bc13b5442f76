"""Counters only a process knows: the Jira calls it made and the 429s it got, per site.

prometheus_client keeps them in memory, or (multiprocess mode, PROMETHEUS_MULTIPROC_DIR set
before this import) in a memory-mapped file per process that `/metrics` sums: an increment
is a few microseconds, never a query or a round trip.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter

logger = logging.getLogger(__name__)

JIRA_CALLS = Counter(
    "jirasync_jira_calls",
    "Calls made to a Jira site's REST API (every answer, errors included).",
    ["site"],
)
JIRA_RATE_LIMITED = Counter(
    "jirasync_jira_rate_limited",
    "Answers of a Jira site that said slow down (429, or 503 with Retry-After).",
    ["site"],
)


class _Uncounted:
    def inc(self, amount: float = 1) -> None:
        pass


def site_counter(counter: Counter, site: str):
    """`counter` for `site`; if the process cannot keep it (its metrics folder is gone or
    not writable), a counter that counts nothing: a figure never fails a Jira call."""
    try:
        return counter.labels(site=site)
    except OSError as exc:
        logger.warning("metrics.unavailable", extra={"error": str(exc)})
        return _Uncounted()
