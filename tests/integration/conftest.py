"""Fixtures of the integration tests."""

import pytest
import redis
from django.conf import settings as django_settings

from .test_loop_prevention import World


@pytest.fixture
def world(settings):
    """Two simulated sites and one issue pair, linked, with every echo drained."""
    w = World(settings)
    w.link_pair()
    yield w
    w.close()


@pytest.fixture
def names_world(settings):
    """A Cloud local site and a Data Center partner with their own component and version ids
    (components and versions mapped), one issue pair linked."""
    from .names_world import NamesWorld

    w = NamesWorld(settings)
    w.link_pair()
    yield w
    w.close()


@pytest.fixture(autouse=True)
def _published_from_the_request(settings):
    """No worker runs here: a stored delivery is published by the request after its commit
    (SYNC_RELAY off), the path these tests watch. The relay is the system tests' (a worker's
    thread: tests/system/test_pending_relay.py)."""
    settings.SYNC_RELAY = False


@pytest.fixture
def broker():
    """The test broker (Redis), its delivery queues emptied before and after."""
    client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    names = [q.name for q in django_settings.CELERY_TASK_QUEUES]
    client.delete(*names)
    yield client
    client.delete(*names)


def queued(client: redis.Redis) -> dict[str, int]:
    """The messages waiting in each delivery queue (the non-empty ones)."""
    lengths = {q.name: client.llen(q.name) for q in django_settings.CELERY_TASK_QUEUES}
    return {name: n for name, n in lengths.items() if n}
