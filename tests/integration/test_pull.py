"""Reverse sync details: field directions, local creation, the partner delete policy."""

from __future__ import annotations

import pytest
import requests

from jiraapi.adf import adf_to_wiki
from organizations import services as org_services
from sync.models import IssueLink

pytestmark = pytest.mark.django_db


def test_a_push_only_field_does_not_come_back_and_a_pull_only_field_does_not_go(world):
    org_services.field_mapping_create(
        organization=world.org, local_field="summary", remote_field="summary", direction="push"
    )
    org_services.field_mapping_create(
        organization=world.org, local_field="labels", remote_field="labels", direction="pull"
    )
    world.edit("partner", summary="partner summary", labels=["from-partner"])
    world.feed_all("partner")
    local = world.fields("local")
    assert local["summary"] == "A"  # push only: the partner's summary stays there
    assert local["labels"] == ["from-partner"]
    world.feed_all("local")
    world.edit("local", labels=["from-local"], summary="local summary")
    world.feed_all("local")
    partner = world.fields("partner")
    assert partner["labels"] == ["from-partner"]  # pull only: ours stay here
    assert partner["summary"] == "local summary"


def test_value_maps_apply_both_ways(world):
    org_services.field_mapping_create(
        organization=world.org,
        local_field="priority",
        remote_field="priority",
        value_map={"High": "Highest", "Low": "Lowest"},
    )
    world.edit("local", priority={"name": "High"})
    world.feed_all("local")
    assert world.fields("partner")["priority"]["name"] == "Highest"
    world.feed_all("partner")
    world.edit("partner", priority={"name": "Lowest"})
    world.feed_all("partner")
    assert world.fields("local")["priority"]["name"] == "Low"


def test_a_new_partner_issue_is_created_locally_once_with_a_link_back(world):
    created = world.api(
        "partner",
        "POST",
        "/issue",
        json={
            "fields": {
                "project": {"key": "REM"},
                "issuetype": {"name": "Bug"},
                "summary": "From the partner",
            }
        },
    )
    assert world.feed_all("partner") == ["done"]
    link = IssueLink.objects.get(remote_issue_id=created["id"])
    assert link.origin == "remote" and link.local_issue_key.startswith("LOC-")
    local = world.api("local", "GET", f"/issue/{link.local_issue_key}")
    assert local["fields"]["summary"] == "From the partner"
    links = world.api("local", "GET", f"/issue/{link.local_issue_key}/remotelink")
    assert any(created["key"] in link["object"]["url"] for link in links)
    assert set(world.feed_all("local")) == {"echo"}  # our create, coming back
    assert IssueLink.objects.count() == 2


def test_local_creation_can_be_switched_off(world):
    mapping = world.org.project_mappings.get()
    org_services.project_mapping_update(mapping=mapping, data={"create_local_issues": False})
    world.api(
        "partner",
        "POST",
        "/issue",
        json={
            "fields": {
                "project": {"key": "REM"},
                "issuetype": {"name": "Task"},
                "summary": "Stays there",
            }
        },
    )
    world.feed_all("partner")
    assert IssueLink.objects.filter(local_issue_id=None).count() == 1
    assert world.total_writes() == 0


@pytest.mark.parametrize("policy", ["comment", "transition", "delete"])
def test_a_partner_delete_follows_the_policy(world, policy):
    org_services.organization_update(
        organization=world.org,
        data={"remote_delete_policy": policy, "remote_delete_status": "Done"},
    )
    world.api("partner", "DELETE", f"/issue/{world.keys['partner']}")
    assert world.feed_all("partner")[0] == "done"
    response = (
        world.api("local", "GET", f"/issue/{world.keys['local']}/comment")
        if policy != "delete"
        else None
    )
    if policy == "comment":
        texts = [adf_to_wiki(c["body"]) for c in response["comments"]]
        assert any("was deleted" in t for t in texts)
    elif policy == "transition":
        assert world.fields("local")["status"]["name"] == "Done"
    else:
        gone = requests.get(
            f"{world.sims['local'].base_url}/rest/api/3/issue/{world.keys['local']}",
            auth=("alice@example.com", "alice-token"),
            timeout=5,
        )
        assert gone.status_code == 404
    assert IssueLink.objects.get(local_issue_key=world.keys["local"]).status == "deleted"
    world.reset_calls()
    world.feed_all("local")  # our own writes coming back: the pair is closed, nothing to do
    assert world.total_calls() == 0


def _add_user(world, side: str, email: str) -> str:
    response = requests.post(
        f"{world.sims[side].base_url}/_sim/users", json={"email": email, "token": "t"}, timeout=5
    )
    assert response.status_code == 201, response.text
    return response.json()["accountId"]


def test_assignees_follow_by_email_or_by_the_value_map_and_unknown_ones_are_left_alone(world):
    alice = world.api("local", "GET", "/myself", who=("alice@example.com", "alice-token"))
    world.edit("local", assignee={"accountId": alice["accountId"]})
    world.feed_all("local")
    partner_assignee = world.fields("partner")["assignee"]
    assert partner_assignee and partner_assignee["displayName"] == alice["displayName"]
    world.feed_all("partner")

    carol = _add_user(world, "local", "carol@local.example")  # unknown at the partner
    world.edit("local", assignee={"accountId": carol})
    world.feed_all("local")
    # No counterpart: the partner's assignee is left alone (the default policy), not cleared.
    assert world.fields("partner")["assignee"]["accountId"] == partner_assignee["accountId"]
    world.feed_all("partner")

    bob = _add_user(world, "partner", "bob@partner.example")
    org_services.field_mapping_create(
        organization=world.org,
        local_field="assignee",
        remote_field="assignee",
        direction="push",
        value_map={carol: bob},
    )
    world.edit("local", assignee={"accountId": alice["accountId"]})
    world.feed_all("local")
    world.edit("local", assignee={"accountId": carol})
    world.feed_all("local")
    assert world.fields("partner")["assignee"]["accountId"] == bob


def test_a_configured_custom_field_syncs(world):
    org_services.field_mapping_create(
        organization=world.org, local_field="customfield_10010", remote_field="customfield_10010"
    )
    world.edit("local", customfield_10010="EXT-42")
    world.feed_all("local")
    assert world.fields("partner")["customfield_10010"] == "EXT-42"
    assert set(world.feed_all("partner")) == {"echo"}
    world.edit("partner", customfield_10010="EXT-43")
    world.feed_all("partner")
    assert world.fields("local")["customfield_10010"] == "EXT-43"
