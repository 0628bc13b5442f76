"""The PyPI ``jira`` client drives both flavors as it would drive a real site."""

from __future__ import annotations

import pytest
from jira import JIRA
from jira.exceptions import JIRAError


@pytest.fixture
def client(sim):
    if sim.flavor == "cloud":
        return JIRA(server=sim.base_url, basic_auth=sim.auth)
    return JIRA(server=sim.base_url, token_auth=sim.token)


def test_client_sees_the_deployment_type(client, sim):
    assert client._is_cloud == (sim.flavor == "cloud")
    assert client.myself()["emailAddress"] == "admin@example.com"


def test_create_edit_transition_comment_search_delete(client, sim):
    issue = client.create_issue(
        project="ENG",
        summary="Printer on fire",
        description="It is *really* on fire",
        issuetype={"name": "Bug"},
        priority={"name": "High"},
        labels=["hardware"],
    )
    assert issue.key == "ENG-1"
    assert issue.fields.status.name == "To Do"
    assert issue.fields.priority.name == "High"
    assert issue.fields.description == "It is *really* on fire"

    issue.update(fields={"summary": "Printer still on fire", "labels": ["hardware", "urgent"]})
    issue = client.issue("ENG-1")
    assert issue.fields.summary == "Printer still on fire"
    assert issue.fields.labels == ["hardware", "urgent"]

    names = {t["to"]["name"]: t["name"] for t in client.transitions(issue)}
    assert set(names) == {"In Progress", "Done"}
    client.transition_issue(issue, names["Done"])
    issue = client.issue("ENG-1")
    assert issue.fields.status.name == "Done"
    assert issue.fields.resolution.name == "Done"
    assert issue.fields.resolutiondate

    comment = client.add_comment(issue, "Put out with a fire blanket")
    assert client.comment("ENG-1", comment.id).body == "Put out with a fire blanket"
    comment.update(body="Put out with a blanket")
    assert [c.body for c in client.comments("ENG-1")] == ["Put out with a blanket"]

    client.create_issue(project="ENG", summary="Second", issuetype={"name": "Task"})
    found = client.search_issues("project = ENG AND status = Done ORDER BY key ASC")
    assert [i.key for i in found] == ["ENG-1"]
    found = client.search_issues("project = ENG ORDER BY key ASC", maxResults=False)
    assert [i.key for i in found] == ["ENG-1", "ENG-2"]

    comment.delete()
    assert client.comments("ENG-1") == []
    issue.delete()
    with pytest.raises(JIRAError) as err:
        client.issue("ENG-1")
    assert err.value.status_code == 404


def test_client_gets_jira_errors(client):
    with pytest.raises(JIRAError) as err:
        client.create_issue(project="ENG", summary="x", issuetype={"name": "Nope"})
    assert err.value.status_code == 400
    issue = client.create_issue(project="ENG", summary="x", issuetype={"name": "Task"})
    with pytest.raises(JIRAError) as err:
        issue.update(fields={"priority": {"name": "Urgentest"}})
    assert err.value.status_code == 400
    assert "priority" in err.value.response.json()["errors"]


def test_search_pages_through_many_issues(client, sim):
    for n in range(7):
        client.create_issue(project="ENG", summary=f"issue {n}", issuetype={"name": "Task"})
    found = client.search_issues("project = ENG ORDER BY created ASC", maxResults=False)
    assert [i.fields.summary for i in found] == [f"issue {n}" for n in range(7)]


def test_client_assigns_by_account_id_or_name(client, sim):
    issue = client.create_issue(project="ENG", summary="x", issuetype={"name": "Task"})
    dev = sim.store.find_user("dev@example.com")
    ident = dev["accountId"] if sim.flavor == "cloud" else dev["name"]
    client.assign_issue(issue, ident)
    assert client.issue(issue.key).fields.assignee.displayName == dev["displayName"]


def test_bulk_create_reports_failures_per_element(client):
    made = client.create_issues(
        [
            {"project": {"key": "ENG"}, "summary": "a", "issuetype": {"name": "Task"}},
            {
                "project": {"key": "ENG"},
                "summary": "b",
                "issuetype": {"name": "Task"},
                "priority": {"name": "Nope"},
            },
        ]
    )
    assert made[0]["status"] == "Success" and made[0]["issue"].key == "ENG-1"
    assert made[1]["status"] == "Error" and "priority" in str(made[1]["error"])
