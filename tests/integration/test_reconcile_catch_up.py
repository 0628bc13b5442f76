"""Reconciliation catch-up: a change whose webhook was lost is found by one search per
mapping and side and synced by the webhook's path; the heal's own webhook is an echo.

Two simulated sites over real HTTP (the `world` of test_loop_prevention): a "lost" webhook
is one taken from the capture and never fed to the service.
"""

from __future__ import annotations

import pytest
import requests

from sync.models import IssueLink, ReconcileMark, ReconcileRun, SyncEvent
from sync.reconcile import HEAL_NOTE, reconcile_catch_up

from .test_loop_prevention import SYNC

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_grace(settings):
    settings.SYNC_RECONCILE_GRACE_SECONDS = 0  # the changes below are seconds old


def writes(world) -> int:
    """The sync accounts' writes (a search is a POST too, and writes nothing)."""
    return sum(
        1
        for side in world.sims
        for c in requests.get(f"{world.sims[side].base_url}/_sim/calls", timeout=5).json()["calls"]
        if c.get("user") == SYNC[side][0]
        and c["method"] in ("POST", "PUT", "DELETE")
        and "/search" not in c["path"]
    )


def searches(world, side: str) -> int:
    log = requests.get(f"{world.sims[side].base_url}/_sim/calls", timeout=5).json()["calls"]
    return sum(1 for c in log if "/search" in c["path"])


def lose(world, side: str) -> None:
    """The site's webhooks since the last take never reach the service."""
    assert world.take(side), "the change sent a webhook (then lost)"


@pytest.mark.parametrize("side", ["local", "partner"])
def test_a_change_whose_webhook_was_lost_is_healed_and_its_echo_recognised(world, side):
    other = "partner" if side == "local" else "local"
    world.edit(side, summary=f"Changed on the {side} side, webhook lost")
    lose(world, side)
    world.reset_calls()

    report = reconcile_catch_up(organization=world.org)

    assert report.healed == 1 and report.created == 0
    assert report.per_side[world_side(side)]["healed"] == 1
    assert world.fields(other)["summary"] == f"Changed on the {side} side, webhook lost"
    assert writes(world) == 1
    assert SyncEvent.objects.filter(message__contains=HEAL_NOTE).count() == 1
    # The write's own webhook comes back: recognised as ours, costs nothing.
    world.reset_calls()
    assert world.feed_all(other) == ["echo"]
    assert world.total_calls() == 0
    # Nothing left to heal: the next run finds both sides in step.
    again = reconcile_catch_up(organization=world.org)
    assert again.healed == 0
    assert writes(world) == 0


def world_side(side: str) -> str:
    return "local" if side == "local" else "remote"


def test_a_comment_whose_webhook_was_lost_is_copied_once(world):
    world.api("partner", "POST", f"/issue/{world.keys['partner']}/comment", json={"body": rich()})
    lose(world, "partner")

    assert reconcile_catch_up(organization=world.org).healed == 1
    comments = world.api("local", "GET", f"/issue/{world.keys['local']}/comment")["comments"]
    assert len(comments) == 1
    world.reset_calls()
    assert "echo" in world.feed_all("local")  # the copy's webhook is ours: nothing written
    assert writes(world) == 0
    assert reconcile_catch_up(organization=world.org).healed == 0


def rich(text: str = "A comment nobody heard of") -> dict:
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
    }


@pytest.mark.parametrize("side", ["local", "partner"])
def test_an_issue_created_while_nothing_listened_is_created_on_the_other_side_once(world, side):
    other = "partner" if side == "local" else "local"
    project = "LOC" if side == "local" else "REM"
    created = world.api(
        side,
        "POST",
        "/issue",
        json={
            "fields": {
                "project": {"key": project},
                "issuetype": {"name": "Task"},
                "summary": "Made while the service was down",
            }
        },
    )
    lose(world, side)

    report = reconcile_catch_up(organization=world.org)
    assert report.created == 1 and report.healed == 1
    link = IssueLink.objects.get(**{f"{world_side(side)}_issue_id": str(created["id"])})
    copy = world.api(other, "GET", f"/issue/{link.__dict__[f'{world_side(other)}_issue_key']}")
    assert copy["fields"]["summary"] == "Made while the service was down"
    # The copy's create webhook is ours; a second run (and its search finding the copy on
    # the other side) creates nothing more.
    assert set(world.feed_all(other)) <= {"echo"}
    assert reconcile_catch_up(organization=world.org).created == 0
    assert IssueLink.objects.count() == 2
    project_other = "REM" if side == "local" else "LOC"
    found = world.api(
        other, "POST", search_path(world, other), json={"jql": f"project = {project_other}"}
    )
    assert len(found["issues"]) == 2  # the pair made by link_pair, and this copy


def search_path(world, side: str) -> str:
    return "/search/jql" if world.versions[side] == "3" else "/search"


def test_an_idle_run_costs_one_search_per_mapping_and_side(world):
    # The linked pair was changed moments ago (inside the window) but is in step.
    reconcile_catch_up(organization=world.org)
    world.reset_calls()

    report = reconcile_catch_up(organization=world.org)

    assert report.searched == 2 and report.healed == 0
    assert world.calls("local") == 1 and world.calls("partner") == 1
    assert searches(world, "local") == 1 and searches(world, "partner") == 1
    marks = ReconcileMark.objects.filter(organization=world.org)
    assert sorted(marks.values_list("side", flat=True)) == ["local", "remote"]
    assert ReconcileRun.objects.filter(organization=world.org).count() == 2


def test_a_dry_run_reports_and_writes_nothing(world):
    world.edit("partner", summary="Seen by the dry run only")
    lose(world, "partner")
    world.reset_calls()

    report = reconcile_catch_up(organization=world.org, dry_run=True)

    assert report.healed == 1 and report.dry_run
    assert writes(world) == 0
    assert world.fields("local")["summary"] != "Seen by the dry run only"
    assert not ReconcileMark.objects.exists() and not ReconcileRun.objects.exists()


def test_a_rate_limited_site_stops_the_run_and_the_next_run_picks_up(world):
    world.edit("partner", summary="Behind a 429")
    lose(world, "partner")
    faults = {"rate_limit_count": 1, "retry_after": 7, "path_pattern": "/search"}
    requests.post(f"{world.sims['partner'].base_url}/_sim/faults", json=faults, timeout=5)
    seen = []

    stopped = reconcile_catch_up(organization=world.org, progress=lambda d, t: seen.append(d))

    assert "429" in stopped.stopped and "7 s" in stopped.stopped
    assert stopped.healed == 0
    assert not ReconcileMark.objects.filter(side="remote").exists()
    assert seen[0] == 0
    healed = reconcile_catch_up(organization=world.org)
    assert healed.healed == 1 and not healed.stopped
    assert world.fields("local")["summary"] == "Behind a 429"


def test_the_status_api_and_dashboard_show_the_catch_up(world, settings, superuser, client):
    from rest_framework.test import APIClient

    settings.SYNC_RECONCILE_WARN_HEALED = 0
    world.edit("partner", summary="Lost once")
    lose(world, "partner")
    reconcile_catch_up(organization=world.org)

    api = APIClient()
    api.force_authenticate(superuser)
    body = api.get("/api/status/").json()
    mine = next(o for o in body["organizations"] if o["id"] == world.org.public_id)
    catch_up = mine["reconciliation"]
    assert catch_up["healed24h"] == 1 and catch_up["warning"] is True
    assert catch_up["lastReconciled"]["local"] and catch_up["lastReconciled"]["remote"]
    client.force_login(superuser)
    page = client.get("/admin/dashboard/").content.decode()
    assert 'data-healed="1"' in page and "webhooks are being lost" in page


def test_a_datacenter_partner_change_whose_webhook_was_lost_is_healed(settings):
    from .test_loop_prevention import World

    world = World(settings, partner_flavor="datacenter")
    try:
        world.link_pair()
        world.edit("partner", duedate="2027-03-22", labels=["lost"])
        lose(world, "partner")
        world.reset_calls()

        report = reconcile_catch_up(organization=world.org)

        assert report.per_side["remote"]["healed"] == 1 and report.healed == 1
        assert world.fields("local")["duedate"] == "2027-03-22"
        assert world.fields("local")["labels"] == ["lost"]
        assert searches(world, "partner") == 1  # Data Center's /search, one page
        assert set(world.feed_all("local")) == {"echo"}
    finally:
        world.close()


@pytest.mark.parametrize("side", ["local", "partner"])
def test_an_attachment_whose_webhook_was_lost_is_copied_once(world, side):
    """Only the attachment changed (no field, no comment): the catch-up still sees it."""
    other = "partner" if side == "local" else "local"
    path = f"/issue/{world.keys[side]}/attachments"
    files = [("file", ("lost.txt", b"nobody heard of this file", "text/plain"))]
    world.api(side, "POST", path, files=files, headers={"X-Atlassian-Token": "no-check"})
    lose(world, side)

    assert reconcile_catch_up(organization=world.org).healed == 1
    copies = world.fields(other)["attachment"]
    assert [(a["filename"], a["size"]) for a in copies] == [("lost.txt", 25)]
    world.reset_calls()
    assert "echo" in world.feed_all(other)  # the upload's webhook is ours: nothing written
    assert writes(world) == 0
    assert reconcile_catch_up(organization=world.org).healed == 0
    assert len(world.fields(other)["attachment"]) == 1


def test_an_issue_link_whose_webhook_was_lost_is_mirrored_once(world):
    """A second pair, then a link between the two issues whose webhooks are all lost."""
    key = world.api(
        "local",
        "POST",
        "/issue",
        json={"fields": {"project": {"key": "LOC"}, "issuetype": {"name": "Task"}, "summary": "2"}},
    )["key"]
    for _ in range(3):
        world.feed_all("local")
        world.feed_all("partner")
    second = IssueLink.objects.get(local_issue_key=key)
    assert second.remote_issue_key
    body = {
        "type": {"name": "Blocks"},
        "inwardIssue": {"key": world.keys["local"]},
        "outwardIssue": {"key": key},
    }
    world.api("local", "POST", "/issueLink", json=body)
    lose(world, "local")

    report = reconcile_catch_up(organization=world.org)

    assert report.healed >= 1
    mirrored = world.fields("partner")["issuelinks"]
    assert [(x["type"]["name"], x.get("outwardIssue", {}).get("key")) for x in mirrored] == [
        ("Blocks", second.remote_issue_key)
    ]
    world.feed_all("partner")
    world.feed_all("local")
    world.reset_calls()
    assert reconcile_catch_up(organization=world.org).healed == 0
    assert writes(world) == 0
    assert len(world.fields("partner")["issuelinks"]) == 1
