"""Multi-step workflows end to end (issue 12, item 1): a Cloud site and a Data Center partner
over HTTP, the web service and a real worker. A status the other side reaches only through
several transitions (with a screen that requires the resolution) is reached, both ways, and
the steps' webhooks come back as echoes (nothing bounces)."""

from __future__ import annotations

import pytest

from sync.models import IssueLink, SyncEvent
from webhooks.models import WebhookDelivery

from .conftest import LOCAL_USER, PARTNER_USER, connect, sim_call
from .conftest import wait_until as _wait_until
from .test_two_way import ALICE, settled, writes

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


def wait_until(check, timeout: float = 30):
    return _wait_until(check, timeout=timeout)


def api(sim, method: str, path: str, **kwargs):
    """As a person (alice) on either flavor: REST v3 on Cloud, v2 on Data Center."""
    version = "3" if sim.flavor == "cloud" else "2"
    return sim_call(sim, method, f"/rest/api/{version}{path}", auth=ALICE, **kwargs)


def status_of(sim, key: str) -> str | None:
    response = api(sim, "GET", f"/issue/{key}")
    return response.json()["fields"]["status"]["name"] if response.status_code == 200 else None


def walk(sim, key: str, *statuses: str) -> None:
    """A person moves the issue through `statuses`, each one transition away."""
    for status in statuses:
        listed = api(sim, "GET", f"/issue/{key}/transitions").json()["transitions"]
        transition = next(t for t in listed if t["to"]["name"] == status)
        response = api(
            sim, "POST", f"/issue/{key}/transitions", json={"transition": {"id": transition["id"]}}
        )
        assert response.status_code == 204, response.text


@pytest.fixture
def cloud_and_dc(sync_env, local_sim, partner_dc):
    """Our Cloud site and a Data Center partner, two-way; the sites' options restored after."""
    local, partner, org = connect(sync_env, local_sim, partner_dc, "datacenter", name="DC partner")
    try:
        yield local, partner, org
    finally:
        local.options.restore()
        partner.options.restore()


def create(sim, project: str, summary: str) -> str:
    fields = {"project": {"key": project}, "issuetype": {"name": "Task"}, "summary": summary}
    response = api(sim, "POST", "/issue", json={"fields": fields})
    assert response.status_code == 201, response.text
    return response.json()["key"]


def linked_key(side: str, key: str) -> str:
    other = "remote" if side == "local" else "local"

    def found():
        link = IssueLink.objects.filter(**{f"{side}_issue_key": key}, status="linked").first()
        return getattr(link, f"{other}_issue_key", None)

    return wait_until(found)


def assert_no_errors() -> None:
    assert not SyncEvent.objects.filter(result="error").exists(), list(
        SyncEvent.objects.filter(result="error").values_list("message", flat=True)
    )
    assert not WebhookDelivery.objects.filter(status__in=["dead", "failed"]).exists()


def test_a_push_walks_a_data_center_partners_multistep_workflow(cloud_and_dc):
    local, partner, org = cloud_and_dc
    partner.set_options(workflow="multistep")
    key = create(local, "LOC", "Ship it")
    remote_key = linked_key("local", key)
    wait_until(lambda: settled(local, partner))

    walk(local, key, "Done")  # one step here; three at the partner
    wait_until(lambda: status_of(partner, remote_key) == "Done")
    wait_until(lambda: settled(local, partner))
    fields = api(partner, "GET", f"/issue/{remote_key}").json()["fields"]
    assert fields["resolution"]["name"] == "Done"
    assert status_of(local, key) == "Done"
    assert writes(local, LOCAL_USER[0]) == 0  # the partner's steps did not bounce back
    assert_no_errors()

    walk(local, key, "In Progress")  # Done -> In Progress: Reopen, then Start Progress there
    wait_until(lambda: status_of(partner, remote_key) == "In Progress")
    wait_until(lambda: settled(local, partner))
    assert status_of(local, key) == "In Progress"
    assert writes(local, LOCAL_USER[0]) == 0
    assert_no_errors()


def test_a_pull_from_a_data_center_partner_walks_our_multistep_workflow(cloud_and_dc):
    local, partner, org = cloud_and_dc
    local.set_options(workflow="multistep")
    remote_key = create(partner, "REM", "Found by the partner")
    key = linked_key("remote", remote_key)
    wait_until(lambda: settled(local, partner))

    walk(partner, remote_key, "Done")  # Resolve Issue, straight from To Do
    wait_until(lambda: status_of(local, key) == "Done")
    wait_until(lambda: settled(local, partner))
    fields = api(local, "GET", f"/issue/{key}").json()["fields"]
    assert fields["resolution"]["name"] == "Done"
    assert status_of(partner, remote_key) == "Done"
    assert writes(partner, PARTNER_USER[0]) == 0  # our steps did not bounce to the partner
    assert_no_errors()


def test_a_transition_the_partner_refuses_is_recorded_once(cloud_and_dc):
    local, partner, org = cloud_and_dc
    partner.set_options(transition_required_fields=["customfield_10010"])
    key = create(local, "LOC", "Needs a reference to close")
    remote_key = linked_key("local", key)
    wait_until(lambda: settled(local, partner))

    walk(local, key, "Done")
    error = wait_until(lambda: SyncEvent.objects.filter(result="error").first())
    wait_until(lambda: settled(local, partner))
    assert "External Reference is required" in error.message
    assert status_of(partner, remote_key) == "To Do"
    delivery = error.delivery
    assert delivery.status == "done" and delivery.attempts == 1  # recorded, not retried
    assert not WebhookDelivery.objects.filter(status__in=["dead", "failed"]).exists()
    assert SyncEvent.objects.filter(result="error").count() == 1
