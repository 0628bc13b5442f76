"""Sending a stored delivery to a worker cheaply: the message `apply_async` would send
(`webhooks.process_delivery`, the delivery's id, its tenant's queue), built by Celery's own
`as_task_v2` and published by a producer from Celery's pool straight to the queue.

`apply_async` spends as much again on routing, signals and its retry wrapper for every
delivery (bench/results: the publish was 27% of an ingest request). The worker sees the same
message: same task name, arguments and queue, so the task's own options (acks_late) apply.
A failed publish raises; the caller keeps the row for the sweeper.

kombu's Redis channel also builds a new `redis.Redis` for every message it puts, which costs
more than the LPUSH; the channels of the pool this module publishes with reuse one each
(`reuse_redis_client`), as does the worker's consumer for the bookkeeping of each message it
takes and acknowledges (`syncapp.celery`).
"""

from __future__ import annotations

from contextlib import contextmanager

from celery import current_app
from kombu.utils.uuid import uuid

TASK_NAME = "webhooks.process_delivery"


def delivery_publish(delivery_id: int, *, queue: str) -> None:
    """Publish the task message for `delivery_id` on `queue` (a name in CELERY_TASK_QUEUES)."""
    app = current_app
    task_id = uuid()
    headers, properties, body, _ = app.amqp.as_task_v2(
        task_id, TASK_NAME, args=(delivery_id,), ignore_result=True
    )
    with app.producer_pool.acquire(block=True) as producer:
        reuse_redis_client(producer.channel)
        # The anonymous exchange with the queue's name: what Celery does for a direct queue.
        producer.publish(
            body,
            exchange="",
            routing_key=queue,
            serializer="json",
            headers=headers,
            delivery_mode=2,  # persistent, Celery's default
            # Celery's publish policy (settings): one quick retry, then the sweeper's turn.
            retry=True,
            retry_policy=app.conf.task_publish_retry_policy,
            **properties,
        )


def reuse_redis_client(channel) -> None:
    """Give a kombu Redis channel one client for what it would build a client for each time
    (a put; the unacked index of a message taken, then acknowledged). A `redis.Redis` is safe
    to share: it takes a connection from the channel's pool per command. Other transports:
    as is."""
    if getattr(channel, "_reused_client", None) is not None:
        return
    if not (hasattr(channel, "conn_or_acquire") and hasattr(channel, "_create_client")):
        return
    client = channel._create_client()

    @contextmanager
    def conn_or_acquire(given=None):
        yield given or client

    channel.conn_or_acquire = conn_or_acquire
    channel._reused_client = client
