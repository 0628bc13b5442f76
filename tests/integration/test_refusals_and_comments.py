"""Paths the random rounds rarely take: a field Jira refuses (400 naming it), a status no
transition reaches, and comment edits and deletes, both ways. (A transition Jira's workflow
refuses is tested with the multistep workflow, tests/integration/test_workflows.py.)

Two simulated sites over real HTTP, their webhooks fed to the engine one by one (`World`).
"""

from __future__ import annotations

import pytest

from jiraapi.adf import adf_to_wiki, wiki_to_adf
from organizations import services as org_services
from sync.models import CommentLink, EchoLock, IssueLink, SyncEvent

from .test_loop_prevention import OTHER, SYNC, WAYS

pytestmark = pytest.mark.django_db


def _link() -> IssueLink:
    return IssueLink.objects.get()


def _transition(world, side: str, status: str) -> None:
    offered = world.api(side, "GET", f"/issue/{world.keys[side]}/transitions")["transitions"]
    step = next(t for t in offered if t["to"]["name"] == status)
    world.api(
        side,
        "POST",
        f"/issue/{world.keys[side]}/transitions",
        json={"transition": {"id": step["id"]}},
    )


def _writes_by_sync(world, side: str) -> list[dict]:
    log = world.sims[side].calls()
    return [
        c
        for c in log
        if c.get("user") == SYNC[side][0] and c["method"] in ("POST", "PUT", "DELETE")
    ]


# --- a field Jira refuses --------------------------------------------------------------------


def test_a_field_the_partner_refuses_is_reported_and_the_other_fields_still_go(world):
    # The partner has no priority "Urgent": its Jira answers 400 naming the field.
    org_services.field_mapping_create(
        organization=world.org,
        local_field="priority",
        remote_field="priority",
        value_map={"High": "Urgent"},
    )
    world.edit("local", summary="Refused in part", priority={"name": "High"})
    assert world.feed_all("local") == ["done"]

    partner = world.fields("partner")
    assert partner["summary"] == "Refused in part"
    assert partner["priority"]["name"] == "Medium"
    link = _link()
    assert "priority" in link.last_error
    event = SyncEvent.objects.filter(issue_link=link).latest("pk")
    assert event.result == "error" and "priority" in event.message
    # The refused field's lock is gone (no echo will come); the written field's is consumed
    # by its echo, which costs nothing.
    assert not EchoLock.objects.filter(field="priority").exists()
    writes = _writes_by_sync(world, "partner")
    assert [(c["method"], c["status"]) for c in writes] == [("PUT", 400), ("PUT", 204)]
    assert set(world.feed_all("partner")) == {"echo"}
    assert link.state["local"]["summary"] == "Refused in part"
    assert "priority" not in link.state["local"] or link.state["local"]["priority"] != "High"


def test_an_edit_the_partner_refuses_entirely_writes_nothing_and_reports_it(world):
    org_services.field_mapping_create(
        organization=world.org,
        local_field="priority",
        remote_field="priority",
        value_map={"High": "Urgent"},
    )
    world.edit("local", priority={"name": "High"})
    assert world.feed_all("local") == ["done"]
    assert world.fields("partner")["priority"]["name"] == "Medium"
    assert "priority" in _link().last_error
    assert not EchoLock.objects.exists()
    writes = _writes_by_sync(world, "partner")
    assert [(c["method"], c["status"]) for c in writes] == [("PUT", 400)]
    assert world.feed_all("partner") == []  # nothing was written, so nothing comes back


# --- a status no transition reaches ------------------------------------------------------


def test_a_status_no_transition_reaches_is_reported_and_holds_no_lock(world):
    org_services.field_mapping_create(
        organization=world.org,
        local_field="status",
        remote_field="status",
        value_map={"Done": "Closed"},  # the partner's workflow has no "Closed"
    )
    _transition(world, "local", "Done")
    assert world.feed_all("local") == ["done"]
    assert world.fields("partner")["status"]["name"] == "To Do"
    link = _link()
    assert "Closed" in link.last_error
    assert not EchoLock.objects.filter(field="status").exists()
    assert world.total_writes() == 0


# --- comments edited and deleted, both ways ------------------------------------------------


def _comment_texts(world, side: str) -> list[str]:
    page = world.api(side, "GET", f"/issue/{world.keys[side]}/comment")
    return [adf_to_wiki(c["body"]) for c in page["comments"]]


@pytest.mark.parametrize("way", WAYS)
def test_a_comment_edit_is_one_write_and_its_echo_costs_nothing(world, way):
    source = WAYS[way]
    target = OTHER[source]
    key = world.keys[source]
    created = world.api(
        source, "POST", f"/issue/{key}/comment", json={"body": wiki_to_adf("First words")}
    )
    assert "done" in world.feed_all(source)
    assert "echo" in world.feed_all(target)
    world.reset_calls()

    world.api(
        source,
        "PUT",
        f"/issue/{key}/comment/{created['id']}",
        json={"body": wiki_to_adf("Second words")},
    )
    assert "done" in world.feed_all(source)
    texts = _comment_texts(world, target)
    assert len(texts) == 1 and texts[0].endswith("Second words")
    assert world.total_writes() == 1
    world.reset_calls()
    assert "echo" in world.feed_all(target)  # its companion issue event names no field
    assert world.total_calls() == 0
    assert CommentLink.objects.count() == 1


@pytest.mark.parametrize("way", WAYS)
def test_a_comment_delete_removes_the_copy_once(world, way):
    source = WAYS[way]
    target = OTHER[source]
    key = world.keys[source]
    created = world.api(
        source, "POST", f"/issue/{key}/comment", json={"body": wiki_to_adf("Short-lived")}
    )
    world.feed_all(source)
    world.feed_all(target)
    assert len(_comment_texts(world, target)) == 1
    world.reset_calls()

    world.api(source, "DELETE", f"/issue/{key}/comment/{created['id']}")
    assert "done" in world.feed_all(source)
    assert _comment_texts(world, target) == []
    assert world.total_writes() == 1
    assert CommentLink.objects.count() == 0
    world.reset_calls()
    assert "echo" in world.feed_all(target)
    assert world.total_calls() == 0
