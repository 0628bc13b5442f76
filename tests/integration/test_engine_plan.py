"""Plan, then apply: a preview (dry run) is the plan alone and writes nothing anywhere."""

from __future__ import annotations

import pytest

from organizations import services as org_services
from sync import engine
from sync.jobs import job_build
from sync.models import EchoLock, IssueLink, SyncEvent

pytestmark = pytest.mark.django_db


def _job(world, **kwargs):
    link = IssueLink.objects.get()
    issue = world.api("local", "GET", f"/issue/{link.local_issue_key}")
    return job_build(
        project_mapping=world.org.project_mappings.get(),
        way="push",
        issue_id=link.local_issue_id,
        issue=issue,
        **kwargs,
    )


def test_a_preview_says_what_would_change_and_writes_nothing(world):
    world.edit("local", summary="previewed", labels=["x"])
    world.take("local")
    link_before = IssueLink.objects.values().get()
    events_before = SyncEvent.objects.count()
    world.reset_calls()

    change = engine.preview(_job(world))

    assert change.action == "update"
    assert change.fields == ["labels", "summary"]
    assert world.total_writes() == 0
    assert IssueLink.objects.values().get() == link_before
    assert not EchoLock.objects.exists()
    assert SyncEvent.objects.count() == events_before
    assert world.fields("partner")["summary"] == "A"


def test_applying_the_same_job_writes_what_the_preview_said(world):
    world.edit("local", summary="applied")
    world.take("local")
    previewed = engine.preview(_job(world))
    applied = engine.sync_issue(_job(world))
    assert (applied.action, applied.fields) == (previewed.action, previewed.fields)
    assert world.fields("partner")["summary"] == "applied"
    assert applied.calls >= 1  # counted per job, not per process


def test_components_cross_by_name_and_their_echo_is_recognised(world):
    org_services.field_mapping_create(
        organization=world.org, local_field="components", remote_field="components"
    )
    world.edit("local", components=[{"name": "Backend"}])
    assert world.feed_all("local") == ["done"]
    assert [c["name"] for c in world.fields("partner")["components"]] == ["Backend"]
    world.reset_calls()
    assert set(world.feed_all("partner")) == {"echo"}
    assert world.total_calls() == 0
