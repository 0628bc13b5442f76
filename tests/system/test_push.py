"""Push sync end to end: local simulator -> our webhook -> Celery worker -> partner simulator."""

from __future__ import annotations

import pytest

from jiraapi.adf import wiki_to_adf
from organizations import services as org_services
from webhooks.models import WebhookDelivery

from .conftest import (
    PARTNER_USER,
    WEBHOOK_SECRET,
    register_webhook,
    sim_call,
    wait_until,
)

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


def make_org(partner, **fields):
    org = org_services.organization_create(
        name="Partner",
        remote_base_url=partner.base_url,
        remote_flavor=partner.flavor,
        remote_user=PARTNER_USER[0],
        remote_token=PARTNER_USER[1],
        **fields,
    )
    org_services.project_mapping_create(
        organization=org, local_project_key="LOC", remote_project_key="REM"
    )
    org_services.field_mapping_create(
        organization=org,
        local_field="priority",
        remote_field="priority",
        value_map={"High": "Highest"},
    )
    return org


@pytest.fixture
def push_setup(sync_env, local_sim, request):
    partner = request.getfixturevalue(request.param)
    local_sim.reset()
    partner.reset()
    register_webhook(
        local_sim,
        f"{sync_env.url}/webhooks/local/?secret={WEBHOOK_SECRET}",
        'project = "LOC"',
    )
    org = make_org(partner)
    return local_sim, partner, org


def local_create(sim, summary: str, **fields) -> dict:
    body = {
        "fields": {
            "project": {"key": "LOC"},
            "issuetype": {"name": "Task"},
            "summary": summary,
            **fields,
        }
    }
    response = sim_call(sim, "POST", "/rest/api/3/issue", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def partner_issues(partner) -> list[dict]:
    api = "3" if partner.flavor == "cloud" else "2"
    if api == "3":
        response = sim_call(
            partner,
            "POST",
            "/rest/api/3/search/jql",
            json={"jql": "project = REM", "fields": ["*all"], "maxResults": 100},
        )
    else:
        response = sim_call(
            partner,
            "POST",
            "/rest/api/2/search",
            json={"jql": "project = REM", "fields": ["*all"], "maxResults": 100},
        )
    assert response.status_code == 200, response.text
    return response.json()["issues"]


def partner_issue(partner, key: str) -> dict | None:
    api = "3" if partner.flavor == "cloud" else "2"
    response = sim_call(partner, "GET", f"/rest/api/{api}/issue/{key}")
    return response.json() if response.status_code == 200 else None


def partner_comments(partner, key: str) -> list[dict]:
    api = "3" if partner.flavor == "cloud" else "2"
    return sim_call(partner, "GET", f"/rest/api/{api}/issue/{key}/comment").json()["comments"]


def text_of(body) -> str:
    if isinstance(body, dict):
        from jiraapi.adf import adf_to_wiki

        return adf_to_wiki(body)
    return body or ""


@pytest.mark.parametrize("push_setup", ["partner_cloud", "partner_dc"], indirect=True)
def test_local_changes_show_up_at_the_partner(push_setup):
    local, partner, org = push_setup
    created = local_create(
        local,
        "First shared issue",
        description=wiki_to_adf("Hello *partner*\n\n* one\n* two"),
        priority={"name": "High"},
        labels=["shared", "alpha"],
        duedate="2026-12-24",
    )
    key = created["key"]

    issues = wait_until(lambda: partner_issues(partner))
    assert len(issues) == 1
    remote_key = issues[0]["key"]
    fields = partner_issue(partner, remote_key)["fields"]
    assert fields["summary"] == "First shared issue"
    assert fields["priority"]["name"] == "Highest"  # by the value map
    assert sorted(fields["labels"]) == ["alpha", "shared"]
    assert fields["duedate"] == "2026-12-24"
    description = text_of(fields["description"])
    assert "*partner*" in description and "* one" in description
    if partner.flavor == "datacenter":
        assert isinstance(fields["description"], str)  # wiki markup on Data Center

    # Edit.
    sim_call(
        local,
        "PUT",
        f"/rest/api/3/issue/{key}",
        json={"fields": {"summary": "Renamed", "labels": ["shared"]}},
    )
    wait_until(lambda: partner_issue(partner, remote_key)["fields"]["summary"] == "Renamed")
    assert partner_issue(partner, remote_key)["fields"]["labels"] == ["shared"]

    # Transition.
    transitions = sim_call(local, "GET", f"/rest/api/3/issue/{key}/transitions").json()
    to_progress = next(t for t in transitions["transitions"] if t["to"]["name"] == "In Progress")
    sim_call(
        local,
        "POST",
        f"/rest/api/3/issue/{key}/transitions",
        json={"transition": {"id": to_progress["id"]}},
    )
    wait_until(
        lambda: partner_issue(partner, remote_key)["fields"]["status"]["name"] == "In Progress"
    )

    # Comments: add, edit, delete.
    comment = sim_call(
        local,
        "POST",
        f"/rest/api/3/issue/{key}/comment",
        json={"body": wiki_to_adf("A first comment")},
    ).json()
    copies = wait_until(lambda: partner_comments(partner, remote_key))
    assert "A first comment" in text_of(copies[0]["body"])
    assert "wrote:" in text_of(copies[0]["body"])  # attributed to its author
    sim_call(
        local,
        "PUT",
        f"/rest/api/3/issue/{key}/comment/{comment['id']}",
        json={"body": wiki_to_adf("An edited comment")},
    )
    wait_until(
        lambda: "An edited comment" in text_of(partner_comments(partner, remote_key)[0]["body"])
    )
    sim_call(local, "DELETE", f"/rest/api/3/issue/{key}/comment/{comment['id']}")
    wait_until(lambda: partner_comments(partner, remote_key) == [])

    # Delete: with the (non-default) policy that deletes the partner's copy too.
    org_services.organization_update(organization=org, data={"local_delete_policy": "delete"})
    sim_call(local, "DELETE", f"/rest/api/3/issue/{key}")
    wait_until(lambda: partner_issue(partner, remote_key) is None)
    assert partner_issues(partner) == []
    assert WebhookDelivery.objects.filter(status="dead").count() == 0
