"""A worker keeps its database connection from task to task (CONN_MAX_AGE), as a web thread
does from request to request: Celery's Django fixup would otherwise close it around every
task, and each task would pay for a new PostgreSQL backend."""

from __future__ import annotations

import pytest
from django.db import connection

from webhooks.models import WebhookDelivery

from .conftest import wait_until
from .test_pending_relay import sims, synced  # noqa: F401 - the fixture
from .test_push import local_create

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


def sessions_opened() -> int:
    """Connections ever opened to the test database (PostgreSQL's statistics, read afresh)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def test_the_worker_reuses_its_database_connection_across_tasks(sims, worker):  # noqa: F811
    local, partner, _ = sims
    local_create(local, "Warm-up")  # the worker's processes connect once
    synced(partner, "Warm-up")
    before_deliveries = WebhookDelivery.objects.count()
    before = sessions_opened()
    summaries = [f"Issue {n}" for n in range(8)]
    for summary in summaries:
        local_create(local, summary)
    for summary in summaries:
        synced(partner, summary)
    # Every delivery of these changes (each create and its echo) is finished.
    wait_until(
        lambda: not WebhookDelivery.objects.filter(status__in=["pending", "processing"]).exists()
    )
    tasks = WebhookDelivery.objects.count() - before_deliveries
    opened = sessions_opened() - before
    # A connection per task (two, closed before and after) was the fixup's way.
    assert tasks >= len(summaries)
    assert opened < tasks, f"{opened} connections opened for {tasks} deliveries"
