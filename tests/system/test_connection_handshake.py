"""Scenario B's handshake between two complete installs over HTTP.

Install A is this test's live server on the test database with a real Celery worker (it
invites; its hello to B goes through the worker). Install B is a second web process
(`manage.py runserver`) on its OWN PostgreSQL database and its own encryption key; B runs its
Celery tasks in the web process (CELERY_TASK_ALWAYS_EAGER: it needs no second broker here).
The admins use each install's API: invitation on A, accept on B, both active, disconnect."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest
import requests
from django.db import connection

from devtools.supervisor import free_port
from organizations import services as org_services
from organizations.models import Organization

from .conftest import database_url, wait_until

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

B_ADMIN = ("admin-b", "admin-b-pass-123")
B_LOCAL_TOKEN = "install-b-own-jira-token"


def _admin_dsn() -> str:
    s = connection.settings_dict
    return f"postgresql://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/postgres"


@pytest.fixture
def install_b(processes, worker_env, tmp_path):
    """A second install: its own database (created and migrated here), web process and keys."""
    name = f"{connection.settings_dict['NAME']}_install_b"
    with psycopg.connect(_admin_dsn(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    db_url = database_url().rsplit("/", 1)[0] + f"/{name}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        DATABASE_URL=db_url,
        FIELD_ENCRYPTION_KEYS="install-b-encryption-key-not-install-a",
        PUBLIC_BASE_URL=base,
        VAR_DIR=str(tmp_path),
        CELERY_TASK_ALWAYS_EAGER="true",
        LOCAL_JIRA_URL="http://127.0.0.1:9",
        LOCAL_JIRA_USER="sync@install-b.example",
        LOCAL_JIRA_TOKEN=B_LOCAL_TOKEN,
        JIRA_ALLOW_HTTP="true",
        JIRA_ALLOWED_HOSTS="127.0.0.1,localhost",
        ADMIN_USERNAME=B_ADMIN[0],
        ADMIN_PASSWORD=B_ADMIN[1],
        ALLOW_DEV_KEYS="true",
        PYTHONUNBUFFERED="1",
    )
    for command in (["migrate", "--no-input"], ["ensure_admin"]):
        subprocess.run(
            [sys.executable, "manage.py", *command], env=env, check=True, capture_output=True
        )
    web = processes.start(
        "web-b",
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        env=env,
        log=tmp_path / "web-b.log",
    )
    processes.wait_http(f"{base}/healthz", timeout=60)
    try:
        yield base, db_url
    finally:
        web.terminate()
        with psycopg.connect(_admin_dsn(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_two_installs_connect_activate_and_disconnect(sync_env, worker, install_b, api):
    base_b, db_b = install_b
    b = requests.Session()
    b.auth = B_ADMIN

    # A (inviter): an organization with what it offers, and an invitation.
    org_a = org_services.organization_create(name="Initech (their install)")
    org_services.project_mapping_create(
        organization=org_a, local_project_key="LOC", remote_project_key="REM"
    )
    response = api.post(f"/api/organizations/{org_a.public_id}/invitation/")
    assert response.status_code == 201, response.content
    invitation = response.json()["invitation"]

    # B (acceptor): pastes it, maps its project REM to A's offered LOC, two-way.
    response = b.post(
        f"{base_b}/api/connections/accept/",
        json={
            "invitation": invitation,
            "name": "Acme (their install)",
            "projectMappings": [{"localProjectKey": "REM", "remoteProjectKey": "LOC"}],
            "syncDirection": "bidirectional",
        },
        timeout=30,
    )
    assert response.status_code == 201, response.text
    org_b = response.json()
    assert org_b["connectionType"] == "app"

    # Both active within seconds (A's hello to B goes through A's worker).
    def status_b():
        return b.get(f"{base_b}/api/organizations/{org_b['id']}/", timeout=10).json()[
            "handshakeStatus"
        ]

    def status_a():
        return Organization.objects.get(pk=org_a.pk).handshake_status

    wait_until(lambda: status_a() == "active" and status_b() == "active", timeout=30)

    # A second accept of the same invitation is refused by A; B keeps nothing of it.
    response = b.post(
        f"{base_b}/api/connections/accept/",
        json={
            "invitation": invitation,
            "name": "Again",
            "projectMappings": [{"localProjectKey": "REM", "remoteProjectKey": "LOC"}],
        },
        timeout=30,
    )
    assert response.status_code == 409, response.text
    listed = b.get(f"{base_b}/api/organizations/", timeout=10).json()
    assert [o["id"] for o in listed] == [org_b["id"]]

    # Neither database holds the other's Jira credentials (nor any partner Jira token).
    a_org = Organization.objects.get(pk=org_a.pk)
    assert a_org.remote_token == "" and a_org.remote_user == ""
    with psycopg.connect(db_b) as conn_b:
        rows = conn_b.execute(
            "SELECT remote_token, remote_user, remote_base_url FROM organizations_organization"
        ).fetchall()
    assert rows == [("", "", "")]
    dump_a = "\n".join(str(v) for row in Organization.objects.values_list() for v in row)
    assert B_LOCAL_TOKEN not in dump_a
    assert sync_env.url not in repr(rows)

    # B disconnects: both sides show it; A has nothing live left to sign with.
    response = b.post(f"{base_b}/api/organizations/{org_b['id']}/disconnect/", timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["handshakeStatus"] == "disconnected"
    wait_until(lambda: status_a() == "disconnected", timeout=10)
    response = api.post(f"/api/organizations/{org_a.public_id}/rotate-key/")
    assert response.status_code == 409
