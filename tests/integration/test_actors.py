"""Who made the change (DESIGN.md section 4, point 7): every Jira webhook names its actor.

A change made by someone other than the site's sync account is genuine whatever the echo
locks say; one made by the sync account with no lock is reported (another integration may
be using the account) and synced like any other change; an event without an actor keeps
the lock logic.
"""

from __future__ import annotations

import json
import logging

import pytest

from sync.models import EchoLock, SyncEvent

from .test_loop_prevention import OTHER, SYNC, WAYS

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("way", WAYS)
def test_a_person_setting_our_lost_echos_value_again_from_the_old_value_is_genuine(world, way):
    edited = WAYS[way]
    other = OTHER[edited]
    world.edit(edited, summary="W")
    assert world.feed_all(edited) == ["done"]  # W written to `other`, with its lock
    world.take(other)  # ... and the echo of W is lost
    world.edit(other, summary="A")  # a person sets it back
    assert world.feed_all(other) == ["done"]
    assert world.fields(edited)["summary"] == "A"
    assert set(world.feed_all(edited)) == {"echo"}
    world.edit(other, summary="W")  # ... and then W again, from the old value A
    assert world.feed_all(other) == ["done"]
    assert world.fields(edited)["summary"] == world.fields(other)["summary"] == "W"


@pytest.mark.parametrize("way", WAYS)
def test_a_person_setting_the_value_of_a_live_lock_keeps_the_lock_for_our_echo(world, way):
    edited = WAYS[way]
    other = OTHER[edited]
    world.edit(edited, summary="W")
    world.feed_all(edited)
    (echo_w,) = world.take(other)
    world.reset_calls()
    # The person's event looks exactly like our echo, except for who made it.
    person = json.loads(echo_w["raw"])
    person["user"] = world.api(other, "GET", "/myself")
    assert world.feed(other, echo_w, body=json.dumps(person).encode()) == "done"
    assert world.total_writes() == 0  # nothing differs: the sync finds both sides in step
    assert EchoLock.objects.filter(field="summary").count() == 1  # not taken by the person
    assert world.feed(other, echo_w) == "echo"  # ours, when it comes, is still known
    assert not EchoLock.objects.filter(field="summary").exists()


def test_a_change_by_the_sync_account_without_a_lock_is_reported_and_synced(world, caplog):
    world.api(
        "partner",
        "PUT",
        f"/issue/{world.keys['partner']}",
        who=SYNC["partner"],
        json={"fields": {"summary": "by another integration"}},
    )
    with caplog.at_level(logging.WARNING, logger="sync"):
        assert world.feed_all("partner") == ["done"]
    assert world.fields("local")["summary"] == "by another integration"
    event = SyncEvent.objects.filter(direction="pull").latest("pk")
    assert "sync account" in event.message and "summary" in event.message
    assert any(r.getMessage() == "delivery.sync_account_without_lock" for r in caplog.records)


@pytest.mark.parametrize("way", WAYS)
def test_an_event_without_an_actor_keeps_the_lock_logic(world, way):
    edited = WAYS[way]
    other = OTHER[edited]
    world.edit(edited, summary="W")
    world.feed_all(edited)
    (echo_w,) = world.take(other)
    anonymous = json.loads(echo_w["raw"])
    del anonymous["user"]
    world.reset_calls()
    assert world.feed(other, echo_w, body=json.dumps(anonymous).encode()) == "echo"
    assert world.total_calls() == 0


def test_the_sync_account_is_asked_once_per_process_not_per_delivery(world):
    for summary in ("one", "two", "three"):
        world.edit("local", summary=summary)
        world.feed_all("local")
        world.reset_calls()
        assert set(world.feed_all("partner")) == {"echo"}
        assert world.total_calls() == 0
