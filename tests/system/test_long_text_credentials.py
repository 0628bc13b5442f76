"""Long text and expiring credentials end to end (issue 15, items 6 and 7): a Cloud local
site and a Data Center partner over HTTP, the web service and a real worker.

A Data Center whose text limit was raised sends a description Cloud would refuse: it arrives
cut with the visible marker, the rest of the edit written, and nothing goes back. A partner
token that is rejected (401) shows "credentials rejected" and its deliveries wait; the
renewed token retries them, and the change arrives once.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from organizations import services as org_services
from webhooks.models import DeliveryStatus, WebhookDelivery

from .conftest import LOCAL_USER, PARTNER_USER, connect, sim_call, wait_until
from .test_two_way import ALICE, settled, writes

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

MARKER = "[truncated by Jira sync:"


@pytest.fixture
def dc_partner(sync_env, local_sim, partner_dc):
    local, partner, org = connect(sync_env, local_sim, partner_dc, "datacenter")
    try:
        yield local, partner, org
    finally:
        partner.options.restore()


def clear_calls(*sims) -> None:
    for sim in sims:
        requests.delete(f"{sim.base_url}/_sim/calls", timeout=5)


def fields_of(sim, key: str) -> dict:
    api = "/rest/api/3" if sim.flavor == "cloud" else "/rest/api/2"
    response = sim_call(sim, "GET", f"{api}/issue/{key}", auth=ALICE)
    assert response.status_code == 200, response.text
    return response.json()["fields"]


def adf_text(doc) -> str:
    if isinstance(doc, dict):
        return str(doc.get("text") or "") + "".join(adf_text(c) for c in doc.get("content") or [])
    return ""


def create_partner(partner, summary: str) -> str:
    body = {
        "fields": {"project": {"key": "REM"}, "issuetype": {"name": "Task"}, "summary": summary}
    }
    response = sim_call(partner, "POST", "/rest/api/2/issue", auth=ALICE, json=body)
    assert response.status_code == 201, response.text
    return response.json()["key"]


def copy_key(org, remote_key: str) -> str:
    return wait_until(
        lambda: (
            org.issue_links.filter(remote_issue_key=remote_key)
            .exclude(local_issue_key="")
            .values_list("local_issue_key", flat=True)
            .first()
        ),
        timeout=60,
    )


def test_a_description_over_jiras_limit_arrives_cut_with_the_marker_and_nothing_goes_back(
    dc_partner,
):
    local, partner, org = dc_partner
    partner.set_options(dc_text_limit=0)  # the partner's admin raised Data Center's limit
    remote_key = create_partner(partner, "Long text")
    local_key = copy_key(org, remote_key)
    wait_until(lambda: settled(local, partner), timeout=60)
    clear_calls(local, partner)

    text = " ".join(f"word{i}" for i in range(8000))  # about 70,000 characters
    assert len(text) > 32767
    response = sim_call(
        partner,
        "PUT",
        f"/rest/api/2/issue/{remote_key}",
        auth=ALICE,
        json={"fields": {"description": text, "summary": "Long text, edited"}},
    )
    assert response.status_code == 204, response.text

    wait_until(lambda: fields_of(local, local_key)["summary"] == "Long text, edited", timeout=60)
    wait_until(lambda: settled(local, partner), timeout=60)
    copied = adf_text(fields_of(local, local_key)["description"])
    assert MARKER in copied
    assert len(copied) <= 32767
    assert copied.startswith(text[:1000])
    assert writes(partner, PARTNER_USER[0]) == 0  # the cut copy's echo wrote nothing back
    assert writes(local, LOCAL_USER[0]) == 1  # one edit: the summary and the cut description
    assert org.sync_events.filter(message__contains="truncated").exists()


def credentials(admin_client, org) -> dict:
    body = admin_client.get("/api/status/").json()
    return next(o for o in body["organizations"] if o["id"] == org.public_id)["credentials"]


def test_a_rejected_token_holds_the_deliveries_and_a_renewed_one_retries_them_once(
    dc_partner, admin_client
):
    local, partner, org = dc_partner
    remote_key = create_partner(partner, "Credentials")
    local_key = copy_key(org, remote_key)
    wait_until(lambda: settled(local, partner), timeout=60)
    soon = timezone.localdate() + timedelta(days=5)
    org = org_services.organization_update(
        organization=org, data={"remote_token": "revoked", "remote_token_expires_at": soon}
    )
    assert credentials(admin_client, org)["state"] == "expiring"
    assert credentials(admin_client, org)["daysLeft"] == 5
    clear_calls(local, partner)

    response = sim_call(
        local,
        "PUT",
        f"/rest/api/3/issue/{local_key}",
        auth=ALICE,
        json={"fields": {"summary": "Changed while the token is rejected"}},
    )
    assert response.status_code == 204, response.text

    def rejected():
        org.refresh_from_db()
        return org.credentials_rejected_at is not None

    wait_until(rejected, timeout=60)
    held = wait_until(
        lambda: list(WebhookDelivery.objects.filter(status=DeliveryStatus.FAILED)),
        timeout=60,
    )
    assert all(d.last_error.startswith("credentials rejected") for d in held)
    assert "401" in org.credentials_rejected_message
    assert fields_of(partner, remote_key)["summary"] == "Credentials"
    assert credentials(admin_client, org)["state"] == "rejected"

    org_services.organization_update(organization=org, data={"remote_token": PARTNER_USER[1]})

    wait_until(
        lambda: fields_of(partner, remote_key)["summary"] == "Changed while the token is rejected",
        timeout=90,
    )
    wait_until(lambda: settled(local, partner), timeout=60)
    org.refresh_from_db()
    assert org.credentials_rejected_at is None
    assert org.remote_token_expires_at == soon
    assert credentials(admin_client, org)["state"] == "expiring"
    assert writes(partner, PARTNER_USER[0]) == 1
    assert writes(local, LOCAL_USER[0]) == 0
