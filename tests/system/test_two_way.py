"""Two-way sync end to end (seed Phase 4): two simulators, the web service, a real worker."""

from __future__ import annotations

import pytest
import requests

from jiraapi.adf import adf_to_wiki, wiki_to_adf
from jirasim.options import REAL_JIRA
from organizations import services as org_services
from webhooks.models import WebhookDelivery

from .conftest import (
    LOCAL_USER,
    PARTNER_USER,
    connect,
    sim_call,
    wait_until,
)
from .rounds import OPS, WORKLOG_OPS, Rounds, Site, assert_converged_without_ping_pong

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

ALICE = ("alice@example.com", "alice-token")  # the people editing issues, on both sites


def as_alice(sim, method, path, **kwargs):
    return sim_call(sim, method, path, auth=ALICE, **kwargs)


@pytest.fixture
def two_way(sync_env, local_sim, partner_cloud):
    return connect(sync_env, local_sim, partner_cloud, "cloud")


@pytest.fixture
def two_way_dc(sync_env, local_sim, partner_dc):
    return connect(sync_env, local_sim, partner_dc, "datacenter")


def create_issue(sim, project, summary, issuetype="Task", priority=None) -> str:
    fields = {"project": {"key": project}, "issuetype": {"name": issuetype}, "summary": summary}
    if priority:
        fields["priority"] = {"name": priority}
    return as_alice(sim, "POST", "/rest/api/3/issue", json={"fields": fields}).json()["key"]


def issue(sim, key):
    response = as_alice(sim, "GET", f"/rest/api/3/issue/{key}")
    return response.json()["fields"] if response.status_code == 200 else None


def comments(sim, key) -> list[str]:
    body = as_alice(sim, "GET", f"/rest/api/3/issue/{key}/comment").json()
    return [adf_to_wiki(c["body"]) for c in body["comments"]]


def only_issue(sim) -> dict | None:
    project = "LOC" if sim.store.projects.get("LOC") else "REM"
    body = as_alice(
        sim,
        "POST",
        "/rest/api/3/search/jql",
        json={"jql": f"project = {project} ORDER BY key", "fields": ["summary"]},
    ).json()
    return body["issues"][0] if body.get("issues") else None


def transition(sim, key, status):
    transitions = as_alice(sim, "GET", f"/rest/api/3/issue/{key}/transitions").json()
    target = next(t for t in transitions["transitions"] if t["to"]["name"] == status)
    response = as_alice(
        sim,
        "POST",
        f"/rest/api/3/issue/{key}/transitions",
        json={"transition": {"id": target["id"]}},
    )
    assert response.status_code == 204, response.text


def writes(sim, user: str) -> int:
    """Successful REST writes `user` made at `sim` (since its call log was last cleared)."""
    calls = requests.get(f"{sim.base_url}/_sim/calls", timeout=5).json()["calls"]
    return sum(
        1
        for c in calls
        if c.get("user") == user
        and c["method"] in ("POST", "PUT", "DELETE")
        and c["path"].startswith("/rest/api")
        and c["status"] < 400
    )


def settled(local, partner) -> bool:
    idle = all(
        requests.get(f"{s.base_url}/_sim/idle?timeout=0.2", timeout=5).status_code == 200
        for s in (local, partner)
    )
    busy = WebhookDelivery.objects.filter(status__in=["pending", "processing", "failed"])
    return idle and not busy.exists()


def test_create_locally_then_edit_at_the_partner(two_way):
    local, partner, org = two_way
    key = as_alice(
        local,
        "POST",
        "/rest/api/3/issue",
        json={
            "fields": {
                "project": {"key": "LOC"},
                "issuetype": {"name": "Task"},
                "summary": "Shared work",
                "description": wiki_to_adf("Plan"),
            }
        },
    ).json()["key"]
    remote_key = wait_until(lambda: only_issue(partner))["key"]

    as_alice(
        partner,
        "PUT",
        f"/rest/api/3/issue/{remote_key}",
        json={"fields": {"summary": "Shared work (partner edit)", "labels": ["from-partner"]}},
    )
    wait_until(lambda: issue(local, key)["summary"] == "Shared work (partner edit)")
    assert issue(local, key)["labels"] == ["from-partner"]
    transition(partner, remote_key, "In Progress")
    wait_until(lambda: issue(local, key)["status"]["name"] == "In Progress")
    as_alice(
        partner,
        "POST",
        f"/rest/api/3/issue/{remote_key}/comment",
        json={"body": wiki_to_adf("Hello from the partner")},
    )
    wait_until(lambda: any("Hello from the partner" in c for c in comments(local, key)))
    wait_until(lambda: settled(local, partner))
    org.refresh_from_db()
    assert org.handshake_status == "active"
    assert WebhookDelivery.objects.filter(status__in=["dead", "failed"]).count() == 0
    assert WebhookDelivery.objects.filter(status="echo").exists()


def test_a_partner_issue_is_created_locally(two_way):
    local, partner, org = two_way
    create_issue(partner, "REM", "Found by the partner", issuetype="Bug", priority="High")
    local_issue = wait_until(lambda: only_issue(local))
    fields = issue(local, local_issue["key"])
    assert fields["summary"] == "Found by the partner"
    assert fields["priority"]["name"] == "High"
    assert fields["issuetype"]["name"] == "Bug"
    wait_until(lambda: settled(local, partner))
    # Our create at the local site came back as a webhook: an echo, not a second partner issue.
    body = as_alice(partner, "POST", "/rest/api/3/search/jql", json={"jql": "project = REM"})
    assert len(body.json()["issues"]) == 1


def start_rounds(local, partner, **kwargs) -> Rounds:
    rounds = Rounds(Site(local, LOCAL_USER[0]), Site(partner, PARTNER_USER[0]), **kwargs)
    for site in (rounds.local, rounds.partner):
        site.add_people()
    rounds.start()
    return rounds


def test_fifty_random_rounds_converge_with_one_write_per_change(two_way):
    local, partner, org = two_way
    rounds = start_rounds(local, partner)
    rounds.run(50, seed=7)
    assert_converged_without_ping_pong(rounds)


def test_fifty_rounds_with_duplicated_and_reordered_webhooks(two_way):
    local, partner, org = two_way
    org_services.organization_update(organization=org, data={"sync_worklogs": True})
    for sim in (local, partner):
        response = requests.post(
            f"{sim.base_url}/_sim/faults",
            json={"webhook_duplicate_ratio": 0.3, "webhook_reorder_window": 3, "seed": 11},
            timeout=5,
        )
        assert response.status_code == 200, response.text
    rounds = start_rounds(local, partner, ops=(*OPS, *WORKLOG_OPS))
    rounds.run(50, seed=13)
    assert_converged_without_ping_pong(rounds)


def test_fifty_rounds_with_a_data_center_partner(two_way_dc):
    """Pulled from and pushed to a Data Center partner (REST v2, wiki markup, users by name),
    worklogs included."""
    local, partner, org = two_way_dc
    org_services.organization_update(organization=org, data={"sync_worklogs": True})
    rounds = start_rounds(local, partner, ops=(*OPS, *WORKLOG_OPS))
    rounds.run(50, seed=21)
    assert_converged_without_ping_pong(rounds)


# Jira as it is, on both sites (jirasim.options.REAL_JIRA): a workflow where statuses are
# several steps apart (with a transition screen, the resolution its own change), e-mails
# hidden, components with each site's own ids, Cloud rich text kept as ADF, Data Center
# text with CRLF line ends, comments paged.
REAL_JIRA_BEHAVIOUR = REAL_JIRA
REAL_OPS = (*OPS, "components", "copy_edit", "copy_delete")


@pytest.fixture
def real_jira_dc(sync_env, local_sim, partner_dc):
    local, partner, org = connect(sync_env, local_sim, partner_dc, "datacenter")
    try:
        for sim in (local, partner):
            sim.set_options(**REAL_JIRA_BEHAVIOUR)
        yield local, partner, org
    finally:
        for sim in (local, partner):
            sim.options.restore()


def test_fifty_rounds_against_real_jira_behaviour(real_jira_dc):
    """The rounds against a Data Center partner with Jira's real behaviour: people walk the
    multistep workflow (each step a change the sync carries), assignees cross by the
    organization's user map (no e-mail is visible), components cross by name."""
    local, partner, org = real_jira_dc
    people = [ALICE[0], "bob@example.com"]
    rounds = Rounds(Site(local, LOCAL_USER[0]), Site(partner, PARTNER_USER[0]), ops=REAL_OPS)
    for site in (rounds.local, rounds.partner):
        site.add_people()
    org_services.organization_update(
        organization=org,
        data={"user_map": {local.user(e)["accountId"]: partner.user(e)["name"] for e in people}},
    )
    org_services.field_mapping_create(
        organization=org, local_field="components", remote_field="components"
    )
    rounds.start()
    rounds.run(50, seed=31)
    assert_converged_without_ping_pong(rounds)
