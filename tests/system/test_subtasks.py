"""Sub-tasks, parents and epics end to end: a Cloud local site and a Data Center partner over
HTTP, the web service and a real worker (issue 15, item 3)."""

from __future__ import annotations

import time

import pytest

from jirasim.model import DC_EPIC_LINK, DC_EPIC_NAME
from sync.models import IssueLink

from .conftest import LOCAL_USER, PARTNER_USER, connect, wait_until
from .rounds import ALICE, Site, settled

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sites(sync_env, local_sim, partner_dc):
    local, partner, _ = connect(sync_env, local_sim, partner_dc, "datacenter")
    return Site(local, LOCAL_USER[0]), Site(partner, PARTNER_USER[0])


def create(site: Site, project: str, summary: str, kind: str = "Task", above: str | None = None):
    fields = {"project": {"key": project}, "issuetype": {"name": kind}, "summary": summary}
    if kind == "Epic" and not site.cloud:
        fields[DC_EPIC_NAME] = summary
    if above is not None:
        if kind == "Sub-task" or site.cloud:
            fields["parent"] = {"key": above}
        else:
            fields[DC_EPIC_LINK] = above
    return site.ok("POST", "/issue", who=ALICE, json={"fields": fields})["key"]


def copy_key(side: str, key: str, site: Site) -> str:
    """The other side's copy of `key`, once the sync made it."""
    issue_id = site.ok("GET", f"/issue/{key}")["id"]
    other = "remote" if side == "local" else "local"

    def made() -> str | None:
        link = IssueLink.objects.filter(**{f"{side}_issue_id": issue_id}).first()
        return getattr(link, f"{other}_issue_key", None) or None

    return wait_until(made, timeout=30)


def above(site: Site, key: str) -> str | None:
    fields = site.fields(key)
    if fields.get("parent"):
        return fields["parent"]["key"]
    return fields.get(DC_EPIC_LINK)


def summaries(site: Site, project: str) -> list[str]:
    store = site.sim.store
    with store.lock:
        return sorted(i["summary"] for i in store.issues.values() if i["project"] == project)


def test_an_epic_a_story_and_a_sub_task_cross_both_ways_under_their_copies(sites):
    local, partner = sites
    # Made in the local Cloud site, in the order people make them.
    epic = create(local, "LOC", "Checkout epic", "Epic")
    story = create(local, "LOC", "Pay by card", above=epic)
    sub = create(local, "LOC", "Card form", "Sub-task", above=story)
    epic_copy = copy_key("local", epic, local)
    story_copy = copy_key("local", story, local)
    sub_copy = copy_key("local", sub, local)
    wait_until(lambda: above(partner, sub_copy) == story_copy, timeout=30)
    assert above(partner, story_copy) == epic_copy  # by Data Center's Epic Link
    assert partner.fields(epic_copy)[DC_EPIC_NAME] == "Checkout epic"
    assert partner.fields(sub_copy)["issuetype"]["subtask"] is True

    # A sub-task a partner person adds under the story's copy comes back under the story.
    theirs = create(partner, "REM", "Card validation", "Sub-task", above=story_copy)
    theirs_copy = copy_key("remote", theirs, partner)
    wait_until(lambda: above(local, theirs_copy) == story, timeout=30)

    # The partner moves the story to another epic by its Epic Link: Cloud's parent follows.
    other_epic = create(partner, "REM", "Refunds epic", "Epic")
    other_copy = copy_key("remote", other_epic, partner)
    wait_until(lambda: settled(local, partner), timeout=30)
    partner.edit(story_copy, who=ALICE, **{DC_EPIC_LINK: other_epic})
    wait_until(lambda: above(local, story) == other_copy, timeout=30)
    wait_until(lambda: settled(local, partner), timeout=30)

    # Every issue has exactly one copy, and the echoes wrote nothing back: one write per
    # genuine change (a copy's create is two: the issue and its link to the original).
    assert summaries(local, "LOC") == summaries(partner, "REM")
    assert len(summaries(local, "LOC")) == 5
    writes = local.writes() + partner.writes()
    assert writes == 5 * 2 + 1, (local.sync_writes(), partner.sync_writes())
    time.sleep(3)
    assert local.writes() + partner.writes() == writes, "writes kept coming: ping-pong"
    assert above(partner, story_copy) == other_epic
