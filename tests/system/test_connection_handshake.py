"""Scenario B's handshake between two complete installs over HTTP (tests/system/two_installs.py:
each its own database, web process, real Celery worker with beat, encryption key and Jira).
The admins use each install's API: invitation on A, accept on B, both active, a second accept
of the same invitation refused, disconnect."""

from __future__ import annotations

import pytest

from .two_installs import accept, invite, wait_active, wait_until

pytestmark = [pytest.mark.system]


def test_two_installs_connect_activate_and_disconnect(two_installs):
    a, b = two_installs

    # A invites, B accepts; both active within seconds (each hello goes through a worker).
    org_a, invitation = invite(a, b)
    response = accept(b, a, invitation)
    assert response.status_code == 201, response.text
    org_b = response.json()
    org_a = a.organization(org_a["id"])
    assert (org_a["connectionType"], org_b["connectionType"]) == ("app", "app")
    wait_active(a, org_a, b, org_b)

    # A second accept of the same invitation is refused by A; B keeps nothing of it.
    response = accept(b, a, invitation)
    assert response.status_code == 409, response.text
    assert [o["id"] for o in b.ok("GET", "/api/organizations/")] == [org_b["id"]]

    # B disconnects: both sides show it; A has nothing live left to sign with.
    response = b.api("POST", f"/api/organizations/{org_b['id']}/disconnect/")
    assert response.status_code == 200, response.text
    assert response.json()["handshakeStatus"] == "disconnected"
    wait_until(
        lambda: a.organization(org_a["id"])["handshakeStatus"] == "disconnected",
        timeout=30,
        what="A shows the disconnect",
    )
    response = a.api("POST", f"/api/organizations/{org_a['id']}/rotate-key/")
    assert response.status_code == 409, response.text
