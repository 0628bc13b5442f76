"""`GET /metrics`: the service's figures in Prometheus' text format, for staff or a scraper
holding METRICS_TOKEN.

Two kinds of figures:
- read from the database at scrape time, from the selectors the dashboard uses (so both
  agree): deliveries by source and status, queue depth per organization, sync events
  (echoes, conflicts, errors, ...) per organization, end-to-end latency per direction.
  Nothing is counted on the hot path for them; a scrape's queries are cached per process
  for METRICS_CACHE_SECONDS.
- counted by the processes that saw them (jiraapi/metrics.py): Jira calls and rate-limit
  answers per site, summed over every web and worker process by prometheus_client's
  multiprocess mode (PROMETHEUS_MULTIPROC_DIR, syncapp/settings.py).
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_safe
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
)
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from ops import selectors
from ops.permissions import STATUS_PERMISSIONS, may_see

logger = logging.getLogger(__name__)

# The dashboard's window: deliveries and sync events of the last 24 hours.
WINDOW_HOURS = 24


class DatabaseCollector:
    """The figures the database holds, read from the dashboard's selectors."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cached: tuple[float, list] | None = None

    def collect(self):
        ttl = settings.METRICS_CACHE_SECONDS
        with self._lock:
            now = time.monotonic()
            if ttl <= 0 or self._cached is None or now - self._cached[0] >= ttl:
                self._cached = (now, self._families())
            return list(self._cached[1])

    def _families(self) -> list:
        since = timezone.now() - timedelta(hours=WINDOW_HOURS)
        families = [
            _gauge(
                "jirasync_deliveries",
                f"Webhook deliveries received in the last {WINDOW_HOURS} h, by source and "
                "status (status echo: an echo of our own write, suppressed).",
                ["source", "status"],
                selectors.delivery_counts(since=since),
            ),
            _gauge(
                "jirasync_queue_depth",
                "Deliveries queued now (pending, processing, failed: waiting for a retry), per "
                'organization (public id; "" for our own Jira\'s).',
                ["organization", "status"],
                selectors.queue_depth(),
            ),
            _gauge(
                "jirasync_sync_events",
                f"Sync events of the last {WINDOW_HOURS} h per organization and result "
                "(written, no_change, echo, conflict, error, skipped, closed).",
                ["organization", "result"],
                selectors.result_counts(since=since),
            ),
        ]
        latency = GaugeHistogramMetricFamily(
            "jirasync_sync_latency_seconds",
            f"End-to-end latency (the Jira change to our write on the other side) of the syncs "
            f"of the last {WINDOW_HOURS} h, per direction (push: local to partner, pull: back).",
            labels=["direction"],
        )
        for direction, found in sorted(selectors.latency_histogram(since=since).items()):
            buckets = [(str(b / 1000), n) for b, n in found["buckets"].items()]
            latency.add_metric(
                [direction], [*buckets, ("+Inf", found["count"])], found["sumMs"] / 1000
            )
        return [*families, latency]


def _gauge(name: str, documentation: str, labels: list[str], counts: dict) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for key, n in sorted(counts.items()):
        family.add_metric(list(key), n)
    return family


DATABASE = DatabaseCollector()


class _Scrape:
    """What one scrape shows: the processes' counters, then the database's figures."""

    def __init__(self, *collectors) -> None:
        self.collectors = collectors

    def collect(self):
        for collector in self.collectors:
            yield from collector.collect()


def metrics_text() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        counted = CollectorRegistry()
        MultiProcessCollector(counted)
    else:
        counted = REGISTRY
    return generate_latest(_Scrape(counted, DATABASE))


def _bearer(request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


@require_safe
def metrics_view(request):
    token = _bearer(request)
    if token is not None:
        expected = settings.METRICS_TOKEN
        if not (expected and hmac.compare_digest(token.encode(), expected.encode())):
            logger.warning("metrics.token_refused", extra={"configured": bool(expected)})
            return _refused(401)
    elif not may_see(request.user, STATUS_PERMISSIONS):
        return _refused(403 if request.user.is_authenticated else 401)
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_PLAIN_0_0_4)


def _refused(status: int) -> HttpResponse:
    response = HttpResponse(
        "Staff, or Authorization: Bearer <METRICS_TOKEN>.\n",
        status=status,
        content_type="text/plain",
    )
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response
