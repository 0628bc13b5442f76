"""The Celery application. Configuration comes from Django settings (CELERY_ namespace)."""

import os
import threading
import time
from pathlib import Path

from celery import Celery, bootsteps
from celery.signals import (
    after_setup_logger,
    task_postrun,
    task_prerun,
    worker_init,
    worker_ready,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "syncapp.settings")

app = Celery("syncapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class OneRedisClient(bootsteps.StartStopStep):
    """The consumer's channel keeps one `redis.Redis` (`webhooks.publish.reuse_redis_client`):
    kombu's Redis channel builds a new one for the bookkeeping of every message the worker
    takes and acknowledges (its unacked index), which cost more than those commands. Started
    again with the task consumer after a reconnection (a new channel)."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def start(self, c) -> None:
        from webhooks.publish import reuse_redis_client

        reuse_redis_client(c.task_consumer.channel)


app.steps["consumer"].add(OneRedisClient)


def ensure_broker_folders() -> None:
    """The filesystem transport needs its folders before the first message."""
    options = app.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)


@app.on_after_configure.connect
def _on_after_configure(sender, **kwargs) -> None:
    ensure_broker_folders()


@after_setup_logger.connect
def _after_setup_logger(logger, **kwargs) -> None:
    ensure_broker_folders()


_tasks = threading.local()  # when this thread's last task ended (time.monotonic())


@task_prerun.connect
def _before_task(sender=None, **kwargs) -> None:
    """Before a task, what Django does before a request: close the connections CONN_MAX_AGE
    retired or an error left unusable, and keep the rest (settings.CELERY_DB_REUSE_MAX keeps
    Celery's fixup from closing them all). Not in eager mode: the caller's connection.

    Django would also check each kept connection with a `SELECT 1` before its first query
    (CONN_HEALTH_CHECKS), a round trip per task. A task declared with `db_health_check=False`
    (the delivery task, whose first statement reconnects once by itself if the connection
    broke: `webhooks.tasks._claim`) skips it while this thread's last task ended less than
    DB_HEALTH_CHECK_IDLE_SECONDS ago; every other task, and any task after an idle spell,
    is checked as Django would."""
    if _eager(sender):
        return
    from django.conf import settings
    from django.db import close_old_connections, connections

    close_old_connections()
    if getattr(sender, "db_health_check", True):
        return
    ended = getattr(_tasks, "ended", None)
    if ended is not None and time.monotonic() - ended < settings.DB_HEALTH_CHECK_IDLE_SECONDS:
        for conn in connections.all(initialized_only=True):
            if conn.connection is not None:
                conn.health_check_done = True


@task_postrun.connect
def _after_task(sender=None, **kwargs) -> None:
    """After a task, as after a request: `_before_task`'s closing of retired connections."""
    if _eager(sender):
        return
    from django.db import close_old_connections

    close_old_connections()
    _tasks.ended = time.monotonic()


def _eager(sender) -> bool:
    return getattr(getattr(sender, "request", None), "is_eager", False)


@worker_init.connect
def _refuse_development_keys(**kwargs) -> None:
    """The worker runs no system checks: refuse to start on a public development key."""
    from django.core.exceptions import ImproperlyConfigured

    from ops.checks import refuse_development_keys

    try:
        refuse_development_keys()
    except ImproperlyConfigured as exc:
        # Celery logs and swallows exceptions of signal handlers; SystemExit is not swallowed.
        raise SystemExit(f"celery worker: {exc}") from None


@worker_ready.connect
def _learn_sync_account(**kwargs) -> None:
    """Our site's sync account, learnt once (kept in the shared cache for every process),
    off the worker's main thread so a slow Jira never holds the worker back."""
    from sync.sites import learn_local_sync_account

    threading.Thread(
        target=learn_local_sync_account, name="learn-sync-account", daemon=True
    ).start()


@worker_ready.connect
def _start_pending_relay(**kwargs) -> None:
    """The relay of pending deliveries (PostgreSQL, SYNC_RELAY): a thread of the worker's main
    process; one worker per database sends, the others stand by (webhooks/pending_relay.py)."""
    from webhooks.pending_relay import relay_start

    relay_start()
