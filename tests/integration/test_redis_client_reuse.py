"""The worker's consumer channel and the publisher's keep one `redis.Redis` each
(`webhooks.publish.reuse_redis_client`), and kombu's bookkeeping of a message taken and then
acknowledged still happens, on the real broker."""

from __future__ import annotations

import uuid

import pytest
import redis
from django.conf import settings
from kombu import Connection, Exchange, Producer, Queue

from syncapp.celery import OneRedisClient, app
from webhooks.publish import reuse_redis_client

pytestmark = pytest.mark.skipif(
    not settings.CELERY_BROKER_URL.startswith("redis://"), reason="the Redis transport only"
)


def test_a_channel_keeps_one_client_and_its_unacked_bookkeeping_works():
    with Connection(settings.CELERY_BROKER_URL) as conn:
        channel = conn.channel()
        reuse_redis_client(channel)
        with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
            assert first is second
        queue = Queue(f"test-reuse-{uuid.uuid4().hex}", Exchange(""), channel=channel)
        queue.declare()
        try:
            Producer(channel).publish({"n": 1}, routing_key=queue.name, serializer="json")
            message = queue.get(no_ack=False)
            assert message is not None and message.payload == {"n": 1}
            broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
            tag = message.delivery_tag
            # Taken: in the unacked index (restored if this consumer died), until acked.
            assert broker.hexists(channel.unacked_key, tag)
            message.ack()
            assert not broker.hexists(channel.unacked_key, tag)
            assert queue.get(no_ack=False) is None
        finally:
            queue.delete()


def test_the_worker_consumer_keeps_one_client():
    assert OneRedisClient in app.steps["consumer"]
