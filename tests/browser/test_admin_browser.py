"""The admin in a real browser: Debian's Chromium driven by Playwright (conftest.py)."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
import requests

from .conftest import needs_chromium, shot

HOOK_SECRET = "browser-partner-hook-secret"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]


def test_an_admin_sets_up_two_way_sync_in_a_real_browser(
    browser_page, superuser, settings, live_server
):
    settings.PUBLIC_BASE_URL = live_server.url
    page = browser_page

    page.goto("/admin/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "root-pass-123")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    shot(page, "01-logged-in")

    page.goto("/admin/organizations/organization/add/")
    page.fill("#id_public_id", "org-browser")
    page.fill("#id_name", "Browser Partner")
    page.fill("#id_remote_base_url", "https://partner.example.atlassian.net")
    page.fill("#id_remote_handshake_token", HOOK_SECRET)
    page.click("#project_mappings-group .add-row a")
    page.fill("#id_project_mappings-0-local_project_key", "LOC")
    page.fill("#id_project_mappings-0-remote_project_key", "REMOTE_PROJ")
    shot(page, "02-new-organization")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    assert page.locator("#partner-setup").count() == 0  # push only: no panel yet

    page.click("#two-way-buttons input[type=submit]")  # Turn two-way sync on
    page.wait_for_selector("#partner-setup")
    url = page.input_value("#incoming-webhook-url")
    assert url.startswith(f"{live_server.url}/webhooks/incoming/org-browser/?secret=")
    assert page.inner_text("#partner-jql") == 'project = "REMOTE_PROJ"'
    assert page.get_attribute("#handshake-status", "data-status") == "pending"
    page.click("#copy-webhook-url")
    page.wait_for_function("document.getElementById('copy-webhook-url').textContent === 'Copied'")
    assert page.evaluate("navigator.clipboard.readText()") == url
    shot(page, "03-two-way-on")

    body = json.dumps(
        {
            "timestamp": 1764086400000,
            "webhookEvent": "jira:issue_updated",
            "issue": {
                "id": "10001",
                "key": "REMOTE_PROJ-1",
                "fields": {"project": {"key": "REMOTE_PROJ"}},
            },
        }
    ).encode()
    signature = "sha256=" + hmac.new(HOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = requests.post(
        url,
        data=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature": signature},
        timeout=10,
    )
    assert response.status_code in (200, 202), response.text

    page.reload()
    assert page.get_attribute("#handshake-status", "data-status") == "active"
    shot(page, "04-handshake-active")

    page.click("#rotate-secret")
    page.wait_for_selector(".messagelist .success")
    rotated = page.input_value("#incoming-webhook-url")
    assert rotated != url and rotated.startswith(
        f"{live_server.url}/webhooks/incoming/org-browser/"
    )
    assert "The previous secret is accepted until" in page.content()
    shot(page, "05-secret-rotated")

    page.click("#dashboard-link")
    page.wait_for_selector("#organizations")
    row = page.locator("#organizations tr", has_text="Browser Partner")
    assert row.locator(".handshake").get_attribute("data-status") == "active"
    assert page.inner_text("#backlog").isdigit()
    shot(page, "06-dashboard")
