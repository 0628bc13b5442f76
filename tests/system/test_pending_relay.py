"""The relay of pending deliveries (SYNC_RELAY, on with PostgreSQL): the web request only stores
a delivery; the trigger's notification wakes the worker's relay thread, which sends it. One
relay per database sends (an advisory lock); the sweeper covers what no relay heard."""

from __future__ import annotations

import re
import time

import pytest
import redis
from django.conf import settings
from django.db import connection

from webhooks.models import WebhookDelivery

from .conftest import WEBHOOK_SECRET, register_webhook, relay_lock_held, wait_until
from .test_push import local_create, make_org, partner_issues

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sims(sync_env, local_sim, partner_cloud):
    """Our Jira's webhook to the live server; a partner organization on the Cloud simulator."""
    for sim in (local_sim, partner_cloud):
        sim.reset()
    url = f"{sync_env.url}/webhooks/local/?secret={WEBHOOK_SECRET}"
    register_webhook(local_sim, url, 'project = "LOC"')
    return local_sim, partner_cloud, make_org(partner_cloud)


def relay_backends() -> list[int]:
    """The relay connections holding the lock (the one that sends)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = 'sync-relay'"
            " AND a.datname = current_database()"
        )
        return [row[0] for row in cursor.fetchall()]


def queued(delivery_id: int) -> int:
    """Messages for `delivery_id` waiting in the worker queues (Redis lists)."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    needle = f'"argsrepr": "({delivery_id},)"'.encode()
    return sum(
        needle in message
        for q in settings.CELERY_TASK_QUEUES
        for message in client.lrange(q.name, 0, -1)
    )


def seen(worker, pattern: str) -> int:
    return len(re.findall(pattern, worker.output))


def synced(partner, summary: str, timeout: float = 30) -> dict:
    return wait_until(
        lambda: [i for i in partner_issues(partner) if i["fields"]["summary"] == summary],
        timeout=timeout,
    )[0]


def test_a_stored_delivery_is_sent_by_the_relay_not_by_the_request(sims, worker):
    local, partner, _ = sims
    wait_until(relay_backends)
    worker.suspend()  # the relay thread too: nothing leaves the database meanwhile
    try:
        local_create(local, "Sent by the relay")
        row = wait_until(lambda: WebhookDelivery.objects.filter(status="pending").first())
        time.sleep(0.5)  # a publish from the request would be in Redis by now
        assert queued(row.pk) == 0
    finally:
        worker.resume()
    # The notification waited in PostgreSQL; the relay sends it once it runs again.
    synced(partner, "Sent by the relay")


def test_a_delivery_no_longer_pending_when_the_relay_wakes_is_not_sent(sims, worker):
    local, partner, _ = sims
    wait_until(relay_backends)
    skipped_before = seen(worker, "relay.skipped")
    worker.suspend()
    try:
        local_create(local, "Marked ignored meanwhile")
        row = wait_until(lambda: WebhookDelivery.objects.filter(status="pending").first())
        WebhookDelivery.objects.filter(pk=row.pk).update(status="ignored")
    finally:
        worker.resume()
    wait_until(lambda: seen(worker, "relay.skipped") > skipped_before)
    local_create(local, "After the resume")
    synced(partner, "After the resume")
    assert [i["fields"]["summary"] for i in partner_issues(partner)] == ["After the resume"]
    assert WebhookDelivery.objects.get(pk=row.pk).status == "ignored"


def test_the_sweeper_sends_what_no_relay_heard_and_a_relay_takes_over_a_dead_holder(sims, worker):
    local, partner, _ = sims
    wait_until(relay_backends)
    standby_before = seen(worker, "relay.standby")
    leading_before = seen(worker, "relay.leading")
    # The relay's connection dies; another holder (this test) takes the lock first.
    with relay_lock_held():
        wait_until(lambda: seen(worker, "relay.standby") > standby_before)
        # Nobody listens: the notification is lost, the sweeper sends the row.
        local_create(local, "Sent by the sweeper")
        synced(partner, "Sent by the sweeper")
    # The holder is gone: the relay on standby takes over.
    wait_until(lambda: seen(worker, "relay.leading") > leading_before)
    local_create(local, "After the takeover")
    synced(partner, "After the takeover")
