"""Real parts for system tests: Jira simulators over HTTP, the live web service, and real
Celery worker processes on Redis, all on the test database."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable

import pytest
import requests
from django.db import connection

from devtools.processes import worker_command
from jiraapi.events import WEBHOOK_EVENTS
from jirasim import JiraSim
from syncapp.celery import app as celery_app

from .helpers import REPO

LOCAL_USER = ("sync@local.example", "local-token")
PARTNER_USER = ("sync@partner.example", "partner-token")
WEBHOOK_SECRET = "local-webhook-secret-for-tests"
SIX_EVENTS = list(WEBHOOK_EVENTS)


def start_sim(flavor: str, project: str, user: tuple[str, str]) -> JiraSim:
    sim = JiraSim(
        flavor=flavor,
        projects=[project],
        users=[f"{user[0]}:{user[1]}", "alice@example.com:alice-token"],
        webhook_retry_base=0.2,
        webhook_workers=2,
    )
    sim.start()
    return sim


@pytest.fixture(scope="session")
def local_sim():
    sim = start_sim("cloud", "LOC:Local project", LOCAL_USER)
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def partner_cloud():
    sim = start_sim("cloud", "REM:Partner project", PARTNER_USER)
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def partner_dc():
    sim = start_sim("datacenter", "REM:Partner project", PARTNER_USER)
    yield sim
    sim.stop()


def sim_call(sim: JiraSim, method: str, path: str, **kwargs) -> requests.Response:
    kwargs.setdefault("auth", sim.auth)
    kwargs.setdefault("timeout", 10)
    return requests.request(method, f"{sim.base_url}{path}", **kwargs)


def database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class Worker:
    """A real `celery worker` process (with embedded beat) on the test database."""

    def __init__(self, env: dict[str, str], *, beat: bool = True, concurrency: int = 2) -> None:
        args = [
            *worker_command(concurrency=concurrency),
            "--hostname",
            f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
        ]
        if beat:
            args += ["--beat", "--schedule", env["VAR_DIR"] + "/beat-schedule"]
        self.log_path = env["VAR_DIR"] + f"/worker-{time.monotonic_ns()}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115
        self.popen = subprocess.Popen(  # noqa: S603
            args,
            cwd=REPO,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if " ready." in self.output():
                return
            if self.popen.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"worker did not start:\n{self.output()[-3000:]}")

    def output(self) -> str:
        with open(self.log_path) as f:
            return f.read()

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once (no clean shutdown)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)
        self.log.close()

    def replace_with(self, other: Worker) -> None:
        """Become `other` (a restarted worker), so the session's fixture stays usable."""
        self.__dict__.update(other.__dict__)

    def stop(self) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
            except ProcessLookupError:
                pass
        self.log.close()


@pytest.fixture(scope="session")
def worker_env(local_sim, django_db_setup, django_db_blocker, tmp_path_factory) -> dict:
    with django_db_blocker.unblock():
        db_url = database_url()
    var_dir = tmp_path_factory.mktemp("worker")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        DATABASE_URL=db_url,
        CELERY_BROKER_URL=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15"),
        VAR_DIR=str(var_dir),
        LOCAL_JIRA_URL=local_sim.base_url,
        LOCAL_JIRA_FLAVOR="cloud",
        LOCAL_JIRA_USER=LOCAL_USER[0],
        LOCAL_JIRA_TOKEN=LOCAL_USER[1],
        LOCAL_WEBHOOK_SECRET=WEBHOOK_SECRET,
        SYNC_RETRY_BASE_SECONDS="0.3",
        SYNC_RETRY_MAX_SECONDS="5",
        SYNC_SWEEP_SECONDS="1",
        SYNC_PENDING_STALE_SECONDS="3",
        SYNC_PROCESSING_STALE_SECONDS="4",
        SYNC_LEASE_SECONDS="4",
        SYNC_CREATE_SETTLE_SECONDS="1",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture(scope="session")
def worker(worker_env):
    process = Worker(worker_env)
    yield process
    process.stop()


@pytest.fixture
def sync_env(settings, local_sim, live_server, worker, worker_env):
    """The web service (live server) and the worker see the same local Jira and secrets."""
    settings.LOCAL_JIRA_URL = local_sim.base_url
    settings.LOCAL_JIRA_USER, settings.LOCAL_JIRA_TOKEN = LOCAL_USER
    settings.LOCAL_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.PUBLIC_BASE_URL = live_server.url
    celery_app.control.purge()
    return live_server


def register_webhook(sim: JiraSim, url: str, jql: str, secret: str | None = None) -> dict:
    body = {
        "name": "jira-sync",
        "url": url,
        "events": SIX_EVENTS,
        "filters": {"issue-related-events-section": jql},
        "excludeBody": False,
    }
    if secret:
        body["secret"] = secret
    response = sim_call(sim, "POST", "/rest/webhooks/1.0/webhook", json=body)
    assert response.status_code in (200, 201), response.text
    return response.json()


def wait_until(check: Callable[[], object], timeout: float = 20, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(
        f"condition not met within {timeout}s (last: {last!r}); deliveries: {_deliveries()}"
    )


def _deliveries() -> list:
    from webhooks.models import WebhookDelivery

    return list(
        WebhookDelivery.objects.order_by("pk").values_list(
            "source", "event_type", "issue_key", "status", "last_error"
        )
    )
