"""Reconciliation's drift check and repair (sync/drift.py), on two simulated sites over HTTP.

A lost webhook is a webhook taken from the site's capture and never fed: the change it
carried is then only at its site, which is what the drift check is for.
"""

from __future__ import annotations

import io

import pytest
import requests
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command

from jiraapi import adf
from sync import drift
from sync.models import Drift, DriftCheck, DriftKind, IssueLink, LinkStatus, SyncEvent

from .test_loop_prevention import SYNC

pytestmark = pytest.mark.django_db

OTHER = {"local": "partner", "partner": "local"}


@pytest.fixture(autouse=True)
def no_grace(settings):
    """The changes of these tests are seconds old: no grace for webhooks still on their way."""
    settings.SYNC_DRIFT_GRACE_SECONDS = 0


def lose_webhooks(world) -> None:
    for side in world.sims:
        world.take(side)


def writes(world) -> int:
    """Calls of the sync accounts that change something (a search is a POST that does not)."""
    count = 0
    for side, sim in world.sims.items():
        log = requests.get(f"{sim.base_url}/_sim/calls", timeout=5).json()["calls"]
        count += sum(
            1
            for c in log
            if c.get("user") == SYNC[side][0]
            and c["method"] in ("POST", "PUT", "DELETE")
            and "/search" not in c.get("path", "")
        )
    return count


def sim_side(side: str) -> str:
    return "local" if side == "local" else "remote"


def test_a_lost_edit_is_found_listed_with_both_values_and_repaired_without_a_loop(world):
    world.edit("partner", summary="changed at the partner")
    lose_webhooks(world)
    before = {side: world.fields(side)["summary"] for side in world.sims}
    assert before["local"] != before["partner"]

    report = drift.drift_check(organization=world.org)

    assert (report.pairs, report.drifted, report.gone) == (1, 1, 0)
    (row,) = Drift.objects.all()
    assert (row.kind, row.field) == (DriftKind.FIELD, "summary")
    assert (row.local_value, row.remote_value) == (before["local"], before["partner"])
    check = DriftCheck.objects.get(organization=world.org)
    assert check.drifted == 1 and check.calls == report.calls > 0

    (outcome,) = drift.drift_repair(organization=world.org)

    assert outcome.action == "repaired" and outcome.winners == {"summary": "remote"}
    assert outcome.remaining == 0
    assert world.fields("local")["summary"] == world.fields("partner")["summary"]
    assert world.fields("local")["summary"] == before["partner"]
    assert not Drift.objects.exists()
    # The repair's own webhooks come back as echoes: nothing is written again.
    world.reset_calls()
    for side in world.sims:
        assert set(world.feed_all(side)) <= {"echo"}
    assert writes(world) == 0


def test_pairs_in_step_cost_one_search_per_side_and_record_no_drift(world):
    world.reset_calls()

    report = drift.drift_check(organization=world.org)

    assert (report.pairs, report.drifted, report.gone) == (1, 0, 0)
    assert report.calls == 2  # one search of each site
    assert not Drift.objects.exists()
    assert writes(world) == 0


@pytest.mark.parametrize("first", ["local", "partner"])
def test_both_sides_changed_the_later_change_stands(world, first):
    world.edit(first, summary=f"first, at {first}")
    world.edit(OTHER[first], summary=f"later, at {OTHER[first]}")
    later = world.fields(OTHER[first])["summary"]
    lose_webhooks(world)
    drift.drift_check(organization=world.org)

    (outcome,) = drift.drift_repair(organization=world.org)

    assert outcome.winners == {"summary": sim_side(OTHER[first])}
    assert world.fields("local")["summary"] == world.fields("partner")["summary"] == later


def test_the_organization_policy_decides_when_both_changed(world):
    world.org.conflict_policy = "local_wins"
    world.org.save()
    world.edit("local", summary="ours")
    world.edit("partner", summary="theirs, later")
    ours = world.fields("local")["summary"]
    lose_webhooks(world)
    drift.drift_check(organization=world.org)

    (outcome,) = drift.drift_repair(organization=world.org)

    assert outcome.winners == {"summary": "local"}
    assert world.fields("partner")["summary"] == ours


def test_a_lost_comment_is_found_and_copied_by_the_repair(world):
    world.api(
        "local",
        "POST",
        f"/issue/{world.keys['local']}/comment",
        json={"body": adf.wiki_to_adf("hello")},
    )
    lose_webhooks(world)

    drift.drift_check(organization=world.org)

    (row,) = Drift.objects.all()
    assert row.kind == DriftKind.COMMENT and row.remote_value is None
    assert "hello" in row.local_value
    drift.drift_repair(organization=world.org)
    partner = world.api("partner", "GET", f"/issue/{world.keys['partner']}/comment")["comments"]
    assert len(partner) == 1
    assert not Drift.objects.exists()
    world.reset_calls()
    world.feed_all("partner")  # the copy's webhooks: an echo, and Jira's knock-on event
    assert writes(world) == 0


@pytest.mark.parametrize("side", ["local", "partner"])
def test_a_link_whose_issue_is_gone_is_found_and_closed_by_the_repair(world, side):
    world.api(side, "DELETE", f"/issue/{world.keys[side]}")
    lose_webhooks(world)

    report = drift.drift_check(organization=world.org)

    assert report.gone == 1
    (row,) = Drift.objects.all()
    assert (row.kind, row.field) == (DriftKind.GONE, sim_side(side))
    (outcome,) = drift.drift_repair(organization=world.org)
    assert outcome.action == "closed"
    assert IssueLink.objects.get().status in (LinkStatus.DELETED, LinkStatus.GONE)
    assert not Drift.objects.exists()
    assert drift.drift_check(organization=world.org).pairs == 0


def test_a_push_only_partner_whose_issue_is_gone_gets_the_target_gone_policy(world):
    world.org.sync_direction = "push"
    world.org.save()
    world.api("partner", "DELETE", f"/issue/{world.keys['partner']}")
    lose_webhooks(world)
    drift.drift_check(organization=world.org)

    (outcome,) = drift.drift_repair(organization=world.org)

    assert "target-gone policy" in outcome.message
    assert IssueLink.objects.get().status == LinkStatus.GONE
    assert world.fields("local")["summary"]  # ours is untouched


def test_a_data_center_partner_is_checked_and_repaired(settings):
    from .test_loop_prevention import World

    world = World(settings, partner_flavor="datacenter")
    try:
        world.link_pair()
        world.edit("partner", priority={"name": "Highest"})
        lose_webhooks(world)

        report = drift.drift_check(organization=world.org)

        assert report.drifted == 1
        assert Drift.objects.get().field == "priority"
        drift.drift_repair(organization=world.org)
        assert world.fields("local")["priority"]["name"] == "Highest"
        assert not Drift.objects.exists()
    finally:
        world.close()


def test_a_dry_run_writes_nothing_anywhere(world):
    world.edit("partner", summary="changed at the partner")
    lose_webhooks(world)
    events = SyncEvent.objects.count()
    state = IssueLink.objects.get().state
    world.reset_calls()

    report = drift.drift_check(organization=world.org, dry_run=True)
    (outcome,) = drift.drift_repair(links=IssueLink.objects.all(), dry_run=True)

    assert report.drifted == 1 and outcome.winners == {"summary": "remote"}
    assert not Drift.objects.exists() and not DriftCheck.objects.exists()
    assert SyncEvent.objects.count() == events
    assert IssueLink.objects.get().state == state
    assert writes(world) == 0
    assert world.fields("local")["summary"] != world.fields("partner")["summary"]


def test_a_change_younger_than_the_grace_is_left_to_its_webhook(world, settings):
    settings.SYNC_DRIFT_GRACE_SECONDS = 3600
    world.edit("partner", summary="changed at the partner")
    lose_webhooks(world)

    report = drift.drift_check(organization=world.org)

    assert (report.pairs, report.busy, report.drifted) == (1, 1, 0)
    assert not Drift.objects.exists()
    settings.SYNC_DRIFT_GRACE_SECONDS = 0
    drift.drift_check(organization=world.org)
    assert Drift.objects.count() == 1
    settings.SYNC_DRIFT_GRACE_SECONDS = 3600  # a further change: the finding stays listed
    drift.drift_check(organization=world.org)
    assert Drift.objects.count() == 1


def test_an_app_to_app_organization_is_not_checked(world):
    world.org.connection_type = "app"
    world.org.save()

    report = drift.drift_check(organization=world.org)

    assert "Scenario B" in report.skipped and report.pairs == 0


# --- the dashboard's list and buttons ----------------------------------------------------------


@pytest.fixture
def celery_eager(settings):
    """The repair task runs in this process when the button enqueues it (as a worker would)."""
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture
def drifted(world):
    world.edit("partner", summary="changed at the partner")
    lose_webhooks(world)
    drift.drift_check(organization=world.org)
    return world


def test_the_dashboard_lists_drift_with_both_values_and_counts(client, superuser, drifted):
    client.force_login(superuser)

    page = client.get("/admin/dashboard/").content.decode()

    row = Drift.objects.get()
    assert 'id="drift-list"' in page
    assert row.local_value in page and row.remote_value in page
    assert 'class="drift-count" data-count="1"' in page
    status = client.get("/api/status/").json()
    assert status["drift"] == {"pairs": 1, "fields": 1, "gone": 0}
    (org,) = status["organizations"]
    assert org["drift"]["pairs"] == 1 and org["drift"]["lastCheckedAt"]


@pytest.mark.parametrize("scope", ["link", "org", "all"])
def test_a_repair_button_repairs(
    client, superuser, drifted, scope, django_capture_on_commit_callbacks, celery_eager
):
    client.force_login(superuser)
    target = {
        "link": str(IssueLink.objects.get().pk),
        "org": drifted.org.public_id,
        "all": "1",
    }[scope]

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/dashboard/drift/repair/", {scope: target})

    assert response.status_code == 302
    assert not Drift.objects.exists()
    assert drifted.fields("local")["summary"] == drifted.fields("partner")["summary"]


def test_repair_buttons_are_post_only_and_need_the_change_permission(
    client, django_user_model, drifted
):
    viewer = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_organization", "view_webhookdelivery", "view_syncevent"]
        )
    )
    client.force_login(viewer)
    link = str(IssueLink.objects.get().pk)

    assert client.get("/admin/dashboard/drift/repair/").status_code == 405
    assert client.post("/admin/dashboard/drift/repair/", {"link": link}).status_code == 403
    assert "drift-repair" not in client.get("/admin/dashboard/").content.decode()
    client.logout()
    anonymous = client.post("/admin/dashboard/drift/repair/", {"link": link})
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    assert Drift.objects.count() == 1
    assert drifted.fields("local")["summary"] != drifted.fields("partner")["summary"]


# --- the command -------------------------------------------------------------------------------


def run_reconcile(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("sync_reconcile", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_command_dry_run_lists_drift_and_writes_nothing(world):
    world.edit("partner", summary="changed at the partner")
    lose_webhooks(world)
    state = IssueLink.objects.get().state
    world.reset_calls()

    out, err = run_reconcile("--org", world.org.public_id, "--dry-run", "--repair")

    assert "1 differ" in out and "field summary" in out
    assert "would be repaired (summary: remote's value)" in out
    assert "drift check [" in err  # the progress line
    assert not Drift.objects.exists() and not DriftCheck.objects.exists()
    assert IssueLink.objects.get().state == state
    assert writes(world) == 0
    assert world.fields("local")["summary"] != world.fields("partner")["summary"]


def test_the_command_repairs_every_organization(world):
    world.edit("local", summary="changed here")
    lose_webhooks(world)

    out, _ = run_reconcile("--all", "--repair")

    assert "repair: 1 of 1 pairs repaired" in out
    assert world.fields("local")["summary"] == world.fields("partner")["summary"]
    assert not Drift.objects.exists()


def test_the_command_refuses_a_bad_since_and_an_unknown_organization(world):
    with pytest.raises(CommandError):
        run_reconcile("--org", world.org.public_id, "--since", "yesterday")
    with pytest.raises(CommandError):
        run_reconcile("--org", "org-nobody")
