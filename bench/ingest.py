"""Ingest: the partner webhook endpoint against the baseline view (insert one row), under
wrk in alternating rounds and at a fixed 200 requests/s, with the worker paused."""

from __future__ import annotations

import json
import statistics
import time

import load
from harness import Bench
from stack import PARTNER_HOOK_SECRET


def rounds(bench: Bench, body: bytes, headers: dict, seconds: float) -> list[dict]:
    """Alternating rounds, so that the machine's drift hits both sides alike."""
    out = []
    for _ in range(bench.ingest_rounds):
        real = load.wrk(bench.incoming_url(), body, headers, seconds)
        baseline = load.wrk(f"{bench.stack.base}/bench/baseline/", body, headers, seconds)
        out.append(
            {
                "endpoint_rps": real["rps"],
                "baseline_rps": baseline["rps"],
                "ratio": round(real["rps"] / baseline["rps"], 3),
                "endpoint_non_2xx": real["non_2xx"],
            }
        )
    return out


def ingest(bench: Bench, seconds: float, rate_seconds: float) -> dict:
    from webhooks.models import WebhookDelivery

    issue_id, issue_key = bench.linked_issues(1)[0]
    body = json.dumps(load.partner_payload(issue_id, issue_key, "Load target 0")).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Hub-Signature": load.signed(body, PARTNER_HOOK_SECRET),
    }
    bench.settle()
    bench.stack.worker.suspend()  # measure the endpoint, not the sync
    try:
        # The figures are the medians of the rounds.
        measured = rounds(bench, body, headers, seconds)

        def make(n):
            return body, {
                **headers,
                "X-Atlassian-Webhook-Identifier": f"rate-{n}-{time.time()}",
            }

        fixed = load.fixed_rate(bench.incoming_url(), make, 200, rate_seconds)
        fixed_baseline = load.fixed_rate(
            f"{bench.stack.base}/bench/baseline/", make, 200, rate_seconds
        )
    finally:
        # The flood was for the endpoint only: drop it before the worker wakes up.
        WebhookDelivery.objects.filter(
            status="pending", event_type="jira:issue_updated", issue_key=issue_key
        ).update(status="ignored")
        bench.stack.drop_queued()
        bench.stack.worker.resume()
    return {
        "endpoint_rps": statistics.median(r["endpoint_rps"] for r in measured),
        "baseline_rps": statistics.median(r["baseline_rps"] for r in measured),
        "ratio": statistics.median(r["ratio"] for r in measured),
        "endpoint_non_2xx": sum(r["endpoint_non_2xx"] for r in measured),
        "rounds": measured,
        "at_200_per_s": {"endpoint": fixed, "baseline": fixed_baseline},
    }
