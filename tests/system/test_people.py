"""People across sites over HTTP (issue 12, item 4): a Jira Cloud site and a Data Center
partner, both hiding e-mail addresses, the web service and a real worker. Assignees cross by
the organization's user map; an assignee with no counterpart leaves the other side alone
and is listed for the admin."""

from __future__ import annotations

import pytest
import requests

from sync.models import IssueLink, SyncEvent, UnmappedUser

from .conftest import PARTNER_USER, connect, sim_call, wait_until
from .test_two_way import ALICE, settled, writes

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


def _add_user(sim, email: str, name: str) -> dict:
    response = requests.post(
        f"{sim.base_url}/_sim/users",
        json={"email": email, "token": "t", "displayName": name},
        timeout=5,
    )
    assert response.status_code == 201, response.text
    return response.json()


def _fields(sim, key: str) -> dict:
    api = "3" if sim.flavor == "cloud" else "2"
    response = sim_call(sim, "GET", f"/rest/api/{api}/issue/{key}", auth=ALICE)
    assert response.status_code == 200, response.text
    return response.json()["fields"]


def _edit(sim, key: str, **fields) -> None:
    api = "3" if sim.flavor == "cloud" else "2"
    response = sim_call(
        sim, "PUT", f"/rest/api/{api}/issue/{key}", auth=ALICE, json={"fields": fields}
    )
    assert response.status_code == 204, response.text


def _assignee(sim, key: str) -> str | None:
    user = _fields(sim, key)["assignee"] or {}
    return user.get("accountId") or user.get("name")


@pytest.fixture
def hidden_people(sync_env, local_sim, partner_dc):
    local, partner = local_sim, partner_dc
    local.reset()
    partner.reset()
    for sim in (local, partner):
        sim.set_options(hide_emails=True)
    try:
        people = {
            "carol": _add_user(local, "carol@local.example", "Carol")["accountId"],
            "dave": _add_user(local, "dave@local.example", "Dave")["accountId"],
            "carol_p": _add_user(partner, "cpartner@partner.example", "Carol P")["name"],
            "erin_p": _add_user(partner, "erin@partner.example", "Erin")["name"],
        }
        connect(
            sync_env,
            local,
            partner,
            "datacenter",
            reset=False,
            name="DC partner",
            user_map={people["carol"]: people["carol_p"]},
        )
        yield local, partner, people
    finally:
        for sim in (local, partner):
            sim.options.restore()


def test_assignees_cross_by_the_user_map_and_an_unmapped_one_is_left_alone_and_listed(
    hidden_people,
):
    local, partner, people = hidden_people
    created = sim_call(
        local,
        "POST",
        "/rest/api/3/issue",
        auth=ALICE,
        json={
            "fields": {
                "project": {"key": "LOC"},
                "issuetype": {"name": "Task"},
                "summary": "Shared work",
                "assignee": {"accountId": people["carol"]},
            }
        },
    ).json()
    key = created["key"]
    link = wait_until(
        lambda: (
            IssueLink.objects.filter(local_issue_key=key, status="linked")
            .exclude(remote_issue_key="")
            .first()
        )
    )
    remote = link.remote_issue_key
    # No e-mail is visible anywhere, yet Carol crosses: by the map, to her Data Center name.
    wait_until(lambda: _assignee(partner, remote) == people["carol_p"])
    wait_until(lambda: settled(local, partner))

    # Dave has no counterpart: the partner keeps Carol, and Dave is listed.
    _edit(local, key, assignee={"accountId": people["dave"]}, summary="Dave's now")
    wait_until(lambda: _fields(partner, remote)["summary"] == "Dave's now")
    wait_until(lambda: settled(local, partner))
    assert _assignee(partner, remote) == people["carol_p"]
    dave = UnmappedUser.objects.get(side="local")
    assert (dave.user_id, dave.display_name, dave.email) == (people["dave"], "Dave", "")

    # A later partner edit does not bring Carol back to our side.
    _edit(partner, remote, priority={"name": "Highest"})
    wait_until(lambda: _fields(local, key)["priority"]["name"] == "Highest")
    wait_until(lambda: settled(local, partner))
    assert _assignee(local, key) == people["dave"]

    # The partner assigns someone we do not know: ours stays Dave; they are listed too.
    _edit(partner, remote, assignee={"name": people["erin_p"]}, summary="Erin's there")
    wait_until(lambda: _fields(local, key)["summary"] == "Erin's there")
    wait_until(lambda: settled(local, partner))
    assert _assignee(local, key) == people["dave"]
    assert UnmappedUser.objects.get(side="remote").user_id == people["erin_p"]

    # ... and someone we know: Carol crosses back by the map, read backwards.
    _edit(partner, remote, assignee={"name": people["carol_p"]})
    wait_until(lambda: _assignee(local, key) == people["carol"])
    wait_until(lambda: settled(local, partner))
    before = writes(local, "sync@local.example") + writes(partner, PARTNER_USER[0])
    wait_until(lambda: settled(local, partner))
    after = writes(local, "sync@local.example") + writes(partner, PARTNER_USER[0])
    assert after == before  # no ping-pong
    assert _assignee(partner, remote) == people["carol_p"]
    # Every write of ours came back as a known echo: none was taken for someone else's.
    assert not SyncEvent.objects.filter(message__contains="sync account").exists()
