"""Counters only a process knows: the Jira calls it made and the 429s it got, per site.

prometheus_client keeps them in memory, or (multiprocess mode, PROMETHEUS_MULTIPROC_DIR set
before this import) in a memory-mapped file per process that `/metrics` sums: an increment
is a few microseconds, never a query or a round trip.
"""

from __future__ import annotations

from prometheus_client import Counter

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
