"""A linked issue deleted at the other site (issue 12, item 2).

A push-only partner never tells us about its deletes: we learn of one when a later change
gets a 404 for the partner's issue. The pair is then closed visibly (a sync event, the link
`gone`), no delivery dies, and the organization's `target_gone_policy` decides whether the
copy is created again (once, with its comments).
"""

from __future__ import annotations

import pytest

from jiraapi.adf import adf_to_wiki, wiki_to_adf
from organizations import services as org_services
from sync.models import EchoLock, IssueLink, SyncEvent
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db


def _push_only(world, **fields) -> None:
    org_services.organization_update(
        organization=world.org, data={"sync_direction": "push", **fields}
    )


def _comment(world, side: str, text: str) -> dict:
    return world.api(
        side, "POST", f"/issue/{world.keys[side]}/comment", json={"body": wiki_to_adf(text)}
    )


def _comment_texts(world, side: str, key: str) -> list[str]:
    comments = world.api(side, "GET", f"/issue/{key}/comment")["comments"]
    return [adf_to_wiki(c["body"]) for c in comments]


def _delete(world, side: str) -> str:
    """Someone deletes the pair's issue at `side`; its webhooks are lost (never fed)."""
    key = world.keys[side]
    world.api(side, "DELETE", f"/issue/{key}")
    world.take(side)
    return key


def _issues(world, side: str) -> list[dict]:
    return list(world.sims[side].store.issues.values())


CHANGES = {
    "edit": lambda w: w.edit("local", summary="changed after the delete"),
    "transition": lambda w: w.api(
        "local", "POST", f"/issue/{w.keys['local']}/transitions", json={"transition": {"id": "21"}}
    ),
    "comment": lambda w: _comment(w, "local", "a comment after the delete"),
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_partner_delete_closes_a_push_pair_visibly_without_dead_deliveries(world, change):
    _push_only(world)
    gone_key = _delete(world, "partner")

    CHANGES[change](world)
    assert set(world.feed_all("local")) == {"done"}
    link = IssueLink.objects.get()
    assert link.status == "gone" and link.last_error == ""
    event = SyncEvent.objects.filter(issue_link=link).latest("pk")
    assert event.result == "closed"
    assert gone_key in event.message and "gone" in event.message
    assert not EchoLock.objects.filter(side="remote").exists()
    assert not _issues(world, "partner")  # nothing created: the default policy unlinks

    # Later changes: the pair is closed, nothing is called, nothing dies.
    world.reset_calls()
    world.edit("local", summary="and again")
    assert world.feed_all("local") == ["done"]
    assert world.total_calls() == 0
    assert not WebhookDelivery.objects.filter(status__in=("dead", "failed")).exists()
    assert IssueLink.objects.get().status == "gone"


def test_the_dashboard_lists_the_closed_pair(world, client, superuser):
    _push_only(world)
    gone_key = _delete(world, "partner")
    world.edit("local", summary="changed after the delete")
    world.feed_all("local")
    client.force_login(superuser)
    page = client.get("/admin/dashboard/").content.decode()
    assert 'id="closed">1<' in page
    closed = page[page.index('id="closed-pairs"') : page.index('id="recent-events"')]
    assert gone_key in closed and "is gone" in closed
    assert "No failed or dead deliveries." in page


@pytest.mark.parametrize("way", ["push", "pull"])
def test_a_two_way_pair_whose_target_is_gone_is_closed_too(world, way):
    """Two-way, the target is read first (conflict check): that GET's 404 closes the pair."""
    source, target = ("local", "partner") if way == "push" else ("partner", "local")
    _delete(world, target)
    world.edit(source, summary="changed after the delete")
    assert world.feed_all(source) == ["done"]
    assert IssueLink.objects.get().status == "gone"
    assert SyncEvent.objects.latest("pk").result == "closed"
    assert not WebhookDelivery.objects.filter(status__in=("dead", "failed")).exists()


def test_two_way_a_local_copy_gone_is_created_again_by_a_partner_change(world):
    """Pull: our local copy was deleted and its webhook lost; the partner's next change
    creates it again under the recreate policy."""
    org_services.organization_update(
        organization=world.org, data={"target_gone_policy": "recreate"}
    )
    old_key = _delete(world, "local")
    world.edit("partner", summary="changed at the partner")
    assert world.feed_all("partner") == ["done"]
    link = IssueLink.objects.get()
    assert link.status == "linked" and link.local_issue_key not in ("", old_key)
    assert [i["summary"] for i in _issues(world, "local")] == ["changed at the partner"]
    world.reset_calls()
    assert "echo" in world.feed_all("local")  # the new local issue's create is ours
    assert world.total_writes() == 0


def test_a_404_for_something_else_does_not_close_the_pair(world):
    """Only a target issue that is itself gone closes the pair (a GET by id says)."""
    _push_only(world)
    _comment(world, "local", "first")
    world.feed_all("local")
    copy = world.api("partner", "GET", f"/issue/{world.keys['partner']}/comment")["comments"][0]
    world.api("partner", "DELETE", f"/issue/{world.keys['partner']}/comment/{copy['id']}")
    comment_id = world.api("local", "GET", f"/issue/{world.keys['local']}/comment")["comments"][0][
        "id"
    ]
    world.api(
        "local",
        "PUT",
        f"/issue/{world.keys['local']}/comment/{comment_id}",
        json={"body": wiki_to_adf("first, edited")},
    )
    world.feed_all("local")
    assert IssueLink.objects.get().status == "linked"


def test_the_recreate_policy_creates_the_copy_again_once_with_its_comments(world):
    _push_only(world, target_gone_policy="recreate")
    _comment(world, "local", "before the delete")
    world.feed_all("local")
    _delete(world, "partner")

    world.edit("local", summary="changed after the delete")
    assert world.feed_all("local") == ["done"]
    link = IssueLink.objects.get()
    assert link.status == "linked" and link.remote_issue_key != world.keys["partner"]
    partner = _issues(world, "partner")
    assert [i["key"] for i in partner] == [link.remote_issue_key]
    assert partner[0]["summary"] == "changed after the delete"
    assert partner[0]["properties"]["jira-sync.link"]["linkId"] == link.pk
    texts = _comment_texts(world, "partner", link.remote_issue_key)
    assert len(texts) == 1 and "before the delete" in texts[0]
    assert texts[0].count("wrote:") == 1
    events = list(SyncEvent.objects.filter(issue_link=link).order_by("-pk")[:2])
    assert [e.result for e in events] == ["written", "closed"]
    assert events[0].action == "create" and "created again" in events[0].message

    # The new pair syncs as any other: an edit is an update, never a second create.
    world.keys["partner"] = link.remote_issue_key
    world.edit("local", summary="once more")
    _comment(world, "local", "after the recreate")
    world.feed_all("local")
    assert [i["key"] for i in _issues(world, "partner")] == [link.remote_issue_key]
    assert world.fields("partner")["summary"] == "once more"
    assert len(_comment_texts(world, "partner", link.remote_issue_key)) == 2


def test_a_recreate_whose_answer_is_lost_creates_one_issue(world, settings):
    settings.SYNC_CREATE_SETTLE_SECONDS = 0
    _push_only(world, target_gone_policy="recreate")
    _delete(world, "partner")
    partner = world.sims["partner"]
    partner.set_faults(response_lost_count=1, path_pattern=r"^/rest/api/3/issue$")
    try:
        world.edit("local", summary="changed after the delete")
        assert world.feed_all("local") == ["done"]
    finally:
        partner.clear_faults()
    assert len(_issues(world, "partner")) == 1
    assert IssueLink.objects.get().remote_issue_key == _issues(world, "partner")[0]["key"]


def test_two_way_recreate_copies_the_partners_comments_back_once_headed(world):
    """A comment written at the partner lives on in our copy; recreated, it goes back with
    the one header naming its author, not a second one."""
    org_services.organization_update(
        organization=world.org, data={"target_gone_policy": "recreate"}
    )
    _comment(world, "partner", "written at the partner")
    world.feed_all("partner")
    world.feed_all("local")
    _delete(world, "partner")

    world.edit("local", summary="changed after the delete")
    assert world.feed_all("local") == ["done"]
    link = IssueLink.objects.get()
    texts = _comment_texts(world, "partner", link.remote_issue_key)
    assert len(texts) == 1 and "written at the partner" in texts[0]
    assert texts[0].count("wrote:") == 1
    # The new issue's webhooks (create, comment) are our own echoes: nothing is written.
    world.reset_calls()
    assert "echo" in world.feed_all("partner")
    assert world.total_writes() == 0


def test_a_closed_pair_is_created_again_once_the_policy_says_so(world):
    _push_only(world)
    _delete(world, "partner")
    world.edit("local", summary="closed")
    world.feed_all("local")
    assert IssueLink.objects.get().status == "gone"

    org_services.organization_update(
        organization=world.org, data={"target_gone_policy": "recreate"}
    )
    world.edit("local", summary="reopened")
    assert world.feed_all("local") == ["done"]
    link = IssueLink.objects.get()
    assert link.status == "linked"
    assert [i["summary"] for i in _issues(world, "partner")] == ["reopened"]


def test_the_target_gone_policy_is_set_through_the_api_and_the_admin(api, admin_client, make_org):
    org = make_org(name="Org", public_id="org-gone")
    assert api.get("/api/organizations/org-gone/").json()["targetGonePolicy"] == "unlink"
    changed = api.patch(
        "/api/organizations/org-gone/", {"targetGonePolicy": "recreate"}, format="json"
    )
    assert changed.status_code == 200 and changed.json()["targetGonePolicy"] == "recreate"
    refused = api.patch("/api/organizations/org-gone/", {"targetGonePolicy": "x"}, format="json")
    assert refused.status_code == 400 and "targetGonePolicy" in refused.json()
    page = admin_client.get(f"/admin/organizations/organization/{org.pk}/change/").content
    assert b'name="target_gone_policy"' in page
