"""End-to-end latency, push and pull: Jira's event time -> the other site written, at a
steady rate of changes, p50/p95/p99 and the share within one second."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from cpu import snapshot, split
from harness import Bench


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def linked_keys(bench: Bench, way: str, rate: float, issues: int) -> list[str]:
    """`issues` new linked issues; their keys on the site where the changes are made."""
    from sync.models import IssueLink

    keys = []
    for n in range(issues):
        keys.append(bench.create(bench.stack.local, "LOC", f"Latency {way} {rate} {n}"))
    bench.settle(120)
    if way == "pull":
        links = dict(
            IssueLink.objects.filter(local_issue_key__in=keys).values_list(
                "local_issue_key", "remote_issue_key"
            )
        )
        keys = [links[k] for k in keys]
    return keys


def latency(bench: Bench, way: str, rate: float, seconds: float, issues: int = 20) -> dict:
    from sync.models import SyncEvent

    bench.settle()
    keys = linked_keys(bench, way, rate, issues)
    site = bench.stack.local if way == "push" else bench.stack.partner
    since = datetime.now(UTC)
    total = int(rate * seconds)
    before = snapshot(bench.stack)
    start = time.monotonic()

    def change(n: int) -> None:
        bench.api(
            site,
            "PUT",
            f"/issue/{keys[n % len(keys)]}",
            json={"fields": {"summary": f"{way} change {n} at {rate}/s"}},
        )

    with ThreadPoolExecutor(max_workers=32) as pool:
        for n in range(total):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(change, n)
    bench.settle(300)
    cpu = split(before, snapshot(bench.stack), time.monotonic() - start)
    latencies = list(
        SyncEvent.objects.filter(created_at__gte=since, direction=way, result="written")
        .exclude(latency_ms=None)
        .values_list("latency_ms", flat=True)
    )
    return {
        **summary(way, rate, seconds, total, latencies),
        # Changes queued behind a running sync of their issue are merged into one write
        # (coalescing), so `synced` (writes) may be below `changes`: nothing is lost when
        # every issue ends with its source's last summary.
        "converged": converged(bench, way, keys),
        "issues": len(keys),
        "cpu": cpu,
    }


def converged(bench: Bench, way: str, keys: list[str]) -> int:
    """How many of the issues changed show, at the other site, their source's summary."""
    from sync.models import IssueLink

    column = "local_issue_key" if way == "push" else "remote_issue_key"
    other = "remote_issue_key" if way == "push" else "local_issue_key"
    pairs = dict(IssueLink.objects.filter(**{f"{column}__in": keys}).values_list(column, other))
    source = bench.stack.local if way == "push" else bench.stack.partner
    target = bench.stack.partner if way == "push" else bench.stack.local
    same = 0
    for key in keys:
        mine = bench.api(source, "GET", f"/issue/{key}?fields=summary")["fields"]["summary"]
        copy = bench.api(target, "GET", f"/issue/{pairs[key]}?fields=summary")["fields"]
        same += copy["summary"] == mine
    return same


def summary(way: str, rate: float, seconds: float, total: int, latencies: list[float]) -> dict:
    return {
        "direction": way,
        "rate_per_s": rate,
        "seconds": seconds,
        "changes": total,
        "synced": len(latencies),
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
        "mean_ms": round(statistics.fmean(latencies), 1) if latencies else None,
        "within_1s": round(sum(1 for v in latencies if v <= 1000) / len(latencies), 3)
        if latencies
        else None,
    }
