"""Workflows as Jira has them (issue 12, items 1 and 9): a status several transitions away, a
transition screen that requires the resolution, a status no transition reaches, a transition
Jira refuses, and a resolve whose changelog names only the resolution.

Two simulated sites over real HTTP (the partner Cloud or Data Center), their webhooks fed to
the engine one by one (see test_loop_prevention.World).
"""

from __future__ import annotations

import pytest
import requests

from ops import selectors
from organizations import services as org_services
from sync.models import EchoLock, IssueLink, SyncEvent
from sync.transitions import workflows_forget
from webhooks.models import WebhookDelivery

from .test_loop_prevention import SYNC, World

pytestmark = pytest.mark.django_db

MULTISTEP = {"workflow": "multistep"}


@pytest.fixture
def make_world(settings):
    """`make_world(partner_flavor=..., options={side: {...}})`: a World with one linked pair."""
    workflows_forget()  # each test learns its sites' workflows afresh
    worlds = []

    def make(**kwargs) -> World:
        world = World(settings, **kwargs)
        worlds.append(world)
        world.link_pair()
        return world

    yield make
    for world in worlds:
        world.close()
    workflows_forget()


def move(world: World, side: str, status: str, fields: dict | None = None) -> None:
    """A person moves the issue on `side` by the transition leading straight to `status`."""
    key = world.keys[side]
    listed = world.api(side, "GET", f"/issue/{key}/transitions")["transitions"]
    transition = next(t for t in listed if t["to"]["name"] == status)
    body = {"transition": {"id": transition["id"]}, **({"fields": fields} if fields else {})}
    world.api(side, "POST", f"/issue/{key}/transitions", json=body)


def sync_calls(world: World, side: str, method: str, path_end: str) -> int:
    log = requests.get(f"{world.sims[side].base_url}/_sim/calls", timeout=5).json()["calls"]
    return sum(
        1
        for c in log
        if c.get("user") == SYNC[side][0] and c["method"] == method and c["path"].endswith(path_end)
    )


def latest_event() -> SyncEvent:
    return SyncEvent.objects.exclude(result__in=("echo", "no_change")).latest("pk")


@pytest.mark.parametrize("flavor", ["cloud", "datacenter"])
def test_a_push_walks_the_partner_workflow_step_by_step_to_done(make_world, flavor):
    world = make_world(partner_flavor=flavor, options={"partner": MULTISTEP})
    move(world, "local", "Done")
    assert world.feed_all("local") == ["done"]

    partner = world.fields("partner")
    assert partner["status"]["name"] == "Done"
    assert partner["resolution"]["name"] == "Done"  # the screen's required field, filled
    event = latest_event()
    assert event.result == "written" and "status" in event.fields
    assert IssueLink.objects.get().last_error == ""
    assert sync_calls(world, "partner", "POST", "/transitions") == 3  # To Do -> ... -> Done

    # Every step's webhook comes back as our own echo, at no cost.
    world.reset_calls()
    assert set(world.feed_all("partner")) == {"echo"}
    assert world.total_calls() == 0
    assert not EchoLock.objects.exists()


def test_a_one_step_move_costs_one_read_and_one_transition(make_world):
    world = make_world(options={"partner": MULTISTEP})
    move(world, "local", "In Progress")
    assert world.feed_all("local") == ["done"]
    assert world.fields("partner")["status"]["name"] == "In Progress"
    assert sync_calls(world, "partner", "GET", "/transitions") == 1
    assert sync_calls(world, "partner", "POST", "/transitions") == 1


def test_the_resolution_on_the_screen_is_the_source_issues(make_world):
    world = make_world(partner_flavor="datacenter", options={"partner": MULTISTEP})
    move(world, "local", "Done", {"resolution": {"name": "Won't Do"}})
    assert world.feed_all("local") == ["done"]
    partner = world.fields("partner")
    assert partner["status"]["name"] == "Done"
    assert partner["resolution"]["name"] == "Won't Do"


def test_a_pull_from_a_data_center_partner_walks_our_workflow(make_world):
    world = make_world(partner_flavor="datacenter", options={"local": MULTISTEP})
    move(world, "partner", "Done")  # the partner's workflow goes To Do -> Done at once
    assert world.feed_all("partner") == ["done"]
    local = world.fields("local")
    assert local["status"]["name"] == "Done" and local["resolution"]["name"] == "Done"
    assert sync_calls(world, "local", "POST", "/transitions") == 3
    world.reset_calls()
    assert set(world.feed_all("local")) == {"echo"}
    assert world.total_calls() == 0

    move(world, "partner", "To Do")  # Reopen: one step on both sides
    assert world.feed_all("partner") == ["done"]
    assert world.fields("local")["status"]["name"] == "To Do"


def test_an_unreachable_status_is_an_error_the_dashboard_shows(make_world, client, superuser):
    world = make_world(options={"partner": MULTISTEP})
    org_services.field_mapping_create(
        organization=world.org,
        local_field="status",
        remote_field="status",
        value_map={"Done": "Blocked"},  # a status no transition of the partner's reaches
    )
    move(world, "local", "Done")
    assert world.feed_all("local") == ["done"]

    event = latest_event()
    assert event.result == "error"
    assert "'Blocked' cannot be reached" in event.message
    assert "cannot be reached" in IssueLink.objects.get().last_error
    partner = world.fields("partner")
    assert partner["status"]["name"] == "To Do"  # taken back where it was while looking
    # The moves made while looking come back as our own echoes: nothing bounces.
    assert set(world.feed_all("partner")) == {"echo"}
    assert world.fields("local")["status"]["name"] == "Done"

    status = selectors.sync_status(organization=world.org)
    assert [e.pk for e in status["errors"]] == [event.pk]
    assert status["organizations"][0].errors == 1
    as_json = selectors.sync_status_json(status)
    assert as_json["errors"][0]["message"] == event.message
    assert as_json["organizations"][0]["errors"] == 1
    client.force_login(superuser)
    page = client.get(f"/admin/dashboard/?org={world.org.public_id}").content.decode()
    assert "cannot be reached" in page

    # Known now: a later change tries again without moving the partner's issue around.
    world.reset_calls()
    world.edit("local", summary="B")
    assert world.feed_all("local") == ["done"]
    assert world.fields("partner")["summary"] == "B"
    assert world.fields("partner")["status"]["name"] == "To Do"
    assert sync_calls(world, "partner", "POST", "/transitions") == 0


def test_a_refused_transition_is_recorded_once_and_not_retried(make_world):
    world = make_world(options={"partner": {"transition_required_fields": ["customfield_10010"]}})
    move(world, "local", "Done")
    assert world.feed_all("local") == ["done"]

    delivery = WebhookDelivery.objects.latest("pk")
    assert delivery.status == "done" and delivery.attempts == 1
    event = latest_event()
    assert event.result == "error"
    assert "External Reference is required" in event.message
    assert world.fields("partner")["status"]["name"] == "To Do"
    assert not EchoLock.objects.filter(field="status").exists()  # no echo will come
    assert sync_calls(world, "partner", "POST", "/transitions") == 1


def test_a_required_screen_field_is_filled_from_its_mapped_value(make_world):
    world = make_world(options={"partner": {"transition_required_fields": ["customfield_10010"]}})
    org_services.field_mapping_create(
        organization=world.org, local_field="customfield_10010", remote_field="customfield_10010"
    )
    world.edit("local", customfield_10010="EXT-7")
    assert world.feed_all("local") == ["done"]
    world.feed_all("partner")
    move(world, "local", "Done")
    assert world.feed_all("local") == ["done"]
    partner = world.fields("partner")
    assert partner["status"]["name"] == "Done" and partner["customfield_10010"] == "EXT-7"


@pytest.mark.parametrize("flavor", ["cloud", "datacenter"])
def test_a_resolve_whose_changelog_names_only_the_resolution_brings_the_status(make_world, flavor):
    world = make_world(
        partner_flavor=flavor, options={"partner": {"resolution_separate_changelog": True}}
    )
    move(world, "partner", "Done")
    status_hook, resolution_hook = world.take("partner")
    items = resolution_hook["json"]["changelog"]["items"]
    assert [i["field"] for i in items] == ["resolution"]

    # Only the resolution's event arrives (the status one lost, or late).
    assert world.feed("partner", resolution_hook) == "done"
    local = world.fields("local")
    assert local["status"]["name"] == "Done" and local["resolution"]["name"] == "Done"
    world.reset_calls()
    world.feed("partner", status_hook)
    assert world.calls("local", writes_only=True) == 0


def test_our_resolve_coming_back_in_two_events_costs_nothing(make_world):
    world = make_world(options={"local": {"resolution_separate_changelog": True}})
    move(world, "partner", "Done")
    assert world.feed_all("partner") == ["done"]
    assert world.fields("local")["status"]["name"] == "Done"
    world.reset_calls()
    hooks = world.take("local")
    assert len(hooks) == 2
    for hook in hooks:
        assert world.feed("local", hook) in ("echo", "done")
    assert world.total_calls() == 0


def test_a_new_issue_already_done_is_walked_to_done_after_its_create(make_world):
    world = make_world(partner_flavor="datacenter", options={"partner": MULTISTEP})
    fields = {"project": {"key": "LOC"}, "issuetype": {"name": "Task"}, "summary": "Late"}
    created = world.api("local", "POST", "/issue", json={"fields": fields})
    world.keys["local"] = created["key"]
    move(world, "local", "Done")
    assert set(world.feed_all("local")) <= {"done"}

    link = IssueLink.objects.get(local_issue_id=created["id"])
    assert link.last_error == ""
    world.keys["partner"] = link.remote_issue_key
    partner = world.fields("partner")
    assert partner["status"]["name"] == "Done" and partner["resolution"]["name"] == "Done"
    assert set(world.feed_all("partner")) <= {"echo"}


def test_a_walk_refused_on_its_last_step_stays_where_it_got_and_finishes_later(make_world):
    world = make_world(
        options={"partner": {**MULTISTEP, "transition_required_fields": ["customfield_10010"]}}
    )
    move(world, "local", "Done")
    assert world.feed_all("local") == ["done"]
    assert "External Reference is required" in latest_event().message
    assert world.fields("partner")["status"]["name"] == "In Review"  # two steps made
    assert IssueLink.objects.get().state["remote"]["status"] == "In Review"
    assert set(world.feed_all("partner")) == {"echo"}  # those steps were ours: no bounce
    assert world.fields("local")["status"]["name"] == "Done"

    # The required field mapped and given: the next change finishes the move.
    org_services.field_mapping_create(
        organization=world.org, local_field="customfield_10010", remote_field="customfield_10010"
    )
    world.edit("local", customfield_10010="EXT-3")
    assert world.feed_all("local") == ["done"]
    partner = world.fields("partner")
    assert partner["status"]["name"] == "Done" and partner["customfield_10010"] == "EXT-3"
    assert set(world.feed_all("partner")) <= {"echo"}
