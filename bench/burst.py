"""Burst and scaling: partner deliveries posted as fast as 32 clients can, then drained by
the worker; and the drain rate of a queued backlog per worker process count (queued while
the worker is paused, timed from its resumption)."""

from __future__ import annotations

import json
import time
import uuid

import load
from harness import Bench
from stack import PARTNER_HOOK_SECRET


def post_deliveries(
    bench: Bench, targets: list[tuple[str, str]], count: int, tag: str
) -> list[int]:
    bodies = []
    for n in range(count):
        issue_id, issue_key = targets[n % len(targets)]
        body = json.dumps(load.partner_payload(issue_id, issue_key, f"{tag} {n}")).encode()
        bodies.append(
            (
                body,
                {
                    "Content-Type": "application/json",
                    "X-Atlassian-Webhook-Identifier": f"{tag}-{n}",
                    "X-Hub-Signature": load.signed(body, PARTNER_HOOK_SECRET),
                },
            )
        )
    return load.post_many(bench.incoming_url(), bodies)


def drain(bench: Bench, first_pk: int, count: int, timeout: float = 900) -> tuple[float, int, list]:
    """Seconds until every delivery after `first_pk` is final; peak worker memory."""
    from webhooks.models import WebhookDelivery

    start = time.monotonic()
    peak = 0
    backlog = []
    while time.monotonic() - start < timeout:
        peak = max(peak, load.rss_kib(bench.stack.worker.pid))
        left = WebhookDelivery.objects.filter(
            pk__gt=first_pk, status__in=["pending", "processing", "failed"]
        ).count()
        backlog.append((round(time.monotonic() - start, 2), left))
        if left == 0:
            break
        time.sleep(0.05)  # fine enough for a backlog drained in about a second
    return time.monotonic() - start, peak, backlog


def burst(bench: Bench, count: int, targets: list[tuple[str, str]]) -> dict:
    from django.db.models import Count

    from sync.models import SyncEvent
    from webhooks.models import WebhookDelivery

    bench.settle()
    first = bench.last_delivery_pk()
    started = time.monotonic()
    statuses = post_deliveries(bench, targets, count, f"burst-{uuid.uuid4().hex[:6]}")
    post_seconds = time.monotonic() - started
    drain_seconds, peak_kib, backlog = drain(bench, first, count)
    stored = WebhookDelivery.objects.filter(pk__gt=first)
    final = stored.filter(status__in=["done", "echo", "ignored"]).count()
    twice = (
        SyncEvent.objects.filter(delivery__pk__gt=first)
        .values("delivery")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    accepted = sum(1 for s in statuses if s in (200, 202))
    return {
        "posted": count,
        "accepted": accepted,
        "refused_or_failed": count - accepted,
        "stored": stored.count(),
        "processed": final,
        "lost": accepted - final,
        "duplicated": twice,
        "post_seconds": round(post_seconds, 2),
        "drain_seconds": round(post_seconds + drain_seconds, 2),
        "peak_worker_rss_mib": round(peak_kib / 1024, 1),
        "backlog": backlog,
    }


def scaling(bench: Bench, counts: list[int], deliveries: int, targets) -> list[dict]:
    stack = bench.stack
    rows = []
    for workers in counts:
        bench.settle()
        stack.stop_worker()
        stack.start_worker(workers)
        # Queued while the started worker is paused, then drained from its resumption: a
        # worker drains a small backlog faster than it answers its first ping, so timing
        # from a worker start would count what it did while booting as free.
        stack.worker.suspend()
        try:
            first = bench.last_delivery_pk()
            post_deliveries(bench, targets, deliveries, f"scale{workers}-{uuid.uuid4().hex[:6]}")
        finally:
            stack.worker.resume()
        seconds, peak, _ = drain(bench, first, deliveries)
        rows.append(
            {
                "workers": workers,
                "deliveries": deliveries,
                "seconds": round(seconds, 2),
                "per_second": round(deliveries / seconds, 1),
                "peak_worker_rss_mib": round(peak / 1024, 1),
            }
        )
    stack.stop_worker()
    stack.start_worker(stack.workers)
    return rows
