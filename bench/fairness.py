"""Fairness between partners: partner B's changes while partner A floods the service.

A second organization (B) with its own simulated Jira (project REB) is set up for this
scenario only (it runs last: every local change after it also reaches B's scope check).
A posts a flood of deliveries (as in the burst); right after it, Alice edits B's issues at
B's Jira, whose webhook delivers them. B's latency is Jira's event time -> our site written
(as in the latency scenario). Measured with fair queues (the default) and, in the same run,
with one FIFO for everyone (`SYNC_FAIR_QUEUES=false` on the web processes, which choose the
queue), so the ratio shows.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime

from burst import drain, post_deliveries
from harness import Bench, partner_org
from latency import percentile
from stack import SYNC_PARTNER

B_HOOK_SECRET = "bench-partner-b-webhook-secret"


class PartnerB:
    """Organization B, its Jira (a third simulator) and `issues` issues linked with ours."""

    def __init__(self, bench: Bench, issues: int) -> None:
        from sync.models import IssueLink

        stack = bench.stack
        self.bench = bench
        self.site = stack.sim("jirasim-partner-b", "REB:Partner B", SYNC_PARTNER)
        self.org = partner_org(
            name="Bench partner B",
            site=self.site,
            project="REB",
            secret=B_HOOK_SECRET,
            push_jql='labels = "partner-b"',
        )
        local_keys = [
            bench.create(stack.local, "LOC", f"Shared with B {n}", labels=("partner-b",))
            for n in range(issues)
        ]
        bench.settle(300)
        self.keys = list(
            IssueLink.objects.filter(
                organization=self.org, local_issue_key__in=local_keys
            ).values_list("remote_issue_key", flat=True)
        )
        if len(self.keys) != issues:
            raise RuntimeError(f"B's issues were not linked: {self.keys}")

    def change(self, n: int, tag: str) -> None:
        """Alice edits one of B's issues at B's Jira; its webhook carries the change to us."""
        key = self.keys[n % len(self.keys)]
        self.bench.api(
            self.site, "PUT", f"/issue/{key}", json={"fields": {"summary": f"B {tag} {n}"}}
        )


def one_run(bench: Bench, b: PartnerB, targets: list, flood: int, changes: int, mode: str) -> dict:
    """A's flood posted; B's `changes` made 0.2 s apart right after it; until all settle."""
    from sync.models import SyncEvent
    from webhooks.models import WebhookDelivery

    bench.settle(300)
    first = bench.last_delivery_pk()
    since = datetime.now(UTC)
    tag = f"{mode}-{uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    statuses = post_deliveries(bench, targets, flood, f"flood-{tag}")
    posted = time.monotonic() - started
    changer = threading.Thread(
        target=lambda: [(b.change(n, tag), time.sleep(0.2)) for n in range(changes)]
    )
    changer.start()
    changer.join()
    drain_seconds, _, _ = drain(bench, first, flood)
    bench.settle(300)
    latencies = list(
        SyncEvent.objects.filter(
            organization=b.org, direction="pull", result="written", created_at__gte=since
        )
        .exclude(latency_ms=None)
        .values_list("latency_ms", flat=True)
    )
    a_done = WebhookDelivery.objects.filter(
        pk__gt=first, organization=bench.org, status__in=["done", "echo", "ignored"]
    ).count()
    return {
        "queues": mode,
        "flood": flood,
        "flood_accepted": sum(1 for s in statuses if s in (200, 202)),
        "flood_processed": a_done,
        "flood_posting_s": round(posted, 2),
        "flood_drain_s": round(drain_seconds + posted, 2),
        "b_changes": changes,
        "b_synced": len(latencies),
        "b_p50_ms": percentile(latencies, 50),
        "b_p99_ms": percentile(latencies, 99),
        "b_max_ms": max(latencies) if latencies else None,
    }


def fairness(bench: Bench, flood: int, changes: int, targets: list) -> dict:
    """B's change latency while A floods, with fair queues and with one FIFO."""
    b = PartnerB(bench, issues=min(changes, 10))
    runs = [one_run(bench, b, targets, flood, changes, "fair")]
    bench.stack.restart_web(SYNC_FAIR_QUEUES="false")
    try:
        runs.append(one_run(bench, b, targets, flood, changes, "fifo"))
    finally:
        bench.stack.restart_web()
    fair, fifo = runs
    ratio = (
        round(fifo["b_p99_ms"] / fair["b_p99_ms"], 1)
        if fair["b_p99_ms"] and fifo["b_p99_ms"]
        else None
    )
    return {"runs": runs, "p99_fifo_over_fair": ratio, "goal_p99_ms": 2000}
