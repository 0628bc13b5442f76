"""Scenario B in the admin, in a real browser: install A's admin creates a connection
invitation, install B's admin pastes it, maps a project, chooses the direction and connects;
both become active; B rotates its signing key; A disconnects and B shows it.

Install B is the live server on the test database (its admin is in the browser). Install A is
a second complete install over HTTP, on its own database (tests/installs.py). B calls A back
with the invitation's token; the signed hellos cross both ways."""

from __future__ import annotations

import time

import pytest

from organizations.models import Organization

from ..installs import second_install
from .conftest import needs_chromium, shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), needs_chromium]

A_ADMIN = ("admin-a", "admin-a-pass-123")


@pytest.fixture
def install_a(tmp_path):
    with second_install(name="install_a", admin=A_ADMIN, var_dir=tmp_path) as (install, _db):
        yield install


def log_in(page, admin_url: str, user: str, password: str) -> None:
    page.goto(f"{admin_url}login/")
    page.fill("#id_username", user)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


def status_after_reload(page, want: str, timeout: float = 30) -> str:
    """The page's handshake status once it is `want` (reloading), or the last one seen."""
    deadline = time.monotonic() + timeout
    while True:
        status = page.get_attribute("#handshake-status", "data-status")
        if status == want or time.monotonic() > deadline:
            return status
        time.sleep(0.3)
        page.reload()


def test_an_admin_pastes_an_invitation_and_both_installs_become_active(
    browser_context, install_a, superuser, settings, live_server
):
    settings.PUBLIC_BASE_URL = live_server.url

    # Install A: an organization for B, offering its project LOC.
    api_a = install_a.session()
    response = api_a.post(
        f"{install_a.base_url}/api/organizations/", json={"name": "Bolt (B's install)"}, timeout=10
    )
    assert response.status_code == 201, response.text
    org_a = response.json()["id"]
    response = api_a.post(
        f"{install_a.base_url}/api/organizations/{org_a}/project-mappings/",
        json={"localProjectKey": "LOC", "remoteProjectKey": "REM"},
        timeout=10,
    )
    assert response.status_code == 201, response.text

    # A's admin creates the invitation and copies it.
    page_a = browser_context.new_page()
    log_in(page_a, install_a.admin_url, *A_ADMIN)
    page_a.goto(f"{install_a.admin_url}organizations/organization/")
    page_a.click("text=Bolt (B's install)")
    page_a.click("#create-invitation")
    page_a.wait_for_selector("#connection-invitation")
    invitation = page_a.input_value("#connection-invitation")
    page_a.click("#copy-invitation")
    page_a.wait_for_function("document.getElementById('copy-invitation').textContent === 'Copied'")
    shot(page_a, "b01-invitation-created-on-a")
    page_a.click("text=Back to the organization")
    assert page_a.get_attribute("#handshake-status", "data-status") == "pending"
    assert "An invitation is out" in page_a.inner_text("#invitation-state")

    # B's admin pastes it, sees what it offers, maps B's REM to A's LOC, two-way.
    page = browser_context.new_page()
    log_in(page, f"{live_server.url}/admin/", "root", "root-pass-123")
    page.goto("/admin/organizations/organization/")
    page.click("#accept-invitation-link")
    page.wait_for_selector("#accept-invitation-form")
    pasted = page.evaluate("navigator.clipboard.readText()")
    assert pasted == invitation
    page.fill("#id_invitation", pasted)
    offer = page.inner_text("#invitation-offer")
    assert install_a.base_url in offer and "LOC" in offer, offer
    page.fill("#id_name", "Acme (A's install)")
    page.fill("#id_project_mappings", "REM = LOC")
    page.select_option("#id_sync_direction", "bidirectional")
    shot(page, "b02-invitation-pasted-on-b")
    page.click("#accept-invitation-form input[type=submit]")
    page.wait_for_selector(".messagelist .success")
    shot(page, "b03-connected-on-b")

    # B shows the new organization: the connection panel, not Scenario A's Jira set-up.
    assert page.input_value("#id_name") == "Acme (A's install)"
    assert page.locator("#partner-setup").count() == 0
    assert page.locator("#id_remote_token").count() == 0
    assert page.inner_text("#partner-install-url") == install_a.base_url
    assert [c.strip() for c in page.locator("#connection-projects tbody td").all_inner_texts()] == [
        "REM",
        "LOC",
    ]
    org_b = Organization.objects.get(name="Acme (A's install)")
    assert org_b.connection_type == "app" and org_b.sync_direction == "bidirectional"

    # Both active, in each admin.
    assert status_after_reload(page, "active") == "active"
    assert status_after_reload(page_a, "active") == "active"
    assert page_a.inner_text("#partner-install-url") == live_server.url
    assert "REM" in page_a.inner_text("#partner-projects")
    shot(page, "b04-active-on-b")
    shot(page_a, "b05-active-on-a")

    # The list says it in the words of an app connection.
    page.goto("/admin/organizations/organization/")
    row = page.locator("#result_list tr", has_text="Acme (A's install)")
    assert "both installs verified" in row.locator(".field-handshake").inner_text()
    page.goto(f"/admin/organizations/organization/{org_b.pk}/change/")

    # Saving the page (push only now) keeps the connection as it is.
    page.select_option("#id_sync_direction", "push")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    assert page.get_attribute("#handshake-status", "data-status") == "active"
    org_b.refresh_from_db()
    assert (org_b.sync_direction, org_b.handshake_status) == ("push", "active")

    # The same invitation again: refused by A, the reason shown on the form, nothing kept.
    page.goto("/admin/organizations/organization/accept-invitation/")
    page.fill("#id_invitation", invitation)
    page.fill("#id_name", "Acme again")
    page.fill("#id_project_mappings", "REM = LOC")
    page.click("#accept-invitation-form input[type=submit]")
    page.wait_for_selector(".errornote")
    assert "already been used" in page.inner_text(".errornote")
    assert page.input_value("#id_name") == "Acme again"  # what was typed stays
    shot(page, "b06-reused-invitation-refused")
    assert list(Organization.objects.values_list("name", flat=True)) == ["Acme (A's install)"]

    # B rotates its signing key; A accepts the new key.
    page.goto(f"/admin/organizations/organization/{org_b.pk}/change/")
    page.click("#rotate-key")
    page.wait_for_selector(".messagelist .success")
    assert "rotated on" in page.inner_text("#key-rotated-at")

    # A disconnects; B shows it, and has no button left to rotate or disconnect.
    page_a.click("#disconnect")
    page_a.wait_for_selector(".messagelist .success")
    assert page_a.get_attribute("#handshake-status", "data-status") == "disconnected"
    assert status_after_reload(page, "disconnected") == "disconnected"
    assert page.locator("#rotate-key, #disconnect, #create-invitation").count() == 0
    shot(page, "b07-disconnected-on-b")
