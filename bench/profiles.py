"""Profiles: pyinstrument, in this process, over the two hot paths: the incoming endpoint
(Django's test client, same settings) and `delivery_process` for the deliveries just stored."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import load
from harness import Bench
from stack import PARTNER_HOOK_SECRET


def post_in_process(client, url: str, count: int, targets) -> None:
    """`count` signed partner deliveries to the incoming endpoint, through the test client."""
    for n in range(count):
        issue_id, issue_key = targets[n % len(targets)]
        body = json.dumps(load.partner_payload(issue_id, issue_key, f"profile {n}"))
        client.post(
            url,
            data=body,
            content_type="application/json",
            HTTP_X_ATLASSIAN_WEBHOOK_IDENTIFIER=f"profile-{uuid.uuid4().hex}",
            HTTP_X_HUB_SIGNATURE=load.signed(body.encode(), PARTNER_HOOK_SECRET),
        )


def process_pending(first_pk: int) -> None:
    """The task's body, here, for every pending delivery after `first_pk`: the claim (which
    reads the organization's stamp), the sync, the outcome."""
    from webhooks.models import WebhookDelivery
    from webhooks.tasks import claim, delivery_process

    pending = WebhookDelivery.objects.filter(pk__gt=first_pk, status="pending")
    for pk in pending.values_list("pk", flat=True):
        delivery = claim(pk)
        if delivery is None:
            continue
        outcome = delivery_process(delivery)
        delivery.status, delivery.calls = outcome.status, delivery.calls + outcome.calls
        delivery.save(update_fields=["status", "calls"])


def profile(bench: Bench, count: int, targets, results: Path) -> dict:
    """Writes `results/profile-ingest.txt` and `results/profile-sync.txt`."""
    from django.test import Client
    from pyinstrument import Profiler

    bench.settle()
    client = Client(SERVER_NAME="localhost")
    url = bench.incoming_url().replace(bench.stack.base, "")
    first = bench.last_delivery_pk()
    bench.stack.worker.suspend()
    try:
        ingest = Profiler(interval=0.0005)
        ingest.start()
        post_in_process(client, url, count, targets)
        ingest.stop()
        sync = Profiler(interval=0.0005)
        sync.start()
        process_pending(first)
        sync.stop()
    finally:
        bench.stack.drop_queued()
        bench.stack.worker.resume()
    out = {}
    for name, profiler in (("ingest", ingest), ("sync", sync)):
        text = profiler.output_text(unicode=False, color=False, show_all=False)
        (results / f"profile-{name}.txt").write_text(text)
        out[name] = {"file": f"bench/results/profile-{name}.txt", "requests": count}
    return out
