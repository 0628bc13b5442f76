"""Two-way sync end to end (seed Phase 4): two simulators, the web service, a real worker."""

from __future__ import annotations

import random
import time

import pytest
import requests

from jiraapi.adf import adf_to_wiki, wiki_to_adf
from organizations import services as org_services
from webhooks.models import WebhookDelivery

from .conftest import PARTNER_USER, WEBHOOK_SECRET, register_webhook, sim_call, wait_until

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

ALICE = ("alice@example.com", "alice-token")  # the people editing issues, on both sites
PARTNER_HOOK_SECRET = "partner-webhook-secret"
PRIORITIES = ["Highest", "High", "Medium", "Low", "Lowest"]
STATUSES = ["To Do", "In Progress", "Done"]


def as_alice(sim, method, path, **kwargs):
    return sim_call(sim, method, path, auth=ALICE, **kwargs)


@pytest.fixture
def two_way(sync_env, local_sim, partner_cloud):
    local, partner = local_sim, partner_cloud
    local.reset()
    partner.reset()
    org = org_services.organization_create(
        name="Partner",
        remote_base_url=partner.base_url,
        remote_flavor="cloud",
        remote_user=PARTNER_USER[0],
        remote_token=PARTNER_USER[1],
        sync_direction="bidirectional",
        remote_handshake_token=PARTNER_HOOK_SECRET,
        require_signature=True,
    )
    org_services.project_mapping_create(
        organization=org, local_project_key="LOC", remote_project_key="REM"
    )
    register_webhook(
        local, f"{sync_env.url}/webhooks/local/?secret={WEBHOOK_SECRET}", 'project = "LOC"'
    )
    # The partner's Jira admin registers their webhook as the admin page tells them to.
    hook = register_webhook(
        partner,
        f"{org.incoming_webhook_url}?secret={org.incoming_secret}",
        'project = "REM"',
        secret=PARTNER_HOOK_SECRET,
    )
    assert hook["filters"]["issue-related-events-section"] == 'project = "REM"'
    return local, partner, org


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


def snapshot(fields: dict) -> dict:
    return {
        "summary": fields["summary"],
        "priority": (fields.get("priority") or {}).get("name"),
        "labels": sorted(fields.get("labels") or []),
        "status": fields["status"]["name"],
    }


def writes(sim, user: str) -> int:
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


def run_rounds(local, partner, rounds: int, seed: int):
    rng = random.Random(seed)
    key = create_issue(local, "LOC", "Round robin", priority="Medium")
    remote_key = wait_until(lambda: only_issue(partner))["key"]
    wait_until(lambda: settled(local, partner), timeout=30)
    for sim in (local, partner):
        requests.delete(f"{sim.base_url}/_sim/calls", timeout=5)
    genuine = 0
    for n in range(rounds):
        sim, this_key = (local, key) if n % 2 == 0 else (partner, remote_key)
        other, other_key = (partner, remote_key) if sim is local else (local, key)
        before = snapshot(issue(sim, this_key))
        op = rng.choice(["summary", "priority", "labels", "status", "comment"])
        if op == "summary":
            as_alice(
                sim,
                "PUT",
                f"/rest/api/3/issue/{this_key}",
                json={"fields": {"summary": f"Round {n} summary"}},
            )
        elif op == "priority":
            choice = rng.choice([p for p in PRIORITIES if p != before["priority"]])
            as_alice(
                sim,
                "PUT",
                f"/rest/api/3/issue/{this_key}",
                json={"fields": {"priority": {"name": choice}}},
            )
        elif op == "labels":
            labels = rng.sample(["a", "b", "c", "d", "e"], rng.randint(0, 3)) + [f"r{n}"]
            as_alice(
                sim, "PUT", f"/rest/api/3/issue/{this_key}", json={"fields": {"labels": labels}}
            )
        elif op == "status":
            transition(sim, this_key, rng.choice([s for s in STATUSES if s != before["status"]]))
        else:
            as_alice(
                sim,
                "POST",
                f"/rest/api/3/issue/{this_key}/comment",
                json={"body": wiki_to_adf(f"Comment of round {n}")},
            )
        genuine += 1
        expected = snapshot(issue(sim, this_key))
        wait_until(lambda o=other, k=other_key, e=expected: snapshot(issue(o, k)) == e, timeout=30)
        if op == "comment":
            wait_until(
                lambda o=other, k=other_key, n=n: any(f"round {n}" in c for c in comments(o, k)),
                timeout=30,
            )
    wait_until(lambda: settled(local, partner), timeout=30)
    return key, remote_key, genuine


def assert_converged_without_ping_pong(local, partner, key, remote_key, genuine):
    assert snapshot(issue(local, key)) == snapshot(issue(partner, remote_key))
    local_comments = [c.split("wrote:")[-1].strip() for c in comments(local, key)]
    remote_comments = [c.split("wrote:")[-1].strip() for c in comments(partner, remote_key)]
    assert sorted(local_comments) == sorted(remote_comments)
    total_writes = writes(local, "sync@local.example") + writes(partner, PARTNER_USER[0])
    assert total_writes == genuine, f"{total_writes} writes for {genuine} genuine changes"
    deliveries = WebhookDelivery.objects.count()
    time.sleep(5)
    assert WebhookDelivery.objects.count() == deliveries, "deliveries kept coming: ping-pong"
    again = writes(local, "sync@local.example") + writes(partner, PARTNER_USER[0])
    assert again == total_writes, "writes kept coming: ping-pong"
    assert WebhookDelivery.objects.filter(status__in=["dead", "failed"]).count() == 0


def test_fifty_random_rounds_converge_with_one_write_per_change(two_way):
    local, partner, org = two_way
    key, remote_key, genuine = run_rounds(local, partner, rounds=50, seed=7)
    assert_converged_without_ping_pong(local, partner, key, remote_key, genuine)


def test_fifty_rounds_with_duplicated_and_reordered_webhooks(two_way):
    local, partner, org = two_way
    for sim in (local, partner):
        response = requests.post(
            f"{sim.base_url}/_sim/faults",
            json={"webhook_duplicate_ratio": 0.3, "webhook_reorder_window": 3, "seed": 11},
            timeout=5,
        )
        assert response.status_code == 200, response.text
    key, remote_key, genuine = run_rounds(local, partner, rounds=50, seed=13)
    assert_converged_without_ping_pong(local, partner, key, remote_key, genuine)
