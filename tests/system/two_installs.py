"""Two complete installs of the service, connected app to app (Scenario B), for system tests.

Each install has its own PostgreSQL database, its own web process (`manage.py runserver`),
its own real Celery worker with embedded beat (on its own Redis database, so neither takes
the other's tasks, and its own cache there), its own encryption and secret keys, its own
admin API token, and its own Jira simulator as its local Jira: install A's is a Cloud site
with project LOC, install B's a Data Center site with project REM. Nothing of the product
runs in the test process: the tests speak to each install over HTTP (its API, its Jira) and
read its database with plain SQL.

    a, b = two_installs          # the fixture (tests/system/conftest.py): started, not connected
    org_a, org_b = connect_installs(a, b)
    b.stop(); ...; b.start()     # one install's web and worker down for a while, then back

Redis databases: INSTALL_A_BROKER_URL and INSTALL_B_BROKER_URL (`make test` sets them: see
TEST_INSTALL_A_BROKER_URL in the Makefile), each used by nothing else: a worker there takes
every task it finds, and each install's Celery queues are emptied when it is created. Its
cache keys carry a prefix of its own.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import kombu
import psycopg
import requests
from django.conf import settings
from psycopg import sql

from devtools import jira_admin
from devtools.installs import install_start
from devtools.supervisor import Process, Supervisor, free_port
from jirasim import JiraSim

from .helpers import FAST_TIMINGS

ALICE = ("alice@example.com", "alice-token")
# Each install's admin (the API is used with its token: see `Install.token`).
ADMIN = ("admin", "install-admin-password-not-used-by-the-tests")
BOB = ("bob@example.com", "bob-token")

# What each install's admin and sync account are; every value differs between the two, so
# finding one install's in the other's database means it was handed over.
SPECS = {
    "a": {
        "flavor": "cloud",
        "project": "LOC",
        "project_name": "Install A's product",
        "sync_user": ("sync@install-a.example", "install-a-own-jira-token-5e1f"),
        "webhook_secret": "install-a-local-webhook-secret-91c2",
        "encryption_key": "install-a-field-encryption-key",
        "secret_key": "install-a-django-secret-key",
    },
    "b": {
        "flavor": "datacenter",
        "project": "REM",
        "project_name": "Install B's product",
        "sync_user": ("sync@install-b.example", "install-b-own-jira-token-7d04"),
        "webhook_secret": "install-b-local-webhook-secret-3a8e",
        "encryption_key": "install-b-field-encryption-key",
        "secret_key": "install-b-django-secret-key",
    },
}

# Run in an install's own environment (`manage.py shell -c`): its admin and API token.
_BOOTSTRAP = """
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
admin = get_user_model().objects.create_superuser(username="admin", email="", password=None)
Token.objects.create(user=admin, key=TOKEN)
"""

# Every value of every encrypted field, decrypted with the install's own keys, as JSON.
_DECRYPTED = """
import json
from django.apps import apps
from core.fields import EncryptedTextField
out = {}
for model in apps.get_models():
    names = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
    if names:
        out[model._meta.label] = [list(r) for r in model.objects.values_list(*names)]
print("DECRYPTED" + json.dumps(out))
"""


def broker_urls() -> tuple[str, str]:
    """The two installs' Redis databases (see the module's docstring): never guessed, since a
    database another run uses would lose its tasks to our workers (and its queues)."""
    urls = (os.environ.get("INSTALL_A_BROKER_URL"), os.environ.get("INSTALL_B_BROKER_URL"))
    if not all(urls):
        raise RuntimeError(
            "set INSTALL_A_BROKER_URL and INSTALL_B_BROKER_URL (make test does), e.g. "
            "redis://127.0.0.1:6379/13 and redis://127.0.0.1:6379/14"
        )
    ours = os.environ.get("CELERY_BROKER_URL")
    if len({*urls, ours}) < 3:
        raise RuntimeError(f"the installs' brokers {urls} must differ from each other and {ours}")
    return urls


def wait_until(check: Callable[[], object], timeout: float = 30, interval: float = 0.2, what=""):
    """The first truthy value of `check()`; fails after `timeout` with the last value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what or 'condition'} not met within {timeout}s (last: {last!r})")


@dataclass
class Install:
    """One complete install: database, web process, worker (with beat) and its local Jira."""

    name: str  # "a" or "b"
    admin_dsn: str  # the server's maintenance database, to create and drop ours
    db_url: str
    broker_url: str
    var_dir: Path
    sim: JiraSim
    port: int = field(default_factory=free_port)
    token: str = field(default_factory=lambda: secrets.token_hex(20))
    # Its own keys in the shared cache (on its Redis database), new for every install.
    cache_prefix: str = field(default_factory=lambda: f"install-{secrets.token_hex(6)}")
    web: Process | None = None
    worker: Process | None = None
    starts: int = 0

    # --- what it is ------------------------------------------------------------------------

    @property
    def spec(self) -> dict:
        return SPECS[self.name]

    @property
    def project(self) -> str:
        return self.spec["project"]

    @property
    def sync_user(self) -> tuple[str, str]:
        return self.spec["sync_user"]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db_name(self) -> str:
        return urlsplit(self.db_url).path.strip("/")

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "MAKE"))}
        env.update(
            DATABASE_URL=self.db_url,
            CELERY_BROKER_URL=self.broker_url,
            CELERY_TASK_ALWAYS_EAGER="false",
            CACHE_KEY_PREFIX=self.cache_prefix,
            VAR_DIR=str(self.var_dir),
            PUBLIC_BASE_URL=self.base_url,
            SECRET_KEY=self.spec["secret_key"],
            FIELD_ENCRYPTION_KEYS=self.spec["encryption_key"],
            ALLOW_DEV_KEYS="true",
            LOCAL_JIRA_URL=self.sim.base_url,
            LOCAL_JIRA_FLAVOR=self.spec["flavor"],
            LOCAL_JIRA_USER=self.sync_user[0],
            LOCAL_JIRA_TOKEN=self.sync_user[1],
            LOCAL_WEBHOOK_SECRET=self.spec["webhook_secret"],
            JIRA_ALLOW_HTTP="true",  # the simulators and the partner install: plain http
            JIRA_ALLOWED_HOSTS="127.0.0.1,localhost",
            **FAST_TIMINGS,
            PYTHONUNBUFFERED="1",
        )
        for key in ("DJANGO_SETTINGS_MODULE", "DEBUG", "WEB_PORT"):
            env.pop(key, None)
        return env

    # --- life cycle ------------------------------------------------------------------------

    def create(self) -> None:
        """A fresh database (migrated, with the admin and its API token), an empty Redis
        database, and the local Jira's webhook to this install, as its Jira admin sets it."""
        with psycopg.connect(self.admin_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(self._db()))
            admin.execute(sql.SQL("CREATE DATABASE {}").format(self._db()))
        self.purge_queues()
        self.manage("migrate", "--no-input", "-v0")
        self.manage("shell", "-c", f"TOKEN = {self.token!r}\n{_BOOTSTRAP}")
        jira_admin.register_webhook(
            self.sim.base_url,
            self.sim.auth,
            f"{self.base_url}/webhooks/local/?secret={self.spec['webhook_secret']}",
            f'project = "{self.project}"',
        )

    def purge_queues(self) -> None:
        """Empty this install's Celery queues: a task an earlier test's install left there
        (beat's last sweep, handed back at shutdown) is not this database's."""
        with kombu.Connection(self.broker_url) as conn:
            for queue in settings.CELERY_TASK_QUEUES:
                conn.default_channel.queue_purge(queue.name)

    def start(self) -> None:
        """Its web process and its worker (with beat), once both are ready
        (`devtools.installs.install_start`, as `make demo-b` starts an install)."""
        assert self.web is None and self.worker is None, f"install {self.name} is running"
        self.starts += 1
        # A supervisor of its own: one that also held the processes of an earlier start
        # (stopped) would take them for processes that died.
        supervisor = Supervisor()
        try:
            install = install_start(
                supervisor,
                name=f"install-{self.name}",
                port=self.port,
                env=self.env,
                admin=ADMIN,
                logs=self.var_dir / f"start-{self.starts}",
            )
        except BaseException:
            supervisor.stop(15)
            raise
        self.worker, self.web = install.processes

    def stop(self, *, kill: bool = False) -> None:
        """Its web process and worker stop (a warm shutdown, or with `kill` SIGKILL at once,
        as a crash would); its database, Redis and Jira stay."""
        for process in (self.web, self.worker):
            if process is None:
                continue
            if kill:
                process.kill()
                continue
            # The worker's main process only: a Celery worker stops its own pool and beat.
            process.terminate(20, group=process is not self.worker)
            try:
                wait_until(lambda p=process: not p.group_alive(), timeout=20, what="stopped")
            except AssertionError:
                process.send(signal.SIGKILL)
                raise AssertionError(f"{process.name} left processes running: killed") from None
        self.web = self.worker = None

    @property
    def running(self) -> bool:
        return self.web is not None

    def drop(self) -> None:
        self.stop()
        with psycopg.connect(self.admin_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(self._db()))

    def _db(self) -> sql.Identifier:
        return sql.Identifier(self.db_name)

    def manage(self, *args: str) -> str:
        """`manage.py <args>` in this install's environment; its output."""
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"manage.py {args[0]} ({self.name}): {done.stderr[-3000:]}"
        return done.stdout

    def logs(self) -> str:
        """The end of each of its process logs (for a failure message)."""
        parts = []
        for path in sorted(self.var_dir.rglob("*.log")):
            parts.append(
                f"--- {path.relative_to(self.var_dir)}\n{path.read_text(errors='replace')[-3000:]}"
            )
        return "\n".join(parts)

    # --- its API ---------------------------------------------------------------------------

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        headers = {"Authorization": f"Token {self.token}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.base_url}{path}", headers=headers, **kwargs)

    def ok(self, method: str, path: str, **kwargs) -> dict | list:
        response = self.api(method, path, **kwargs)
        assert response.status_code < 400, f"{method} {path} ({self.name}): {response.text}"
        return response.json() if response.content else {}

    def api_down(self) -> bool:
        """Whether nothing answers at its address (its web process is stopped)."""
        try:
            requests.get(f"{self.base_url}/healthz", timeout=2)
        except requests.ConnectionError:
            return True
        return False

    def organization(self, public_id: str) -> dict:
        return self.ok("GET", f"/api/organizations/{public_id}/")

    # --- its database ----------------------------------------------------------------------

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(self.db_url) as conn:
            return conn.execute(query, params).fetchall()

    def text_values(self) -> dict[str, list[str]]:
        """Every non-empty value of every text-like column of every table (JSON as text):
        `schema.table.column` -> values."""
        columns = self.sql(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns"
            " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
            " AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb')"
        )
        values: dict[str, list[str]] = {}
        with psycopg.connect(self.db_url) as conn:
            for schema, table, column in columns:
                query = sql.SQL("SELECT {c}::text FROM {t} WHERE {c} IS NOT NULL").format(
                    c=sql.Identifier(column), t=sql.Identifier(schema, table)
                )
                found = [v for (v,) in conn.execute(query).fetchall() if v]
                if found:
                    values[f"{schema}.{table}.{column}"] = found
        return values

    def decrypted_values(self) -> dict[str, list[list[str]]]:
        """Every encrypted field's value, decrypted by the install itself (its own keys)."""
        out = self.manage("shell", "-c", _DECRYPTED)
        return json.loads(out.split("DECRYPTED", 1)[1])

    def deliveries(self) -> list[tuple]:
        """Its inbox: (source, event_type, issue_key, status, last_error), oldest first."""
        return self.sql(
            "SELECT source, event_type, issue_key, status, last_error"
            " FROM webhooks_webhookdelivery ORDER BY id"
        )

    def unfinished(self) -> list[tuple]:
        """Its inbox rows that were not applied (nor recognised as echoes), with the reason."""
        return [d for d in self.deliveries() if d[3] not in ("done", "echo")]

    def busy(self) -> list[str]:
        """What it still has to do: inbox rows not finished, outbox messages not yet sent."""
        busy = [
            f"delivery {row}"
            for row in self.sql(
                "SELECT event_type, issue_key, status FROM webhooks_webhookdelivery"
                " WHERE status IN ('pending', 'processing', 'failed')"
            )
        ]
        busy += [
            f"outbox {row}"
            for row in self.sql(
                "SELECT kind, pair, seq, attempts, last_error FROM organizations_outboxmessage"
                " WHERE sent_at IS NULL"
            )
        ]
        return busy

    def outbox_count(self, kind: str, *, pending: bool = False) -> int:
        """Its outbox messages of `kind` (with `pending`: those not sent yet)."""
        query = "SELECT count(*) FROM organizations_outboxmessage WHERE kind = %s"
        if pending:
            query += " AND sent_at IS NULL"
        return self.sql(query, (kind,))[0][0]

    # --- its Jira ---------------------------------------------------------------------------

    def sim_idle(self) -> bool:
        response = requests.get(f"{self.sim.base_url}/_sim/idle?timeout=0.2", timeout=5)
        return response.status_code == 200


def start_sim(spec: dict) -> JiraSim:
    sim = JiraSim(
        flavor=spec["flavor"],
        projects=[f"{spec['project']}:{spec['project_name']}"],
        users=[f"{spec['sync_user'][0]}:{spec['sync_user'][1]}", f"{ALICE[0]}:{ALICE[1]}"],
        webhook_retry_base=0.2,
        webhook_workers=2,
    )
    sim.start()
    return sim


def settled(*installs: Install) -> bool:
    """Nothing in flight: every Jira's webhooks sent, every inbox and outbox done."""
    return all(i.sim_idle() for i in installs) and not any(i.busy() for i in installs)


def invite(a: Install, b: Install, *, direction: str = "bidirectional") -> tuple[dict, str]:
    """A's admin makes an organization for B's company, maps A's project to B's and creates
    an invitation. Returns the organization and the invitation text."""
    org = a.ok(
        "POST",
        "/api/organizations/",
        json={"name": "Install B's company", "syncDirection": direction},
    )
    a.ok(
        "POST",
        f"/api/organizations/{org['id']}/project-mappings/",
        json={"localProjectKey": a.project, "remoteProjectKey": b.project},
    )
    response = a.api("POST", f"/api/organizations/{org['id']}/invitation/")
    assert response.status_code == 201, response.text
    return org, response.json()["invitation"]


def accept(b: Install, a: Install, invitation: str, *, direction: str = "bidirectional"):
    """B's admin pastes the invitation and maps B's project to A's; the API's answer."""
    return b.api(
        "POST",
        "/api/connections/accept/",
        json={
            "invitation": invitation,
            "name": "Install A's company",
            "projectMappings": [{"localProjectKey": b.project, "remoteProjectKey": a.project}],
            "syncDirection": direction,
        },
    )


def connect_installs(
    a: Install,
    b: Install,
    *,
    direction_a: str = "bidirectional",
    direction_b: str = "bidirectional",
) -> tuple[dict, dict]:
    """The admins connect the two installs over their APIs (`invite` on A, `accept` on B).
    Returns both organizations once both are active."""
    org_a, invitation = invite(a, b, direction=direction_a)
    response = accept(b, a, invitation, direction=direction_b)
    assert response.status_code == 201, response.text
    org_b = response.json()
    wait_active(a, org_a, b, org_b)
    return a.organization(org_a["id"]), b.organization(org_b["id"])


def wait_active(a: Install, org_a: dict, b: Install, org_b: dict) -> None:
    def both_active():
        states = (
            a.organization(org_a["id"])["handshakeStatus"],
            b.organization(org_b["id"])["handshakeStatus"],
        )
        return states if states == ("active", "active") else None

    try:
        wait_until(both_active, timeout=60, what="both organizations active")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{a.logs()}\n{b.logs()}") from None
