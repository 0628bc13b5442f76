"""A worker's database connection between tasks: kept, and checked with Django's health
check (`SELECT 1`) only when it was idle, not before every task (`syncapp.celery`)."""

from __future__ import annotations

import psycopg
import pytest
from django.db import DatabaseError, connection

from organizations.models import Organization
from syncapp import celery as worker

pytestmark = pytest.mark.django_db(transaction=True)


class _Request:
    is_eager = False


class _Task:
    """A task as the worker's signals see it."""

    request = _Request()


def task(body=lambda: Organization.objects.count()):
    worker._before_task(sender=_Task())
    try:
        return body()
    finally:
        worker._after_task(sender=_Task())


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


def test_a_connection_idle_longer_than_the_setting_is_checked(checks, settings):
    settings.DB_HEALTH_CHECK_IDLE_SECONDS = 0
    task()
    checks.clear()
    for _ in range(3):
        task()
    assert len(checks) == 3


def test_a_connection_that_broke_between_tasks_fails_one_task_and_is_replaced(settings):
    settings.DB_HEALTH_CHECK_IDLE_SECONDS = 60
    task()
    pid = task(lambda: connection.connection.info.backend_pid)
    params = connection.get_connection_params()
    with psycopg.connect(
        **{k: v for k, v in params.items() if k != "cursor_factory"}, autocommit=True
    ) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])

    with pytest.raises(DatabaseError):
        task()  # not checked (used a moment ago): this task's query finds it broken

    assert task() == Organization.objects.count()  # closed after the failure: a new one
    assert task(lambda: connection.connection.info.backend_pid) != pid
