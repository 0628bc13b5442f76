"""Fair queueing between organizations: one partner's flood does not hold back another's
change (a real worker on Redis, deliveries posted over HTTP)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from organizations import services as org_services
from webhooks.models import WebhookDelivery

from .conftest import PARTNER_USER, wait_until

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

FINAL = ("done", "echo", "ignored", "dead")


def partner_org(partner, name: str):
    org = org_services.organization_create(
        name=name,
        remote_base_url=partner.base_url,
        remote_flavor=partner.flavor,
        remote_user=PARTNER_USER[0],
        remote_token=PARTNER_USER[1],
        sync_direction="bidirectional",
    )
    org_services.project_mapping_create(
        organization=org, local_project_key="LOC", remote_project_key="REM"
    )
    return org


def post_update(org, n: int, tag: str) -> int:
    """A partner's `jira:issue_updated` for an issue its Jira no longer has (one read each)."""
    body = {
        "timestamp": int(time.time() * 1000),
        "webhookEvent": "jira:issue_updated",
        "user": {"accountId": "someone"},
        "issue": {
            "id": str(900000 + n),
            "key": f"REM-{900000 + n}",
            "fields": {"project": {"key": "REM"}, "summary": f"{tag} {n}"},
        },
        "changelog": {"id": str(n), "items": [{"field": "summary", "fieldId": "summary"}]},
    }
    response = requests.post(
        f"{org.incoming_webhook_url}?secret={org.incoming_secret}",
        data=json.dumps(body),
        headers={
            "Content-Type": "application/json",
            "X-Atlassian-Webhook-Identifier": f"{tag}-{n}",
        },
        timeout=30,
    )
    return response.status_code


def test_a_partners_flood_does_not_hold_back_another_partners_change(
    sync_env, partner_cloud, worker
):
    partner_cloud.reset()
    flooder, other = partner_org(partner_cloud, "Flooder"), partner_org(partner_cloud, "Other")
    flood = 120
    # The worker is paused while both partners deliver: A's flood is queued first, B's one
    # change after it, as when A's flood arrives just before B's change.
    worker.suspend()
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(lambda n: post_update(flooder, n, "flood"), range(flood)))
        assert statuses == [202] * flood
        assert post_update(other, flood + 1, "change") == 202
    finally:
        worker.resume()

    b_delivery = WebhookDelivery.objects.get(organization=other)
    a_deliveries = WebhookDelivery.objects.filter(organization=flooder)
    wait_until(
        lambda: WebhookDelivery.objects.filter(pk=b_delivery.pk, status__in=FINAL).exists(),
        timeout=60,
        interval=0.02,
    )
    still_queued = a_deliveries.exclude(status__in=FINAL).count()
    # B's change is taken in turn with A's, not after all of them.
    assert still_queued > flood // 2, f"B waited for A's flood: {still_queued} left of {flood}"

    wait_until(lambda: not a_deliveries.exclude(status__in=FINAL).exists(), timeout=120)
    b_done = WebhookDelivery.objects.get(pk=b_delivery.pk).updated_at
    after_b = a_deliveries.filter(updated_at__gt=b_done).count()
    assert after_b > flood // 2
