"""Scenario B's handshake between two complete installs over HTTP.

Install A is this test's live server on the test database with a real Celery worker (it
invites; its hello to B goes through the worker). Install B is a second web process
on its OWN PostgreSQL database and its own encryption key (tests/installs.py); B runs its
Celery tasks in the web process (CELERY_TASK_ALWAYS_EAGER: it needs no second broker here).
The admins use each install's API: invitation on A, accept on B, both active, disconnect."""

from __future__ import annotations

import psycopg
import pytest
import requests

from organizations import services as org_services
from organizations.models import Organization

from ..installs import second_install
from .conftest import wait_until

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

B_ADMIN = ("admin-b", "admin-b-pass-123")
B_LOCAL_TOKEN = "install-b-own-jira-token"


@pytest.fixture
def install_b(processes, worker_env, tmp_path):
    """A second install: its own database, web process and keys (tests/installs.py)."""
    with second_install(
        name="install_b",
        admin=B_ADMIN,
        var_dir=tmp_path,
        processes=processes,
        LOCAL_JIRA_USER="sync@install-b.example",
        LOCAL_JIRA_TOKEN=B_LOCAL_TOKEN,
    ) as (install, db_url):
        yield install.base_url, db_url


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
