"""Moved issues (issue 15, item 5), both directions, Cloud and Data Center partners.

A move changes an issue's key and keeps its id. The pair follows the id and takes the new
key; a move to another mapped project keeps syncing the pair (its copy cannot be moved by
REST, and that is recorded); a move out of every mapped project applies the delete policy
as if the issue were deleted; a move into a mapped project starts syncing it, and moving
out and back in never makes a second copy. The sites' webhooks cover every project here
(a webhook whose JQL names only the mapped projects does not see a move out: Jira filters
on the issue as moved).
"""

from __future__ import annotations

import pytest
import requests

from jirasim import JiraSim
from organizations import services as org_services
from sync.models import IssueLink, LinkStatus, SyncEvent
from sync.reconcile import reconcile_catch_up

from .test_loop_prevention import ALICE, OTHER, SYNC, WAYS, World

pytestmark = pytest.mark.django_db

PROJECTS = {"local": ("LOC", "LOC2", "OUT"), "partner": ("REM", "REM2", "OUT")}
FLAVORS = ("cloud", "datacenter")


class MovesWorld(World):
    """`World` with two mapped projects a side (LOC <-> REM, LOC2 <-> REM2) and one project
    no mapping names (OUT), webhooks covering all three."""

    def __init__(self, settings, *, partner_flavor: str = "cloud", **org_fields) -> None:
        super().__init__(
            settings,
            partner_flavor=partner_flavor,
            more_projects={side: projects[1:] for side, projects in PROJECTS.items()},
            jql={side: "project in ({})".format(", ".join(p)) for side, p in PROJECTS.items()},
            **org_fields,
        )
        org_services.project_mapping_create(
            organization=self.org, local_project_key="LOC2", remote_project_key="REM2"
        )

    def move(self, side: str, project: str) -> str:
        """A person moves the side's issue to `project` (Jira's move; the simulator's control)."""
        self.keys[side] = self.sims[side].move_issue(self.keys[side], project, ALICE[0])
        return self.keys[side]

    def comments(self, side: str) -> list[str]:
        found = self.api(side, "GET", f"/issue/{self.keys[side]}/comment")["comments"]
        return [str(c["body"]) for c in found]

    def exists(self, side: str, key: str) -> bool:
        version = self.versions[side]
        url = f"{self.sims[side].base_url}/rest/api/{version}/issue/{key}"
        return requests.get(url, auth=ALICE, timeout=5).status_code == 200

    def issues_in(self, side: str) -> int:
        return len(self.sims[side].store.issues)


def moves_world(settings, flavor="cloud", **org_fields) -> MovesWorld:
    w = MovesWorld(settings, partner_flavor=flavor, **org_fields)
    w.link_pair()
    return w


@pytest.fixture(params=FLAVORS)
def world_of(request, settings):
    made = []

    def make(**org_fields) -> MovesWorld:
        made.append(moves_world(settings, request.param, **org_fields))
        return made[-1]

    yield make
    for w in made:
        w.close()


@pytest.mark.parametrize("way", WAYS)
def test_a_moved_issue_keeps_its_pair_follows_the_new_key_and_keeps_syncing(world_of, way):
    w = world_of()
    edited, other = WAYS[way], OTHER[WAYS[way]]
    copy_key = w.keys[other]
    new_key = w.move(edited, PROJECTS[edited][1])
    assert w.feed_all(edited) == ["done"]

    link = IssueLink.objects.get()
    assert link.status == LinkStatus.LINKED
    assert (link.local_issue_key if edited == "local" else link.remote_issue_key) == new_key
    event = SyncEvent.objects.latest("pk")
    assert f"its copy {copy_key} stays where it is" in event.message
    assert w.total_writes() == 0  # the move itself changes no mapped field

    w.edit(edited, summary="After the move")
    assert w.feed_all(edited) == ["done"]
    assert w.fields(other)["summary"] == "After the move"
    assert w.keys[other] == copy_key and IssueLink.objects.count() == 1
    w.reset_calls()
    assert w.feed_all(other) == ["echo"]
    assert w.total_writes() == 0
    w.edit(other, summary="Back from the copy")  # and the other way, to the new key
    assert w.feed_all(other) == ["done"]
    assert w.api(edited, "GET", f"/issue/{new_key}")["fields"]["summary"] == "Back from the copy"


@pytest.mark.parametrize("way", WAYS)
def test_a_move_out_of_every_mapped_project_comments_on_the_copy_by_the_delete_policy(
    world_of, way
):
    w = world_of()  # the default delete policy: a comment on the copy
    edited, other = WAYS[way], OTHER[WAYS[way]]
    w.move(edited, "OUT")
    assert w.feed_all(edited) == ["done"]

    link = IssueLink.objects.get()
    assert link.status == LinkStatus.DELETED
    event = SyncEvent.objects.latest("pk")
    assert "moved out to OUT" in event.message
    (comment,) = w.comments(other)
    assert "no longer synced" in comment and "moved" in comment
    if way == "push":
        assert "OUT" not in comment  # our project names stay ours
    w.reset_calls()
    # Our comment coming back: the pair is closed, so nothing is done and nothing is asked.
    assert set(w.feed_all(other)) <= {"echo", "done"}
    assert w.total_calls() == 0

    w.edit(edited, summary="Out of scope now")
    assert w.feed_all(edited) == ["ignored"]
    assert w.total_writes() == 0


@pytest.mark.parametrize("way", WAYS)
def test_a_move_out_with_the_delete_policy_deletes_the_copy(world_of, way):
    policy = "local_delete_policy" if way == "push" else "remote_delete_policy"
    w = world_of(**{policy: "delete"})
    edited, other = WAYS[way], OTHER[WAYS[way]]
    copy_key = w.keys[other]
    w.move(edited, "OUT")
    assert w.feed_all(edited) == ["done"]

    assert not w.exists(other, copy_key)
    assert w.exists(edited, w.keys[edited])  # the moved issue itself is untouched
    assert IssueLink.objects.get().status == LinkStatus.DELETED
    w.reset_calls()
    assert set(w.feed_all(other)) == {"echo"}  # our delete coming back
    assert w.total_writes() == 0


def test_a_move_out_with_the_unlink_policy_only_closes_the_pair(world_of):
    w = world_of(local_delete_policy="unlink")
    w.move("local", "OUT")
    assert w.feed_all("local") == ["done"]
    assert IssueLink.objects.get().status == LinkStatus.DELETED
    assert w.comments("partner") == []
    assert w.total_writes() == 0


def test_an_issue_moved_into_a_mapped_project_is_created_at_the_partner_once(world_of):
    w = world_of()
    created = w.create_issue("local", "Z", project="OUT")
    w.keys["local"] = created["key"]
    assert w.feed_all("local") == ["ignored"]  # not in a mapped project
    before = w.issues_in("partner")

    w.move("local", "LOC")
    assert w.feed_all("local") == ["done"]
    link = IssueLink.objects.get(local_issue_id=created["id"])
    assert link.remote_issue_key.startswith("REM-")
    assert w.issues_in("partner") == before + 1
    w.keys["partner"] = link.remote_issue_key
    assert w.fields("partner")["summary"] == "Z"
    assert set(w.feed_all("partner")) <= {"echo"}

    # Out and back in again: the same copy syncs again, no second one.
    w.move("local", "OUT")
    assert w.feed_all("local") == ["done"]
    w.feed_all("partner")
    w.edit("local", summary="Changed while out")
    w.feed_all("local")
    w.move("local", "LOC")
    assert w.feed_all("local") == ["done"]
    assert w.issues_in("partner") == before + 1
    link.refresh_from_db()
    assert link.status == LinkStatus.LINKED and link.remote_issue_key == w.keys["partner"]
    assert w.fields("partner")["summary"] == "Changed while out"
    assert "moved back into LOC" in SyncEvent.objects.latest("pk").message
    w.reset_calls()
    assert set(w.feed_all("partner")) <= {"echo"}
    assert w.total_writes() == 0


def test_moved_back_in_after_its_copy_was_deleted_makes_one_new_copy(world_of):
    w = world_of(local_delete_policy="delete")
    old_copy = w.keys["partner"]
    w.move("local", "OUT")
    w.feed_all("local")
    w.feed_all("partner")
    w.move("local", "LOC")
    assert w.feed_all("local") == ["done"]

    link = IssueLink.objects.get()
    assert link.status == LinkStatus.LINKED
    assert link.remote_issue_key != old_copy and w.exists("partner", link.remote_issue_key)
    assert not w.exists("partner", old_copy)
    assert w.issues_in("partner") == 1  # the new copy alone (a deleted issue is gone)


def test_a_late_move_out_event_does_not_close_a_pair_moved_back_in(world_of):
    w = world_of()
    w.move("local", "OUT")
    w.move("local", "LOC")
    out_event, back_event = w.take("local")
    assert w.feed("local", back_event) == "done"
    assert w.feed("local", out_event) in ("done", "ignored")

    link = IssueLink.objects.get()
    assert link.status == LinkStatus.LINKED
    assert w.comments("partner") == []


def test_catch_up_follows_a_moved_issue_by_id_and_creates_no_second_copy(world_of, settings):
    settings.SYNC_RECONCILE_GRACE_SECONDS = 0
    w = world_of()
    w.move("local", "LOC2")
    w.edit("local", summary="Moved and edited, webhooks lost")
    assert w.take("local")  # lost
    before = w.issues_in("partner")

    report = reconcile_catch_up(organization=w.org)

    assert report.created == 0
    assert w.issues_in("partner") == before
    assert w.fields("partner")["summary"] == "Moved and edited, webhooks lost"
    link = IssueLink.objects.get()
    assert link.status == LinkStatus.LINKED and link.local_issue_key == w.keys["local"]


@pytest.mark.parametrize("side", ["local", "partner"])
def test_the_drift_check_finds_a_moved_issue_by_id_and_reports_nothing_gone(
    world_of, settings, side
):
    from sync.drift import drift_check

    settings.SYNC_DRIFT_GRACE_SECONDS = 0
    w = world_of()
    w.move(side, PROJECTS[side][1])
    assert w.take(side)  # its webhook lost: the pair still has the old key

    report = drift_check(organization=w.org)

    assert report.pairs == 1
    assert report.gone == 0 and report.drifted == 0
    assert IssueLink.objects.get().status == LinkStatus.LINKED


def test_a_move_between_two_organizations_projects_hands_the_issue_over(world_of):
    """LOC is shared with one partner, LOC2 with another: moved from LOC to LOC2, the first
    partner's copy gets the delete policy and the second partner gets a copy."""
    w = world_of()
    first = w.org
    second_sim = JiraSim("datacenter", ["OTH:Other"], [":".join(SYNC["partner"])])
    second_sim.start()
    try:
        first.project_mappings.filter(local_project_key="LOC2").delete()
        second = org_services.organization_create(
            name="Second",
            remote_base_url=second_sim.base_url,
            remote_user=SYNC["partner"][0],
            remote_token=SYNC["partner"][1],
            remote_flavor="datacenter",
        )
        org_services.project_mapping_create(
            organization=second, local_project_key="LOC2", remote_project_key="OTH"
        )
        w.move("local", "LOC2")
        assert w.feed_all("local") == ["done"]

        assert IssueLink.objects.get(organization=first).status == LinkStatus.DELETED
        assert any("no longer synced" in c for c in w.comments("partner"))
        handed = IssueLink.objects.get(organization=second)
        assert handed.status == LinkStatus.LINKED and handed.remote_issue_key == "OTH-1"
        assert len(second_sim.store.issues) == 1
    finally:
        second_sim.stop()
