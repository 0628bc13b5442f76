"""Fair queueing between tenants: each organization's deliveries (and our own Jira's) go to
their tenant's queue, the sweeper keeps them there, and a consumer of every queue takes the
tenants in turn on the Redis and on the filesystem broker."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import redis
from django.conf import settings as django_settings
from django.utils import timezone
from kombu import Connection, Consumer, Producer, Queue

from organizations import services
from webhooks.models import DeliverySource, WebhookDelivery
from webhooks.tasks import delivery_queue, sweep_deliveries_task

from .conftest import queued
from .test_incoming_endpoint import fixture_body, post

pytestmark = pytest.mark.django_db


def partner(name: str):
    org = services.organization_create(name=name, sync_direction="bidirectional")
    services.project_mapping_create(
        organization=org, local_project_key="LOC", remote_project_key="REMOTE_PROJ"
    )
    return org


def test_each_organizations_deliveries_are_queued_on_its_own_bucket(
    client, broker, django_capture_on_commit_callbacks
):
    a, b = partner("A"), partner("B")
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(3):
            response = post(
                client, a, fixture_body(), **{"X-Atlassian-Webhook-Identifier": f"a-{n}"}
            )
            assert response.status_code == 202
        response = post(client, b, fixture_body(), **{"X-Atlassian-Webhook-Identifier": "b-1"})
        assert response.status_code == 202
    assert delivery_queue(a.pk) != delivery_queue(b.pk)
    assert queued(broker) == {delivery_queue(a.pk): 3, delivery_queue(b.pk): 1}


def test_with_fairness_off_every_delivery_shares_one_fifo(
    client, broker, settings, django_capture_on_commit_callbacks
):
    settings.SYNC_FAIR_QUEUES = False
    a, b = partner("A"), partner("B")
    with django_capture_on_commit_callbacks(execute=True):
        post(client, a, fixture_body(), **{"X-Atlassian-Webhook-Identifier": "a-1"})
        post(client, b, fixture_body(), **{"X-Atlassian-Webhook-Identifier": "b-1"})
    assert queued(broker) == {"celery": 2}


def test_the_sweeper_resends_each_left_behind_delivery_to_its_tenants_queue(broker):
    org = partner("A")
    old = timezone.now() - timedelta(hours=1)
    for n, (source, organization) in enumerate(
        [(DeliverySource.PARTNER, org), (DeliverySource.PARTNER, org), (DeliverySource.LOCAL, None)]
    ):
        delivery = WebhookDelivery.objects.create(
            source=source, organization=organization, dedupe_key=f"k{n}", body="{}"
        )
        WebhookDelivery.objects.filter(pk=delivery.pk).update(updated_at=old)
    assert sweep_deliveries_task() == 3
    assert queued(broker) == {delivery_queue(org.pk): 2, "sync.local": 1}
    assert delivery_queue(None) == "sync.local"


def test_organizations_take_distinct_buckets_until_there_are_more_than_the_buckets(settings):
    settings.SYNC_QUEUE_BUCKETS = 4
    assert len({delivery_queue(pk) for pk in range(100, 104)}) == 4
    names = {q.name for q in django_settings.CELERY_TASK_QUEUES}
    assert {delivery_queue(pk) for pk in range(1000)} <= names


def take_in_order(connection: Connection, queues: list[Queue], flood: int) -> list[str]:
    """Publish `flood` messages on the first queue, then one on the second; consume them
    one at a time from every queue, as a worker with prefetch 1 does."""
    with connection.channel() as channel:
        producer = Producer(channel)
        for n in range(flood):
            producer.publish({"n": n}, routing_key=queues[1].name, declare=[queues[1]])
        producer.publish({"n": "B"}, routing_key=queues[2].name, declare=[queues[2]])
    order: list[str] = []

    def take(body, message):
        order.append(str(body["n"]))
        message.ack()

    with connection.channel() as channel:
        channel.basic_qos(0, 1, False)
        with Consumer(channel, queues=queues, callbacks=[take], accept=["json"]):
            while len(order) < flood + 1:
                connection.drain_events(timeout=5)
    return order


def consumed_queues(prefix: str) -> list[Queue]:
    """The queues a worker consumes (settings), named apart for this test; the flooding
    tenant and the other one are the second and third."""
    names = [q.name for q in django_settings.CELERY_TASK_QUEUES]
    assert names[:2] == ["celery", "sync.local"]
    ordered = [names[0], delivery_queue(1), delivery_queue(2)] + names[1:]
    unique = list(dict.fromkeys(ordered))
    return [Queue(f"{prefix}{name}") for name in unique]


def test_a_consumer_of_every_queue_takes_tenants_in_turn_on_redis():
    prefix = f"fair-{uuid.uuid4().hex[:8]}-"
    queues = consumed_queues(prefix)
    with Connection(django_settings.CELERY_BROKER_URL) as connection:
        try:
            order = take_in_order(connection, queues, flood=30)
        finally:
            redis.Redis.from_url(django_settings.CELERY_BROKER_URL).delete(
                *[q.name for q in queues]
            )
    assert order.index("B") <= 2, order


def test_a_consumer_of_every_queue_takes_tenants_in_turn_on_the_filesystem_broker(tmp_path):
    folder = tmp_path / "queue"
    for sub in ("queue", "processed", "control"):
        (tmp_path / sub).mkdir()
    options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "processed_folder": str(tmp_path / "processed"),
        "control_folder": str(tmp_path / "control"),
        "store_processed": False,
        "polling_interval": 0.01,
    }
    with Connection("filesystem://", transport_options=options) as connection:
        order = take_in_order(connection, consumed_queues(""), flood=30)
    assert order.index("B") <= 2, order


def test_an_operators_retry_sends_a_delivery_back_to_its_tenants_queue(
    broker, django_capture_on_commit_callbacks
):
    from webhooks.services import delivery_retry

    org = partner("A")
    dead = WebhookDelivery.objects.create(
        source=DeliverySource.PARTNER, organization=org, dedupe_key="dead", body="{}", status="dead"
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert delivery_retry(deliveries=WebhookDelivery.objects.filter(pk=dead.pk)) == 1
    assert queued(broker) == {delivery_queue(org.pk): 1}


def test_a_retried_delivery_goes_back_to_the_queue_it_came_from(broker, settings):
    """Celery resends a retry to the queue the worker took the message from."""
    from celery.exceptions import Retry

    from webhooks.tasks import _failed, process_delivery_task

    settings.SYNC_RETRY_BASE_SECONDS = 0.01
    org = partner("A")
    row = WebhookDelivery.objects.create(
        source=DeliverySource.PARTNER, organization=org, dedupe_key="r", body="{}"
    )
    queue = delivery_queue(org.pk)
    # What a worker holds while it runs a message taken from the tenant's queue.
    process_delivery_task.push_request(
        id=str(uuid.uuid4()),
        args=[row.pk],
        kwargs={},
        retries=0,
        called_directly=False,
        delivery_info={"exchange": "", "routing_key": queue},
    )
    try:
        with pytest.raises(Retry):
            _failed(process_delivery_task, row, RuntimeError("network down"), calls=0)
    finally:
        process_delivery_task.pop_request()
    assert queued(broker) == {queue: 1}
    assert WebhookDelivery.objects.get(pk=row.pk).status == "failed"
