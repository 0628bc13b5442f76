"""With the relay in use (SYNC_RELAY, PostgreSQL), the web request leaves a stored delivery
to the relay only while a relay holds its lock; with none (no worker runs one), it
publishes the delivery itself, so the delivery does not wait for the sweeper."""

from __future__ import annotations

import secrets
import time

import psycopg
import pytest
from django.db import connection

from webhooks import pending_relay
from webhooks.tasks import delivery_queue

from .conftest import queued
from .test_fair_queues import partner
from .test_incoming_endpoint import fixture_body, post

pytestmark = pytest.mark.django_db


@pytest.fixture
def relay_on(settings, monkeypatch):
    """The relay in use, on a lock key of this test's own (the system tests' workers run
    relays on the same database), with nothing seen of it yet."""
    settings.SYNC_RELAY = True
    settings.CELERY_TASK_ALWAYS_EAGER = False
    key = secrets.randbits(62)
    monkeypatch.setattr(pending_relay, "LOCK_KEY", key)
    monkeypatch.setattr(pending_relay, "_lead_seen", None)
    return key


@pytest.fixture
def relay_leading(relay_on):
    """A connection holding the relay lock, as a leading relay does."""
    holder = psycopg.connect(
        **pending_relay.relay_conninfo(connection.settings_dict), autocommit=True
    )
    holder.execute("SELECT pg_advisory_lock(%s)", (relay_on,))
    yield holder
    holder.close()


def store(client, org, n: int, capture) -> None:
    with capture(execute=True):
        response = post(client, org, fixture_body(), **{"X-Atlassian-Webhook-Identifier": f"d{n}"})
    assert response.status_code == 202


def test_with_no_relay_leading_the_request_publishes_the_delivery(
    client, broker, relay_on, django_capture_on_commit_callbacks
):
    org = partner("A")
    store(client, org, 1, django_capture_on_commit_callbacks)
    assert queued(broker) == {delivery_queue(org.pk): 1}


def test_with_a_relay_leading_the_request_leaves_the_delivery_to_it(
    client, broker, relay_leading, django_capture_on_commit_callbacks
):
    org = partner("A")
    store(client, org, 1, django_capture_on_commit_callbacks)
    assert queued(broker) == {}


def test_a_relay_gone_is_noticed_once_the_last_check_is_old_enough(
    client, broker, relay_leading, django_capture_on_commit_callbacks
):
    org = partner("A")
    store(client, org, 1, django_capture_on_commit_callbacks)
    relay_leading.close()  # the relay's worker stopped
    store(client, org, 2, django_capture_on_commit_callbacks)  # within the check period
    assert queued(broker) == {}
    seen_at, leading = pending_relay._lead_seen
    assert leading
    pending_relay._lead_seen = (time.monotonic() - pending_relay.LEAD_CHECK_SECONDS, leading)
    store(client, org, 3, django_capture_on_commit_callbacks)
    assert queued(broker) == {delivery_queue(org.pk): 1}
