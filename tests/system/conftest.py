"""Real parts for system tests: Jira simulators over HTTP, the live web service, and real
Celery worker processes on Redis, all on the test database."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import environ
import psycopg
import pytest
import requests
from django.db import connection

from devtools import jira_admin
from devtools.processes import worker_command
from devtools.supervisor import Process, Supervisor
from jirasim import JiraSim
from organizations import services as org_services
from syncapp.celery import app as celery_app
from webhooks.pending_relay import LOCK_KEY, relay_conninfo

from .helpers import FAST_TIMINGS

LOCAL_USER = ("sync@local.example", "local-token")
PARTNER_USER = ("sync@partner.example", "partner-token")
WEBHOOK_SECRET = "local-webhook-secret-for-tests"


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


@pytest.fixture(scope="session")
def processes():
    """The processes the system tests start; stopped at the end of the session."""
    supervisor = Supervisor()
    yield supervisor
    supervisor.stop(20)


def start_worker(processes: Supervisor, env: dict[str, str], *, beat: bool = True) -> Process:
    """A real `celery worker` process (with embedded beat) on the test database, once ready."""
    args = [
        *worker_command(concurrency=2),
        "--hostname",
        f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
    ]
    if beat:
        args += ["--beat", "--schedule", env["VAR_DIR"] + "/beat-schedule"]
    log = Path(env["VAR_DIR"]) / f"worker-{time.monotonic_ns()}.log"
    worker = processes.start("worker", args, env=env, log=log)
    worker.wait_for(" ready.", timeout=60)
    return worker


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
        JIRA_ALLOW_HTTP="true",  # the simulators: plain http on 127.0.0.1
        JIRA_ALLOWED_HOSTS="127.0.0.1,localhost",
        **FAST_TIMINGS,
        # No reconciliation by this worker's beat: its searches would count in other tests'
        # call logs (test_reconcile.py starts a worker whose beat reconciles; either worker
        # may run the catch-up tasks, so both have the same grace and overlap).
        SYNC_RECONCILE_SECONDS="0",
        SYNC_RECONCILE_GRACE_SECONDS="1",
        SYNC_RECONCILE_OVERLAP_SECONDS="60",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture(scope="session")
def worker(worker_env, processes):
    # worker_env first: the processes stop before the simulator the worker calls.
    return start_worker(processes, worker_env)


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
    """The sync's events to `url`, registered by the site's admin through Jira's admin API."""
    return jira_admin.register_webhook(sim.base_url, sim.auth, url, jql, secret)


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


def _deliveries() -> list | str:
    from webhooks.models import WebhookDelivery

    try:
        return list(
            WebhookDelivery.objects.order_by("pk").values_list(
                "source", "event_type", "issue_key", "status", "last_error"
            )
        )
    except RuntimeError as exc:  # a test without the test database (two installs: their own)
        return f"not read ({exc})"


PARTNER_HOOK_SECRET = "partner-webhook-secret"


def connect(
    sync_env,
    local: JiraSim,
    partner: JiraSim,
    flavor: str,
    *,
    reset=True,
    local_jql='project = "LOC"',
    partner_jql='project = "REM"',
    **org_fields,
):
    """The local site and a partner site, two-way: the organization (`org_fields` override
    its settings), its project mapping LOC <-> REM, and both sites' webhooks (with the JQL
    filters given), as the admins set them up. Returns (local, partner, organization)."""
    if reset:
        local.reset()
        partner.reset()
    settings = {
        "name": "Partner",
        "remote_base_url": partner.base_url,
        "remote_flavor": flavor,
        "remote_user": PARTNER_USER[0],
        "remote_token": PARTNER_USER[1],
        "sync_direction": "bidirectional",
        "remote_handshake_token": PARTNER_HOOK_SECRET,
        "require_signature": True,
        **org_fields,
    }
    org = org_services.organization_create(**settings)
    org_services.project_mapping_create(
        organization=org, local_project_key="LOC", remote_project_key="REM"
    )
    register_webhook(local, f"{sync_env.url}/webhooks/local/?secret={WEBHOOK_SECRET}", local_jql)
    # The partner's Jira admin registers their webhook as the admin page tells them to.
    hook = register_webhook(
        partner,
        f"{org.incoming_webhook_url}?secret={org.incoming_secret}",
        partner_jql,
        secret=PARTNER_HOOK_SECRET,
    )
    assert hook["filters"]["issue-related-events-section"] == partner_jql
    return local, partner, org


@pytest.fixture
def two_installs(tmp_path):
    """Install A (local Jira: Cloud, project LOC) and install B (local Jira: Data Center,
    project REM), each complete and running, not yet connected (tests/system/two_installs.py)."""
    from .two_installs import SPECS, Install, broker_urls, start_sim

    db = environ.Env.db_url_config(os.environ["DATABASE_URL"])
    server = f"postgresql://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    installs = []
    sims = []
    try:
        for name, broker in zip(("a", "b"), broker_urls(), strict=True):
            sims.append(start_sim(SPECS[name]))
            var_dir = tmp_path / f"install-{name}"
            var_dir.mkdir()
            install = Install(
                name=name,
                admin_dsn=f"{server}/postgres",
                db_url=f"{server}/{db['NAME']}_install_{name}",
                broker_url=broker,
                var_dir=var_dir,
                sim=sims[-1],
            )
            installs.append(install)
            install.create()
            install.start()
        yield tuple(installs)
    finally:
        for install in reversed(installs):
            install.drop()
        for sim in sims:
            sim.stop()


@contextmanager
def relay_lock_held() -> Iterator[psycopg.Connection]:
    """No relay sends meanwhile: the relays' connections to the test database are cut and this
    connection takes the relay lock first (they stand by, and take over once it closes)."""
    holder = psycopg.connect(**relay_conninfo(connection.settings_dict), autocommit=True)
    try:
        holder.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'sync-relay' AND datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
        holder.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        yield holder
    finally:
        holder.close()
