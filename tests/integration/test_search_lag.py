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


def _client(sim):
    from jiraapi.client import JiraClient, JiraSite

    return JiraClient(JiraSite(sim.base_url, sim.flavor, "sync@partner.example", "p-tok"))


def _tagged_create(world, summary: str, link_id: int) -> dict:
    return world.api(
        "partner",
        "POST",
        "/issue",
        json={
            "fields": {
                "project": {"key": "REM"},
                "issuetype": {"name": "Task"},
                "summary": summary,
            },
            "properties": [{"key": "jira-sync.link", "value": {"linkId": link_id}}],
        },
    )


def test_find_created_reads_past_gaps_and_stops_after_a_few_misses(world):
    from django.utils import timezone

    from sync.writes import PROBE_MISSES, find_created

    partner = world.sims["partner"]
    started = timezone.now()
    gap = _tagged_create(world, "deleted again", 990)
    world.api("partner", "DELETE", f"/issue/{gap['key']}")
    ours = _tagged_create(world, "ours", 991)
    partner.set_faults(search_lag_ms=60_000)
    try:
        found = find_created(_client(partner), project="REM", link_id=991, started=started)
        assert found is not None and found["key"] == ours["key"]
        before = len(partner.calls())
        assert find_created(_client(partner), project="REM", link_id=992, started=started) is None
    finally:
        partner.clear_faults()
    reads = [c for c in partner.calls()[before:] if c["method"] == "GET"]
    # Each key search does not show is read once (the deleted one too), then PROBE_MISSES
    # keys that do not exist: bounded.
    assert len(reads) == len(partner.store.issues) + 1 + PROBE_MISSES
