"""Jira Cloud's search lags behind writes (issue 12, item 3): neither the push scope check nor
the recovery of a create whose answer was lost may depend on search being fresh."""

from __future__ import annotations

import pytest

from organizations import services as org_services
from sync.models import IssueLink
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db


def _create_local(world, summary: str, **fields) -> str:
    created = world.api(
        "local",
        "POST",
        "/issue",
        json={
            "fields": {
                "project": {"key": "LOC"},
                "issuetype": {"name": "Task"},
                "summary": summary,
                **fields,
            }
        },
    )
    return created["key"]


def _partner_summaries(world) -> list[str]:
    return [i["summary"] for i in world.sims["partner"].store.issues.values()]


@pytest.fixture
def scoped(world):
    """Only issues labelled `shared` are pushed."""
    mapping = world.org.project_mappings.get()
    org_services.project_mapping_update(mapping=mapping, data={"push_jql": "labels = shared"})
    return world


def test_a_new_issue_in_scope_is_pushed_although_search_lags(scoped):
    world = scoped
    world.sims["local"].set_faults(search_lag_ms=3000)
    try:
        key = _create_local(world, "in scope", labels=["shared"])
        _create_local(world, "out of scope", labels=["private"])
        assert world.feed_all("local") == ["done", "done"]
    finally:
        world.sims["local"].clear_faults()
    link = IssueLink.objects.get(local_issue_key=key)
    assert link.status == "linked"
    assert "in scope" in _partner_summaries(world)
    assert "out of scope" not in _partner_summaries(world)


def test_a_lost_create_answer_with_a_lagging_search_gives_one_partner_issue(world, settings):
    settings.SYNC_CREATE_SETTLE_SECONDS = 0  # look at once: search has not caught up
    partner = world.sims["partner"]
    partner.set_faults(
        search_lag_ms=5000, response_lost_count=1, path_pattern=r"^/rest/api/3/issue$"
    )
    try:
        _create_local(world, "lost answer")
        assert world.feed_all("local") == ["done"]
    finally:
        partner.clear_faults()
    assert _partner_summaries(world).count("lost answer") == 1
    delivery = WebhookDelivery.objects.latest("pk")
    assert delivery.attempts == 2  # the lost answer, then the recovery
    link = IssueLink.objects.exclude(local_issue_key=world.keys["local"]).get()
    assert link.status == "linked"
    assert partner.store.issues[link.remote_issue_id]["summary"] == "lost answer"


def test_a_normal_create_makes_no_extra_call(world):
    """The probe is for lost answers only: a create that was answered costs what it did."""
    world.reset_calls()
    _create_local(world, "answered")
    world.feed_all("local")
    partner_calls = [
        c for c in world.sims["partner"].calls() if c.get("user") == "sync@partner.example"
    ]
    assert not [c for c in partner_calls if "/search" in c["path"]]
    assert not [c for c in partner_calls if "properties" in c["path"] + c["query"]]
