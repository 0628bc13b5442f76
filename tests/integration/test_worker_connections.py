"""A worker's database connection between tasks: kept, and checked with Django's health
check (`SELECT 1`) before a delivery task only when it was idle (`syncapp.celery`); the
delivery task's claim reconnects by itself if it broke meanwhile (`webhooks.tasks._claim`)."""

from __future__ import annotations

import psycopg
import pytest
from django.db import DatabaseError, connection

from organizations.models import Organization
from syncapp import celery as worker
from webhooks import tasks

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's backends"),
]


class _Request:
    is_eager = False


class _Task:
    """A task as the worker's signals see it: the delivery task's option by default."""

    request = _Request()
    db_health_check = False


class _CheckedTask(_Task):
    db_health_check = True


def task(body=lambda: Organization.objects.count(), sender=_Task):
    worker._before_task(sender=sender())
    try:
        return body()
    finally:
        worker._after_task(sender=sender())


@pytest.fixture
def checks(monkeypatch):
    """The health checks the connection runs (Django's `is_usable`, counted)."""
    made = []
    real = connection.is_usable

    def counted():
        made.append(1)
        return real()

    monkeypatch.setattr(connection, "is_usable", counted)
    return made


@pytest.fixture(autouse=True)
def _fresh_thread_state():
    vars(worker._tasks).clear()
    yield
    vars(worker._tasks).clear()


def test_a_connection_the_last_task_just_used_is_not_checked_again(checks, settings):
    settings.DB_HEALTH_CHECK_IDLE_SECONDS = 60
    assert connection.settings_dict["CONN_HEALTH_CHECKS"]
    task()
    checks.clear()
    for _ in range(3):
        task()
    assert checks == []


def test_other_tasks_are_checked_as_django_would(checks, settings):
    settings.DB_HEALTH_CHECK_IDLE_SECONDS = 60
    task(sender=_CheckedTask)
    checks.clear()
    for _ in range(3):
        task(sender=_CheckedTask)
    assert len(checks) == 3
    assert tasks.process_delivery_task.db_health_check is False  # the one that skips it


def test_a_connection_idle_longer_than_the_setting_is_checked(checks, settings):
    settings.DB_HEALTH_CHECK_IDLE_SECONDS = 0
    task()
    checks.clear()
    for _ in range(3):
        task()
    assert len(checks) == 3


def _break_the_connection() -> int:
    """End our connection's backend from another connection, as a restart of PostgreSQL
    would; returns its pid."""
    pid = connection.connection.info.backend_pid
    params = connection.get_connection_params()
    with psycopg.connect(
        **{k: v for k, v in params.items() if k != "cursor_factory"}, autocommit=True
    ) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    return pid


def test_a_delivery_task_whose_connection_broke_between_tasks_claims_on_a_new_one(settings):
    settings.DB_HEALTH_CHECK_IDLE_SECONDS = 60
    task()
    pid = task(_break_the_connection)

    # Not checked (used a moment ago): the claim finds it broken, and claims again on a new
    # connection (no delivery has this id: nothing to claim).
    assert task(lambda: tasks._claim(10**12)) is None
    assert task(lambda: connection.connection.info.backend_pid) != pid


def test_another_query_on_a_connection_that_broke_fails_and_it_is_replaced(settings):
    settings.DB_HEALTH_CHECK_IDLE_SECONDS = 60
    task()
    pid = task(_break_the_connection)

    with pytest.raises(DatabaseError):
        task()  # a body that is not the claim: fails, as without the skip after an error

    assert task() == Organization.objects.count()  # closed after the failure: a new one
    assert task(lambda: connection.connection.info.backend_pid) != pid
