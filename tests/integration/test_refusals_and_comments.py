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
    # Looking for a status the partner's workflow does not have moves nothing there: each
    # move would be a write, a webhook and a notification for the partner's people.
    assert world.total_writes() == 0, "the partner's issue was moved looking for 'Closed'"
    assert world.fields("partner")["status"]["name"] == "To Do"
    link = _link()
    assert "Closed" in link.last_error
    assert not EchoLock.objects.filter(field="status").exists()


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


@pytest.mark.parametrize("way", WAYS)
def test_an_edit_whose_copy_was_deleted_at_the_target_is_copied_again(world, way):
    """The copy was deleted at the target and its event never reached us (a push-only
    partner, or a lost webhook): editing the original must not fail the delivery (a 404 on
    the comment, while the issue is still there); the edited comment is copied again, once,
    and its echo costs nothing."""
    source = WAYS[way]
    target = OTHER[source]
    key = world.keys[source]
    created = world.api(
        source, "POST", f"/issue/{key}/comment", json={"body": wiki_to_adf("Soon edited")}
    )
    world.feed_all(source)
    world.feed_all(target)
    copy_id = getattr(
        CommentLink.objects.get(), f"{'remote' if target == 'partner' else 'local'}_comment_id"
    )
    world.api(target, "DELETE", f"/issue/{world.keys[target]}/comment/{copy_id}")
    world.take(target)  # its webhooks are lost
    world.reset_calls()

    world.api(
        source,
        "PUT",
        f"/issue/{key}/comment/{created['id']}",
        json={"body": wiki_to_adf("Edited after the copy was deleted")},
    )
    assert set(world.feed_all(source)) == {"done"}
    texts = _comment_texts(world, target)
    assert len(texts) == 1 and "Edited after the copy was deleted" in texts[0]
    assert CommentLink.objects.count() == 1
    notes = SyncEvent.objects.filter(message__contains="copied again")
    assert notes.count() == 1 and notes.get().result == "written"
    assert _link().status == "linked"
    world.reset_calls()
    assert "echo" in world.feed_all(target)  # (its companion event: already in step)
    assert world.total_calls() == 0


# --- a move through a multistep workflow the engine has not seen yet ------------------------


def _walk(world, side: str, statuses: list[str]) -> None:
    """A person moves the issue through `statuses`, one transition each, filling what a
    transition screen requires with its first allowed value."""
    key = world.keys[side]
    for status in statuses:
        offered = world.api(
            side, "GET", f"/issue/{key}/transitions", params={"expand": "transitions.fields"}
        )["transitions"]
        step = next(t for t in offered if t["to"]["name"] == status)
        body: dict = {"transition": {"id": step["id"]}}
        required = {
            name: {"id": meta["allowedValues"][0]["id"]}
            for name, meta in (step.get("fields") or {}).items()
            if meta.get("required") and meta.get("allowedValues")
        }
        if required:
            body["fields"] = required
        world.api(side, "POST", f"/issue/{key}/transitions", json=body)


@pytest.mark.parametrize("way", WAYS)
def test_a_move_two_steps_away_takes_two_transitions_and_no_detour(world, way):
    """The people walk In Progress -> In Review -> Done; the sync, seeing Done at once, moves
    the other side by the same two transitions. Learning the workflow must not take the other
    side's issue through a status nobody chose (back to To Do and forth): each such move is a
    write, a webhook and a notification for the people there."""
    source = WAYS[way]
    target = OTHER[source]
    for sim in world.sims.values():
        sim.set_options(workflow="multistep")
    _walk(world, source, ["In Progress"])
    world.feed_all(source)
    world.feed_all(target)
    assert world.fields(target)["status"]["name"] == "In Progress"
    world.reset_calls()

    _walk(world, source, ["In Review", "Done"])
    world.feed_all(source)  # the first event's sync reads the issue at Done already
    assert world.fields(target)["status"]["name"] == "Done"
    moves = [
        c
        for c in _writes_by_sync(world, target)
        if c["method"] == "POST" and c["path"].endswith("/transitions")
    ]
    assert len(moves) == 2, f"{len(moves)} transitions for a move two steps away"
    assert set(world.feed_all(target)) <= {"echo", "done"}
    assert world.total_writes() == 2
