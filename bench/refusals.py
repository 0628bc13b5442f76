"""Refusals: what an unauthenticated delivery costs the web service, next to an accepted one.

Runs last, on the started stack, so the other scenarios' figures are untouched. One client,
loopback, a connection per request (a server may close a connection whose body it did not
read, so none is reused); each case's median request time per round, in
alternating rounds (the machine's drift hits every case alike), then the median of the rounds.
Wrong-secret requests go to a pool of organizations of their own, each getting fewer failures
than the throttle allows, so they measure the refusal and not the throttle (which has a row
of its own).
"""

from __future__ import annotations

import json
import statistics
import time
import uuid

import load
import requests
from harness import Bench
from stack import PARTNER_HOOK_SECRET

PER_ROUND = 15  # requests per case and round


def _timed(session: requests.Session, url: str, body: bytes, headers: dict) -> tuple[float, int]:
    start = time.perf_counter()
    try:
        response = session.post(
            url, data=body, headers={**headers, "Connection": "close"}, timeout=60
        )
    except requests.ConnectionError:
        # Answered and closed before the whole body was sent (the server did not read it).
        return time.perf_counter() - start, 0
    return time.perf_counter() - start, response.status_code


def refusals(bench: Bench, rounds: int) -> dict:
    from django.conf import settings

    from organizations import services
    from webhooks.models import WebhookDelivery

    base = bench.stack.base
    issue_id, issue_key = bench.linked_issues(1)[0]
    small = json.dumps(load.partner_payload(issue_id, issue_key, "Refusal target")).encode()
    big = small[:-1] + b', "pad": "' + b"x" * (1_000_000 - len(small) - 12) + b'"}'
    assert len(big) <= settings.WEBHOOK_MAX_BODY_BYTES
    limit = max(1, settings.WEBHOOK_AUTH_FAILURE_LIMIT - 1)
    pool = [
        services.organization_create(
            name=f"Refusal target {i}",
            public_id=f"refusal-{uuid.uuid4().hex[:10]}",
            sync_direction="bidirectional",
        )
        for i in range(-(-2 * rounds * PER_ROUND // limit))
    ]
    failures = {org.public_id: 0 for org in pool}

    def wrong_secret_url() -> str:
        org_id = next(k for k, v in failures.items() if v < limit)
        failures[org_id] += 1
        return f"{base}/webhooks/incoming/{org_id}/?secret=wrong-{uuid.uuid4().hex}"

    def accepted(session):
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature": load.signed(small, PARTNER_HOOK_SECRET),
            "X-Atlassian-Webhook-Identifier": f"refusal-bench-{uuid.uuid4().hex}",
        }
        return _timed(session, bench.incoming_url(), small, headers)

    def refused(body):
        def send(session):
            headers = {"Content-Type": "application/json"}
            return _timed(session, wrong_secret_url(), body, headers)

        return send

    # Unknown ids in a pool too, so both kinds count failures in the throttle alike.
    unknown_failures = {f"org-{uuid.uuid4().hex[:12]}": 0 for _ in pool}

    def unknown(session):
        org_id = next(k for k, v in unknown_failures.items() if v < limit)
        unknown_failures[org_id] += 1
        url = f"{base}/webhooks/incoming/{org_id}/?secret=wrong-{uuid.uuid4().hex}"
        return _timed(session, url, small, {"Content-Type": "application/json"})

    throttled_org = pool[-1].public_id

    def throttled(session):
        url = f"{base}/webhooks/incoming/{throttled_org}/?secret=wrong"
        return _timed(session, url, big, {"Content-Type": "application/json"})

    cases = {
        "accepted": (accepted, {202}),
        "wrong_secret_small": (refused(small), {401}),
        "wrong_secret_1mb": (refused(big), {401}),
        "unknown_org_small": (unknown, {401}),
    }
    bench.settle()
    bench.stack.worker.suspend()  # the endpoint's cost, not the sync's
    session = requests.Session()
    per_round: dict[str, list[float]] = {name: [] for name in cases}
    unexpected: dict[str, int] = {name: 0 for name in cases}
    try:
        for _ in range(3):  # warm the connection and the web processes
            accepted(session)
        for _ in range(rounds):
            for name, (send, expected) in cases.items():
                times = []
                for _ in range(PER_ROUND):
                    seconds, status = send(session)
                    times.append(seconds)
                    unexpected[name] += status not in expected
                per_round[name].append(statistics.median(times) * 1000)
        # Exhaust one organization's allowance, then time the 429 (1 MB bodies, unread).
        for _ in range(settings.WEBHOOK_AUTH_FAILURE_LIMIT + 1):
            throttled(session)
        throttle_times = [throttled(session) for _ in range(PER_ROUND)]
    finally:
        # The accepted deliveries were for the endpoint only: drop them before the worker wakes.
        WebhookDelivery.objects.filter(
            status="pending", dedupe_key__contains=":refusal-bench-"
        ).update(status="ignored")
        bench.stack.drop_queued()  # every delivery queue, not only Celery's default
        bench.stack.worker.resume()
    medians = {name: round(statistics.median(values), 3) for name, values in per_round.items()}
    medians["throttled_1mb"] = round(statistics.median(t for t, _ in throttle_times) * 1000, 3)
    unexpected["throttled_1mb"] = sum(status != 429 for _, status in throttle_times)
    accepted_ms = medians["accepted"]
    return {
        "rounds": rounds,
        "per_round_requests": PER_ROUND,
        "median_ms": medians,
        "ratio_to_accepted": {
            name: round(value / accepted_ms, 3) for name, value in medians.items()
        },
        "round_medians_ms": {k: [round(v, 3) for v in vs] for k, vs in per_round.items()},
        "unexpected_status": unexpected,
        "unknown_vs_wrong_secret": round(
            medians["unknown_org_small"] / medians["wrong_secret_small"], 3
        ),
    }
