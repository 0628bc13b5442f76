"""Sub-tasks, parents and epics (issue 15, item 3).

A sub-task is created under its parent's copy (the parent is synced first when it is in
scope and has no copy yet); a change of parent follows where the target's Jira allows it
and is recorded where it does not; Cloud's `parent` (a standard issue's epic) and Data
Center's Epic Link map onto each other. Our own writes come back as echoes that cost no
call, and an ordinary edit of a sub-task costs what an edit of any issue costs.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jirasim.model import DC_EPIC_LINK, DC_EPIC_NAME
from organizations.models import ProjectMapping
from sync import drift
from sync.models import Drift, IssueLink, SyncEvent
from sync.reconcile import reconcile_catch_up

from .test_drift import writes
from .test_loop_prevention import OTHER, WAYS, World

pytestmark = pytest.mark.django_db

PROJECT = {"local": "LOC", "partner": "REM"}


class HierarchyWorld(World):
    """A Cloud local site and a Data Center partner (by default), with helpers to make
    epics, stories and sub-tasks on either side and read where they hang."""

    def create(self, side: str, summary: str, kind: str = "Task", above: str | None = None):
        fields = {
            "project": {"key": PROJECT[side]},
            "issuetype": {"name": kind},
            "summary": summary,
        }
        if kind == "Epic" and not self.is_cloud(side):
            fields[DC_EPIC_NAME] = summary
        if above is not None:
            if kind == "Sub-task" or self.is_cloud(side):
                fields["parent"] = {"key": above}
            else:
                fields[DC_EPIC_LINK] = above
        return self.api(side, "POST", "/issue", json={"fields": fields})["key"]

    def is_cloud(self, side: str) -> bool:
        return self.sims[side].flavor == "cloud"

    def set_above(self, side: str, key: str, above: str | None) -> None:
        if self.is_cloud(side):
            body = {"parent": {"key": above} if above else None}
        else:
            body = {DC_EPIC_LINK: above}
        self.api(side, "PUT", f"/issue/{key}", json={"fields": body})

    def above(self, side: str, key: str) -> str | None:
        """The key of the issue above `key` (its parent or epic), as its site shows it."""
        f = self.api(side, "GET", f"/issue/{key}")["fields"]
        if f.get("parent"):
            return f["parent"]["key"]
        return f.get(DC_EPIC_LINK)

    def copy(self, side: str, key: str) -> str:
        """The other side's copy of `key` (made by the sync)."""
        issue_id = self.api(side, "GET", f"/issue/{key}")["id"]
        link = IssueLink.objects.get(**{f"{_side(side)}_issue_id": issue_id})
        return getattr(link, f"{_side(OTHER[side])}_issue_key")

    def epic_elsewhere(self) -> str:
        """An epic in a local project no mapping covers (OUT): out of scope."""
        self.sims["local"].store.add_project(key="OUT", name="Elsewhere")
        fields = {"project": {"key": "OUT"}, "issuetype": {"name": "Epic"}, "summary": "Out"}
        return self.api("local", "POST", "/issue", json={"fields": fields})["key"]

    def echoes_cost_nothing(self, side: str) -> bool:
        """`side`'s webhooks since the last take are all echoes, and cost no Jira call."""
        self.reset_calls()
        return set(self.feed_all(side)) == {"echo"} and self.total_calls() == 0

    def issues(self, side: str) -> list[dict]:
        store = self.sims[side].store
        with store.lock:
            return [dict(i) for i in store.issues.values() if i["project"] == PROJECT[side]]


def _side(side: str) -> str:
    return "local" if side == "local" else "remote"


@pytest.fixture
def hw(settings):
    w = HierarchyWorld(settings, partner_flavor="datacenter")
    yield w
    w.close()


@pytest.fixture
def cloud_hw(settings):
    w = HierarchyWorld(settings, partner_flavor="cloud")
    yield w
    w.close()


@pytest.mark.parametrize("way", WAYS)
def test_a_sub_task_is_created_under_its_parents_copy_and_its_echo_costs_nothing(hw, way):
    edited, other = WAYS[way], OTHER[WAYS[way]]
    parent = hw.create(edited, "Parent")
    assert hw.feed_all(edited) == ["done"]
    hw.feed_all(other)
    sub = hw.create(edited, "Child", "Sub-task", above=parent)
    assert hw.feed_all(edited) == ["done"]
    copy = hw.copy(edited, sub)
    assert hw.above(other, copy) == hw.copy(edited, parent)
    got = hw.api(other, "GET", f"/issue/{copy}")["fields"]
    assert got["issuetype"]["subtask"] is True and got["summary"] == "Child"
    assert hw.echoes_cost_nothing(other)


@pytest.mark.parametrize("way", WAYS)
def test_a_parent_without_a_copy_is_synced_first_and_only_once(hw, way):
    edited, other = WAYS[way], OTHER[WAYS[way]]
    parent = hw.create(edited, "Parent")
    sub = hw.create(edited, "Child", "Sub-task", above=parent)
    parent_hook, sub_hook = hw.take(edited)
    assert hw.feed(edited, sub_hook) == "done"  # the sub-task's event arrives first
    assert hw.above(other, hw.copy(edited, sub)) == hw.copy(edited, parent)
    event = SyncEvent.objects.filter(issue_link__isnull=False, action="create").order_by("pk")
    assert "synced first" in event.first().message
    assert hw.feed(edited, parent_hook) == "done"  # nothing more to do: already linked
    assert sorted(i["summary"] for i in hw.issues(other)) == ["Child", "Parent"]
    assert set(hw.feed_all(other)) == {"echo"}


@pytest.mark.parametrize("way", WAYS)
def test_a_sub_task_of_a_story_of_an_epic_brings_both_above_it_first(hw, way):
    edited, other = WAYS[way], OTHER[WAYS[way]]
    epic = hw.create(edited, "Epic", "Epic")
    story = hw.create(edited, "Story", above=epic)
    sub = hw.create(edited, "Child", "Sub-task", above=story)
    *_, sub_hook = hw.take(edited)
    assert hw.feed(edited, sub_hook) == "done"
    assert hw.above(other, hw.copy(edited, sub)) == hw.copy(edited, story)
    assert hw.above(other, hw.copy(edited, story)) == hw.copy(edited, epic)
    assert sorted(i["summary"] for i in hw.issues(other)) == ["Child", "Epic", "Story"]
    assert hw.echoes_cost_nothing(other)


@pytest.mark.parametrize("way", WAYS)
def test_cloud_parent_and_data_center_epic_link_map_onto_each_other(hw, way):
    edited, other = WAYS[way], OTHER[WAYS[way]]
    epic = hw.create(edited, "Epic", "Epic")
    story = hw.create(edited, "Story", above=epic)
    hw.feed_all(edited)
    epic_copy = hw.copy(edited, epic)
    story_copy = hw.copy(edited, story)
    assert hw.above(other, story_copy) == epic_copy
    if other == "partner":  # Data Center: by the Epic Link, and the Epic got its Epic Name
        fields = hw.api(other, "GET", f"/issue/{story_copy}")["fields"]
        assert fields[DC_EPIC_LINK] == epic_copy and "parent" not in fields
        assert hw.api(other, "GET", f"/issue/{epic_copy}")["fields"][DC_EPIC_NAME] == "Epic"
    else:  # Cloud: by parent
        assert hw.api(other, "GET", f"/issue/{story_copy}")["fields"]["parent"]["key"] == epic_copy
    assert hw.echoes_cost_nothing(other)


@pytest.mark.parametrize("way", WAYS)
def test_a_change_of_epic_follows_and_its_echo_writes_nothing_back(hw, way):
    edited, other = WAYS[way], OTHER[WAYS[way]]
    first, second = hw.create(edited, "First", "Epic"), hw.create(edited, "Second", "Epic")
    story = hw.create(edited, "Story", above=first)
    hw.feed_all(edited)
    hw.feed_all(other)
    hw.set_above(edited, story, second)
    assert hw.feed_all(edited) == ["done"]
    assert hw.above(other, hw.copy(edited, story)) == hw.copy(edited, second)
    assert hw.echoes_cost_nothing(other)
    hw.set_above(edited, story, None)
    assert hw.feed_all(edited) == ["done"]
    assert hw.above(other, hw.copy(edited, story)) is None
    assert hw.feed_all(other) == ["echo"]


def _move_a_synced_sub_task(w: HierarchyWorld) -> tuple[str, str, str]:
    """A local sub-task, synced, then moved to another parent: (sub-task, first, second)."""
    first, second = w.create("local", "First"), w.create("local", "Second")
    sub = w.create("local", "Child", "Sub-task", above=first)
    w.feed_all("local")
    w.feed_all("partner")
    w.set_above("local", sub, second)
    assert w.feed_all("local") == ["done"]
    return sub, first, second


def test_a_sub_task_moved_to_another_parent_follows_on_cloud(cloud_hw):
    sub, _, second = _move_a_synced_sub_task(cloud_hw)
    assert cloud_hw.above("partner", cloud_hw.copy("local", sub)) == cloud_hw.copy("local", second)
    assert cloud_hw.echoes_cost_nothing("partner")


def test_data_center_cannot_move_a_sub_task_so_the_move_is_recorded(hw):
    sub, first, _ = _move_a_synced_sub_task(hw)
    copy = hw.copy("local", sub)
    assert hw.above("partner", copy) == hw.copy("local", first)  # Jira refused the move
    event = SyncEvent.objects.filter(direction="push").latest("pk")
    assert event.result == "error" and "parent" in event.message
    hw.reset_calls()
    hw.api("local", "PUT", f"/issue/{sub}", json={"fields": {"summary": "Renamed"}})
    assert hw.feed_all("local") == ["done"]
    assert hw.api("partner", "GET", f"/issue/{copy}")["fields"]["summary"] == "Renamed"
    assert hw.total_writes() == 1  # the refused move is not tried again with every edit


def test_a_sub_task_whose_parent_is_out_of_scope_is_not_created_and_that_is_recorded(hw):
    """The mapping pushes only issues labelled `shared`: the sub-task is, its parent not."""
    ProjectMapping.objects.filter(organization=hw.org).update(push_jql="labels = shared")
    outside = hw.create("local", "Not shared")
    sub = hw.create("local", "Child", "Sub-task", above=outside)
    hw.api("local", "PUT", f"/issue/{sub}", json={"fields": {"labels": ["shared"]}})
    assert "done" in hw.feed_all("local")
    assert hw.issues("partner") == []
    event = SyncEvent.objects.filter(direction="push", action="skipped").latest("pk")
    assert "parent not synced" in event.message and outside in event.message


def test_a_story_under_an_out_of_scope_epic_is_created_without_it_and_that_is_recorded(hw):
    epic = hw.epic_elsewhere()
    story = hw.create("local", "Story", above=epic)
    assert hw.feed_all("local") == ["done"]
    assert hw.above("partner", hw.copy("local", story)) is None
    event = SyncEvent.objects.filter(direction="push", action="create").latest("pk")
    assert "parent not synced" in event.message and epic in event.message
    assert set(hw.feed_all("partner")) == {"echo"}


def test_a_move_under_an_epic_that_is_not_synced_leaves_the_copy_as_it_is_and_is_recorded(hw):
    epic = hw.create("local", "Epic", "Epic")
    story = hw.create("local", "Story", above=epic)
    hw.feed_all("local")
    hw.feed_all("partner")
    outside = hw.epic_elsewhere()
    hw.set_above("local", story, outside)
    hw.reset_calls()
    assert hw.feed_all("local") == ["done"]
    assert hw.above("partner", hw.copy("local", story)) == hw.copy("local", epic)
    assert hw.total_writes() == 0
    event = SyncEvent.objects.filter(direction="push").latest("pk")
    assert "parent not synced" in event.message and outside in event.message
    hw.api("local", "PUT", f"/issue/{story}", json={"fields": {"summary": "Next"}})
    assert hw.feed_all("local") == ["done"]
    assert hw.total_writes() == 1  # the summary only: the parent is not tried again


def test_a_story_whose_epic_copy_the_partner_refuses_is_created_without_it_and_recorded(hw):
    """The issue type map makes the epic's copy a Task: Data Center refuses an Epic Link to
    it, so the story is created without one instead of failing."""
    ProjectMapping.objects.filter(organization=hw.org).update(issue_type_map={"Epic": "Task"})
    epic = hw.create("local", "Epic", "Epic")
    story = hw.create("local", "Story", above=epic)
    assert hw.feed_all("local") == ["done", "done"]
    story_copy = hw.copy("local", story)
    assert hw.above("partner", story_copy) is None
    event = SyncEvent.objects.filter(direction="push", action="create").latest("pk")
    assert event.result == "error" and "created without it" in event.message
    assert set(hw.feed_all("partner")) == {"echo"}
    hw.api("local", "PUT", f"/issue/{story}", json={"fields": {"summary": "Next"}})
    hw.reset_calls()
    assert hw.feed_all("local") == ["done"]
    assert hw.total_writes() == 1  # the summary: the refused epic is not tried again


@pytest.mark.parametrize("way", WAYS)
def test_an_ordinary_edit_of_a_sub_task_costs_the_calls_and_queries_any_edit_costs(hw, way):
    edited, other = WAYS[way], OTHER[WAYS[way]]
    plain = hw.create(edited, "Plain")
    sub = hw.create(edited, "Child", "Sub-task", above=plain)
    hw.feed_all(edited)
    hw.feed_all(other)
    costs = []
    # The first edit of the plain issue warms what any first sync of a site learns once.
    for n, key in enumerate((plain, plain, sub)):
        hw.reset_calls()
        hw.api(edited, "PUT", f"/issue/{key}", json={"fields": {"summary": f"New {n}"}})
        with CaptureQueriesContext(connection) as queries:
            assert hw.feed_all(edited) == ["done"]
        costs.append((hw.total_calls(), hw.total_writes(), len(queries)))
        assert hw.feed_all(other) == ["echo"]
    assert costs[1] == costs[2]


def test_a_hierarchy_in_step_is_no_drift_and_no_catch_up_work(hw, settings):
    """The drift check and the catch-up ask each site for what reading a parent needs (the
    Epic Link on Data Center), so pairs in step are neither drift nor re-synced."""
    settings.SYNC_DRIFT_GRACE_SECONDS = 0
    epic = hw.create("partner", "Epic", "Epic")
    story = hw.create("partner", "Story", above=epic)
    hw.create("partner", "Child", "Sub-task", above=story)
    hw.feed_all("partner")
    hw.feed_all("local")
    hw.reset_calls()
    report = drift.drift_check(organization=hw.org)
    assert (report.pairs, report.drifted) == (3, 0)
    assert not Drift.objects.exists()
    caught = reconcile_catch_up(organization=hw.org)
    assert caught.healed == 0
    assert caught.searched == report.calls == 2  # one search of each site, each time
    assert writes(hw) == 0
