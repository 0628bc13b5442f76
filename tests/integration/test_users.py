"""Users across sites (issue 12, item 4): Jira Cloud hides e-mail addresses, so users are
matched by the organization's user map first, then by e-mail; a user with no counterpart
follows the organization's policy (default: the other side's value is left alone, never
unassigned as a side effect) and is listed for the admin to map."""

from __future__ import annotations

import pytest
import requests

from organizations import services as org_services
from sync.models import UnmappedUser

pytestmark = pytest.mark.django_db


def _hide_emails(world) -> None:
    for sim in world.sims.values():
        sim.set_options(hide_emails=True)  # the World's sims live for one test only


def _add_user(world, side: str, email: str, name: str) -> str:
    response = requests.post(
        f"{world.sims[side].base_url}/_sim/users",
        json={"email": email, "token": "t", "displayName": name},
        timeout=5,
    )
    assert response.status_code == 201, response.text
    return response.json()["accountId"]


def _assignee(world, side: str) -> str | None:
    return (world.fields(side)["assignee"] or {}).get("accountId")


@pytest.fixture
def people(world):
    """Hidden e-mails on both sites; Carol exists on both (mapped), Dave only locally and
    Erin only at the partner (neither mapped)."""
    _hide_emails(world)
    ids = {
        "carol": _add_user(world, "local", "carol@local.example", "Carol"),
        "carol_p": _add_user(world, "partner", "carol@partner.example", "Carol P"),
        "dave": _add_user(world, "local", "dave@local.example", "Dave"),
        "erin_p": _add_user(world, "partner", "erin@partner.example", "Erin"),
    }
    org_services.organization_update(
        organization=world.org, data={"user_map": {ids["carol"]: ids["carol_p"]}}
    )
    world.org.refresh_from_db()
    return ids


def test_with_hidden_emails_an_assignee_crosses_by_the_user_map_both_ways(world, people):
    world.edit("local", assignee={"accountId": people["carol"]})
    assert world.feed_all("local") == ["done"]
    assert _assignee(world, "partner") == people["carol_p"]
    assert set(world.feed_all("partner")) == {"echo"}
    world.edit("partner", assignee=None)
    world.feed_all("partner")
    assert _assignee(world, "local") is None
    world.feed_all("local")
    world.edit("partner", assignee={"accountId": people["carol_p"]})
    assert world.feed_all("partner") == ["done"]
    assert _assignee(world, "local") == people["carol"]
    assert set(world.feed_all("local")) == {"echo"}
    assert not UnmappedUser.objects.exists()


def test_an_unmapped_assignee_leaves_the_other_side_alone_and_is_listed(world, people):
    world.edit("local", assignee={"accountId": people["carol"]})
    world.feed_all("local")
    world.feed_all("partner")
    world.reset_calls()

    world.edit("local", assignee={"accountId": people["dave"]})
    assert world.feed_all("local") == ["done"]
    assert _assignee(world, "partner") == people["carol_p"]  # left alone, not unassigned
    assert world.calls("partner", writes_only=True) == 0
    dave = UnmappedUser.objects.get()
    assert (dave.side, dave.user_id, dave.display_name, dave.email) == (
        "local",
        people["dave"],
        "Dave",
        "",  # hidden
    )
    assert dave.field == "assignee" and dave.count == 1

    # Later, unrelated changes on either side do not make either assignee flip.
    world.edit("partner", priority={"name": "Highest"})
    assert world.feed_all("partner") == ["done"]
    assert world.fields("local")["priority"]["name"] == "Highest"
    assert _assignee(world, "local") == people["dave"]
    world.feed_all("local")
    world.edit("local", summary="still Dave's")
    world.feed_all("local")
    assert _assignee(world, "partner") == people["carol_p"]
    assert world.fields("partner")["summary"] == "still Dave's"


def test_an_unmapped_partner_assignee_leaves_ours_alone_and_is_listed(world, people):
    world.edit("local", assignee={"accountId": people["dave"]})  # unmapped too: left alone
    world.feed_all("local")
    world.feed_all("partner")
    world.edit("partner", assignee={"accountId": people["erin_p"]})
    assert world.feed_all("partner") == ["done"]
    assert _assignee(world, "local") == people["dave"]
    listed = {(u.side, u.display_name) for u in UnmappedUser.objects.all()}
    assert listed == {("local", "Dave"), ("remote", "Erin")}


@pytest.mark.parametrize("policy", ["unassign", "default"])
def test_the_organization_chooses_the_fallback(world, people, policy):
    org_services.organization_update(
        organization=world.org,
        data={"unmapped_user_policy": policy, "default_remote_user": people["erin_p"]},
    )
    world.edit("local", assignee={"accountId": people["carol"]})
    world.feed_all("local")
    world.feed_all("partner")
    world.edit("local", assignee={"accountId": people["dave"]})
    assert world.feed_all("local") == ["done"]
    expected = None if policy == "unassign" else people["erin_p"]
    assert _assignee(world, "partner") == expected
    assert set(world.feed_all("partner")) == {"echo"}
    assert UnmappedUser.objects.get().user_id == people["dave"]


def test_a_new_issue_with_an_unmapped_assignee_is_created_without_one(world, people):
    created = world.api(
        "local",
        "POST",
        "/issue",
        json={
            "fields": {
                "project": {"key": "LOC"},
                "issuetype": {"name": "Task"},
                "summary": "Dave's",
                "assignee": {"accountId": people["dave"]},
            }
        },
    )
    assert world.feed_all("local") == ["done"]
    from sync.models import IssueLink

    link = IssueLink.objects.get(local_issue_id=created["id"])
    partner = world.api("partner", "GET", f"/issue/{link.remote_issue_key}")["fields"]
    assert partner["summary"] == "Dave's" and partner["assignee"] is None
    assert UnmappedUser.objects.get().user_id == people["dave"]
    world.feed_all("partner")
    # The partner's (empty) assignee is what the pair agreed on: no flip back later.
    world.api(
        "partner",
        "PUT",
        f"/issue/{link.remote_issue_key}",
        json={"fields": {"priority": {"name": "Low"}}},
    )
    world.feed_all("partner")
    local = world.api("local", "GET", f"/issue/{created['key']}")["fields"]
    assert local["assignee"]["accountId"] == people["dave"]
    assert local["priority"]["name"] == "Low"


def test_e_mails_still_match_where_they_are_shown(world):
    bob_l = _add_user(world, "local", "bob@shared.example", "Bob")
    bob_p = _add_user(world, "partner", "bob@shared.example", "Bob at the partner")
    world.sims["partner"].user("bob@shared.example")  # exists there, found by e-mail
    world.edit("local", assignee={"accountId": bob_l})
    world.feed_all("local")
    assert _assignee(world, "partner") == bob_p


def test_a_user_mapped_later_crosses_at_the_issues_next_sync(world, people):
    world.edit("local", assignee={"accountId": people["carol"]})
    world.feed_all("local")
    world.feed_all("partner")
    world.edit("local", assignee={"accountId": people["dave"]})
    world.feed_all("local")
    assert _assignee(world, "partner") == people["carol_p"]  # left alone for now
    dave_p = _add_user(world, "partner", "dave@partner.example", "Dave P")
    org_services.organization_update(
        organization=world.org,
        data={"user_map": {people["carol"]: people["carol_p"], people["dave"]: dave_p}},
    )
    world.edit("local", summary="next change")  # any change of the issue
    assert world.feed_all("local") == ["done"]
    assert _assignee(world, "partner") == dave_p
    assert world.fields("partner")["summary"] == "next change"
    assert set(world.feed_all("partner")) == {"echo"}
    world.reset_calls()
    world.edit("local", summary="and another")  # the user crossed once: no more re-checks
    world.feed_all("local")
    assert world.calls("partner", writes_only=True) == 1
