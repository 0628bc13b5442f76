"""Ingest: the partner webhook endpoint against the baseline view (insert one row), under
wrk in alternating rounds and at a fixed 200 requests/s, with the worker paused.

Every wrk request carries its own X-Atlassian-Webhook-Identifier, so each one is a new
delivery (stored and queued), not a repeat; the rows stored in each round are counted to
show it (`endpoint_stored` against wrk's `endpoint_requests`)."""

from __future__ import annotations

import json
import statistics
import time

import load
from harness import Bench
from stack import PARTNER_HOOK_SECRET


def _stored(issue_key: str) -> int:
    from webhooks.models import WebhookDelivery

    return WebhookDelivery.objects.filter(issue_key=issue_key, source="partner").count()


def _baseline_stored() -> int:
    from webhooks.models import WebhookDelivery

    return WebhookDelivery.objects.filter(dedupe_key__startswith="baseline:").count()


def rounds(
    bench: Bench, body: bytes, headers: dict, seconds: float, n: int, issue_key: str
) -> list[dict]:
    """`n` alternating rounds, so that the machine's drift hits both sides alike; every other
    round runs the baseline first, so that neither side always goes first."""
    baseline_url = f"{bench.stack.base}/bench/baseline/"
    out = []
    for i in range(n):
        measured = {}
        for side in ("endpoint", "baseline") if i % 2 == 0 else ("baseline", "endpoint"):
            before = _stored(issue_key) if side == "endpoint" else _baseline_stored()
            url = bench.incoming_url() if side == "endpoint" else baseline_url
            run = load.wrk(url, body, headers, seconds)
            after = _stored(issue_key) if side == "endpoint" else _baseline_stored()
            measured[side] = {**run, "stored": after - before}
        real, baseline = measured["endpoint"], measured["baseline"]
        out.append(
            {
                "endpoint_rps": real["rps"],
                "baseline_rps": baseline["rps"],
                "ratio": round(real["rps"] / baseline["rps"], 3),
                "endpoint_non_2xx": real["non_2xx"],
                # wrk counts the requests answered; the rows are the deliveries stored.
                "endpoint_requests": real["requests"],
                "endpoint_stored": real["stored"],
                "baseline_requests": baseline["requests"],
                "baseline_stored": baseline["stored"],
            }
        )
    return out


def ingest(bench: Bench, seconds: float, rate_seconds: float) -> dict:
    """At least 5 rounds of `seconds` each (3 in a quick run, under 5 s a round), or
    `bench.ingest_rounds` if more."""
    from webhooks.models import WebhookDelivery

    n = max(bench.ingest_rounds, 5 if seconds >= 5 else 3)
    issue_id, issue_key = bench.linked_issues(1)[0]
    body = json.dumps(load.partner_payload(issue_id, issue_key, "Load target 0")).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Hub-Signature": load.signed(body, PARTNER_HOOK_SECRET),
    }
    bench.settle()
    bench.stack.worker.suspend()  # measure the endpoint, not the sync
    try:
        measured = rounds(bench, body, headers, seconds, n, issue_key)

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
    ratios = [r["ratio"] for r in measured]
    return {
        # The figures are the medians of the rounds; the spread is their range.
        "endpoint_rps": statistics.median(r["endpoint_rps"] for r in measured),
        "baseline_rps": statistics.median(r["baseline_rps"] for r in measured),
        "ratio": statistics.median(ratios),
        "ratio_median": statistics.median(ratios),
        "ratio_rounds": ratios,
        "ratio_spread": [min(ratios), max(ratios)],
        "endpoint_rps_rounds": [r["endpoint_rps"] for r in measured],
        "baseline_rps_rounds": [r["baseline_rps"] for r in measured],
        "endpoint_non_2xx": sum(r["endpoint_non_2xx"] for r in measured),
        # Every request a new delivery: rows stored / requests answered, over all rounds.
        "endpoint_stored_share": round(
            sum(r["endpoint_stored"] for r in measured)
            / max(1, sum(r["endpoint_requests"] for r in measured)),
            3,
        ),
        "rounds": measured,
        "at_200_per_s": {"endpoint": fixed, "baseline": fixed_baseline},
    }
