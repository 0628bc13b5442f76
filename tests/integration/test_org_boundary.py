"""Trust at the organization boundary (issue 11): what a partner's deliveries may make the
engine do, and what leaves for a partner. Real simulators over HTTP, the real task."""

from __future__ import annotations

import json
import time

import pytest
import requests

from jiraapi.adf import adf_to_wiki
from jirasim import JiraSim
from organizations import services as org_services
from sync import engine
from sync.jobs import job_build
from sync.models import IssueLink, SyncEvent
from webhooks.models import WebhookDelivery
from webhooks.tasks import process_delivery_task

from .test_loop_prevention import ALICE

pytestmark = pytest.mark.django_db


def _issue_updated(hooks: list[dict]) -> dict:
    return next(h for h in hooks if json.loads(h["raw"])["webhookEvent"] == "jira:issue_updated")


# --- clock skew (item 6) -------------------------------------------------------------------------


@pytest.mark.parametrize("skew", ["60 s in the future", "in seconds", "30 days old"])
def test_a_skewed_timestamp_never_fails_the_delivery_after_the_write(world, skew):
    world.edit("local", summary=f"skewed {skew}")
    hook = _issue_updated(world.take("local"))
    payload = json.loads(hook["raw"])
    now_ms = int(time.time() * 1000)
    payload["timestamp"] = {
        "60 s in the future": now_ms + 60_000,
        "in seconds": now_ms // 1000,
        "30 days old": now_ms - 30 * 86_400_000,
    }[skew]
    assert world.feed("local", hook, body=json.dumps(payload).encode()) == "done"
    assert world.fields("partner")["summary"] == f"skewed {skew}"
    written = SyncEvent.objects.filter(result="written").latest("pk")
    assert written.latency_ms is not None and 0 <= written.latency_ms <= 2**31 - 1


# --- NUL characters (weak point) ----------------------------------------------------------------


def test_a_nul_in_a_summary_is_stored_safely_and_does_not_loop(world):
    world.edit("local", summary="nul\u0000inside")
    assert world.feed_all("local") == ["done"]
    link = IssueLink.objects.get()
    assert "\\u0000" not in json.dumps(link.state)
    assert world.fields("partner")["summary"] == "nulinside"
    world.reset_calls()
    assert set(world.feed_all("partner")) == {"echo"}
    assert world.total_writes() == 0


def test_a_nul_in_an_error_from_a_partner_is_recorded_safely(world):
    job = job_build(
        project_mapping=world.org.project_mappings.get(), way="push", issue_id="1", issue_key="X"
    )
    change = engine.Change(action="update", errors=["summary: bad\u0000value"])
    engine.record(job, None, change)
    assert SyncEvent.objects.latest("pk").message == "summary: badvalue"


# --- deletes (item 2) -----------------------------------------------------------------------------


def _post_incoming(client, org, body: bytes) -> WebhookDelivery:
    """A partner delivery through the real endpoint, then the worker's task."""
    response = client.post(
        f"/webhooks/incoming/{org.public_id}/?secret={org.incoming_secret}",
        data=body,
        content_type="application/json",
    )
    assert response.status_code == 202, response.content
    delivery = WebhookDelivery.objects.latest("pk")
    process_delivery_task.apply(args=[delivery.pk])
    delivery.refresh_from_db()
    return delivery


def _forged_delete(world, side: str) -> bytes:
    """A valid-looking `jira:issue_deleted` for the pair's issue on `side`, which still exists."""
    world.edit(side, labels=["x"])
    payload = json.loads(_issue_updated(world.take(side))["raw"])
    payload["webhookEvent"] = "jira:issue_deleted"
    payload.pop("changelog", None)
    payload.pop("issue_event_type_name", None)
    return json.dumps(payload).encode()


def _exists(sim, key: str, auth=ALICE) -> bool:
    response = requests.get(f"{sim.base_url}/rest/api/3/issue/{key}", auth=auth, timeout=5)
    assert response.status_code in (200, 404), response.text
    return response.status_code == 200


@pytest.mark.parametrize("policy", ["comment", "delete", "transition", "unlink"])
def test_a_forged_partner_delete_is_refused_and_changes_nothing(client, world, policy):
    org_services.organization_update(
        organization=world.org,
        data={"remote_delete_policy": policy, "remote_delete_status": "Done"},
    )
    body = _forged_delete(world, "partner")
    world.reset_calls()
    delivery = _post_incoming(client, world.org, body)
    assert delivery.status == "ignored"
    assert "refused" in delivery.last_error and "still exists" in delivery.last_error
    assert world.total_writes() == 0
    assert _exists(world.sims["local"], world.keys["local"])
    assert world.api("local", "GET", f"/issue/{world.keys['local']}/comment")["total"] == 0
    assert IssueLink.objects.get().status == "linked"
    refused = SyncEvent.objects.latest("pk")
    assert refused.result == "skipped" and "refused" in refused.message


def test_a_forged_local_delete_is_refused_too(world):
    org_services.organization_update(organization=world.org, data={"local_delete_policy": "delete"})
    body = _forged_delete(world, "local")
    world.reset_calls()
    assert world.feed("local", {"headers": {}}, body=body) == "ignored"
    assert world.total_writes() == 0
    assert _exists(world.sims["partner"], world.keys["partner"])
    assert IssueLink.objects.get().status == "linked"


def test_a_confirmed_partner_delete_can_just_unlink(world):
    org_services.organization_update(
        organization=world.org, data={"remote_delete_policy": "unlink"}
    )
    world.api("partner", "DELETE", f"/issue/{world.keys['partner']}")
    assert world.feed_all("partner") == ["done"]
    assert world.total_writes() == 0
    assert world.api("local", "GET", f"/issue/{world.keys['local']}/comment")["total"] == 0
    assert IssueLink.objects.get().status == "deleted"


@pytest.mark.parametrize("policy", [None, "comment", "transition", "delete", "unlink"])
def test_a_local_delete_follows_the_push_delete_policy(world, policy):
    if policy:
        org_services.organization_update(
            organization=world.org,
            data={"local_delete_policy": policy, "local_delete_status": "Done"},
        )
    world.api("local", "DELETE", f"/issue/{world.keys['local']}")
    assert world.feed_all("local") == ["done"]
    partner_key = world.keys["partner"]
    still_there = _exists(world.sims["partner"], partner_key)
    assert still_there == (policy != "delete")
    comments = world.api("partner", "GET", f"/issue/{partner_key}/comment") if still_there else {}
    texts = [adf_to_wiki(c["body"]) for c in comments.get("comments", [])]
    if policy in (None, "comment"):  # the default: the partner keeps its copy, told why
        assert any("was deleted" in t for t in texts)
    if policy == "transition":
        assert world.fields("partner")["status"]["name"] == "Done"
    if policy == "unlink":
        assert not texts and world.total_writes() == 0
    assert IssueLink.objects.get().status == "deleted"
    world.reset_calls()
    world.feed_all("partner")  # our own writes (or delete) coming back: nothing to do
    assert world.total_writes() == 0


B_SYNC = ("sync@b.example", "b-tok")


@pytest.fixture
def partner_b(world):
    """A second partner organization (push) sharing the world's local project."""
    sim = JiraSim("cloud", ["REB:Partner B"], [":".join(B_SYNC), ":".join(ALICE)])
    sim.start()
    org = org_services.organization_create(
        name="Partner B",
        remote_base_url=sim.base_url,
        remote_user=B_SYNC[0],
        remote_token=B_SYNC[1],
    )
    org_services.project_mapping_create(
        organization=org, local_project_key="LOC", remote_project_key="REB"
    )
    yield sim, org
    sim.stop()


def _b_writes(sim) -> int:
    log = requests.get(f"{sim.base_url}/_sim/calls", timeout=5).json()["calls"]
    return sum(1 for c in log if c.get("user") == B_SYNC[0] and c["method"] != "GET")


def test_a_partner_delete_never_reaches_another_partners_copy(world, partner_b):
    sim_b, org_b = partner_b
    world.edit("local", summary="shared with A and B")
    assert world.feed_all("local") == ["done"]
    b_key = IssueLink.objects.get(organization=org_b).remote_issue_key
    assert _exists(sim_b, b_key)
    world.feed_all("partner")
    # The worst case: A's deletes delete ours, and B asked for our deletes to delete theirs.
    org_services.organization_update(
        organization=world.org, data={"remote_delete_policy": "delete"}
    )
    org_services.organization_update(organization=org_b, data={"local_delete_policy": "delete"})
    requests.delete(f"{sim_b.base_url}/_sim/calls", timeout=5)

    world.api("partner", "DELETE", f"/issue/{world.keys['partner']}")
    assert world.feed_all("partner") == ["done"]
    assert not _exists(world.sims["local"], world.keys["local"])  # A's policy: ours deleted
    world.feed_all("local")  # our own delete coming back

    assert _exists(sim_b, b_key)
    assert _b_writes(sim_b) == 0
    b_link = IssueLink.objects.get(organization=org_b)
    assert b_link.status == "deleted"  # B's pair is closed, B's issue left alone
    note = SyncEvent.objects.filter(organization=org_b).latest("pk")
    assert "Partner" in note.message and "not" in note.message


# --- the new settings, in the API and the admin ------------------------------------------------


def test_the_boundary_settings_default_to_the_safe_side_and_are_set_through_the_api(api, make_org):
    make_org(name="Org", public_id="org-9")
    body = api.get("/api/organizations/org-9/").json()
    assert body["localDeletePolicy"] == "comment"
    assert body["copyRestrictedComments"] is False and body["relayPartnerIssues"] is False
    changed = api.patch(
        "/api/organizations/org-9/",
        {
            "localDeletePolicy": "unlink",
            "remoteDeletePolicy": "unlink",
            "copyRestrictedComments": True,
            "relayPartnerIssues": True,
        },
        format="json",
    )
    assert changed.status_code == 200, changed.content
    body = changed.json()
    assert (body["localDeletePolicy"], body["remoteDeletePolicy"]) == ("unlink", "unlink")
    assert body["copyRestrictedComments"] is True and body["relayPartnerIssues"] is True
    refused = api.patch(
        "/api/organizations/org-9/", {"localDeletePolicy": "transition"}, format="json"
    )
    assert refused.status_code == 400
    assert "localDeleteStatus" in refused.json()


def test_the_admin_page_shows_the_boundary_settings(admin_client, make_org):
    org = make_org()
    page = admin_client.get(f"/admin/organizations/organization/{org.pk}/change/").content.decode()
    for name in ("local_delete_policy", "copy_restricted_comments", "relay_partner_issues"):
        assert f'name="{name}"' in page


# --- relaying one partner's issues to another (item 8) ---------------------------------------


def _partner_a_creates(world) -> IssueLink:
    created = world.api(
        "partner",
        "POST",
        "/issue",
        json={
            "fields": {
                "project": {"key": "REM"},
                "issuetype": {"name": "Task"},
                "summary": "A's confidential issue",
            }
        },
    )
    assert world.feed_all("partner") == ["done"]
    return IssueLink.objects.get(organization=world.org, remote_issue_id=created["id"])


@pytest.mark.parametrize("allowed", [False, True])
def test_an_issue_from_partner_a_reaches_partner_b_only_if_b_allows_it(world, partner_b, allowed):
    sim_b, org_b = partner_b
    if allowed:
        org_services.organization_update(organization=org_b, data={"relay_partner_issues": True})
    link = _partner_a_creates(world)
    assert link.origin == "remote"
    world.feed_all("local")  # our create of the local copy, reported by our Jira
    world.api("local", "PUT", f"/issue/{link.local_issue_key}", json={"fields": {"labels": ["x"]}})
    world.feed_all("local")  # a local edit of it: still A's issue
    b_link = IssueLink.objects.filter(
        organization=org_b, local_issue_id=link.local_issue_id
    ).first()
    if allowed:
        assert b_link is not None and b_link.remote_issue_key.startswith("REB-")
    else:
        assert _b_writes(sim_b) == 0
        assert b_link is None or b_link.remote_issue_id is None
        skipped = SyncEvent.objects.filter(organization=org_b).latest("pk")
        assert skipped.result == "skipped" and "Partner" in skipped.message


def test_an_issue_that_originates_locally_still_reaches_every_partner(world, partner_b):
    sim_b, org_b = partner_b
    world.edit("local", summary="ours, for everyone")
    world.feed_all("local")
    assert IssueLink.objects.get(organization=org_b).remote_issue_key.startswith("REB-")


# --- restricted and internal comments (item 7) -----------------------------------------------

ROLE = {"visibility": {"type": "role", "value": "Administrators"}}
GROUP = {"visibility": {"type": "group", "value": "jira-staff"}}
INTERNAL = {"properties": [{"key": "sd.public.comment", "value": {"internal": True}}]}


def _comment(world, side: str, text: str, **extra) -> dict:
    body = {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
    }
    return world.api(
        side, "POST", f"/issue/{world.keys[side]}/comment", json={"body": body, **extra}
    )


def _texts(world, side: str) -> list[str]:
    page = world.api(side, "GET", f"/issue/{world.keys[side]}/comment")
    return [adf_to_wiki(c["body"]) for c in page["comments"]]


@pytest.mark.parametrize("way", ["push", "pull"])
def test_restricted_and_internal_comments_never_leave_their_site(world, way):
    source = "local" if way == "push" else "partner"
    other = "partner" if way == "push" else "local"
    _comment(world, source, "role secret", **ROLE)
    _comment(world, source, "group secret", **GROUP)
    _comment(world, source, "internal secret", **INTERNAL)
    world.reset_calls()
    statuses = world.feed_all(source)
    assert world.total_writes() == 0  # Cloud's webhook shows the restriction: not even a read
    assert world.total_calls() == 0 and set(statuses) == {"done"}
    _comment(world, source, "for everyone")
    world.feed_all(source)
    texts = " ".join(_texts(world, other))
    assert "for everyone" in texts
    assert "secret" not in texts


def test_an_organization_may_allow_restricted_comments(world):
    org_services.organization_update(
        organization=world.org, data={"copy_restricted_comments": True}
    )
    _comment(world, "local", "role note", **ROLE)
    _comment(world, "local", "internal note", **INTERNAL)
    world.feed_all("local")
    texts = " ".join(_texts(world, "partner"))
    assert "role note" in texts and "internal note" in texts


def test_a_comment_restricted_after_it_was_copied_is_taken_back(world):
    created = _comment(world, "local", "first public")
    world.feed_all("local")
    assert any("first public" in t for t in _texts(world, "partner"))
    world.feed_all("partner")
    body = {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": "now a secret"}]}],
    }
    world.api(
        "local",
        "PUT",
        f"/issue/{world.keys['local']}/comment/{created['id']}",
        json={"body": body, **ROLE},
    )
    world.feed_all("local")
    assert _texts(world, "partner") == []
