"""Loop prevention (DESIGN.md section 4, the seed's Phase 4), both directions.

Two simulated Jira sites over real HTTP; their webhooks are captured and fed to the sync
engine one by one, in the order each test needs, so echoes can be delayed, reordered,
duplicated or lost on purpose. Calls and writes are counted in the simulators' call logs.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jiraapi.events import WEBHOOK_EVENTS, JiraEvent
from jirasim import JiraSim
from jirasim.testing import WebhookReceiver
from organizations import services as org_services
from sync import echo
from sync.models import EchoLock, IssueLink, SyncEvent
from webhooks.models import DeliverySource, WebhookDelivery
from webhooks.services import delivery_store
from webhooks.tasks import process_delivery_task

pytestmark = pytest.mark.django_db

SYNC = {
    "local": ("sync@local.example", "local-token"),
    "partner": ("sync@partner.example", "p-tok"),
}
ALICE = ("alice@example.com", "alice-token")
EVENTS = list(WEBHOOK_EVENTS)


class World:
    """Two sites, their captured webhooks, and one linked issue pair."""

    def __init__(
        self,
        settings,
        *,
        partner_flavor: str = "cloud",
        options=None,
        more_projects=None,
        jql=None,
        **org_fields,
    ) -> None:
        """`options`: the realism options of each site (jirasim/options.py), by side;
        `more_projects`: project keys besides LOC / REM, by side; `jql`: each side's webhook
        filter (default: its mapped project); `org_fields`: the organization's settings."""
        options, more_projects, jql = options or {}, more_projects or {}, jql or {}
        self.sims = {
            "local": JiraSim(
                "cloud",
                ["LOC:Local", *(f"{p}:{p}" for p in more_projects.get("local", ()))],
                [":".join(SYNC["local"]), ":".join(ALICE)],
                options=options.get("local"),
            ),
            "partner": JiraSim(
                partner_flavor,
                ["REM:Partner", *(f"{p}:{p}" for p in more_projects.get("partner", ()))],
                [":".join(SYNC["partner"]), ":".join(ALICE)],
                options=options.get("partner"),
            ),
        }
        self.versions = {"local": "3", "partner": "3" if partner_flavor == "cloud" else "2"}
        self.hooks = {side: WebhookReceiver() for side in self.sims}
        for side, sim in self.sims.items():
            sim.start()
            self.hooks[side].__enter__()
            project = "LOC" if side == "local" else "REM"
            filtered = jql.get(side, f'project = "{project}"')
            sim.register_webhook(self.hooks[side].url, EVENTS, filtered)
        local = self.sims["local"]
        settings.LOCAL_JIRA_URL = local.base_url
        settings.LOCAL_JIRA_USER, settings.LOCAL_JIRA_TOKEN = SYNC["local"]
        partner = self.sims["partner"]
        self.org = org_services.organization_create(
            name="Partner",
            remote_base_url=partner.base_url,
            remote_user=SYNC["partner"][0],
            remote_token=SYNC["partner"][1],
            remote_flavor=partner_flavor,
            **{"sync_direction": "bidirectional", **org_fields},
        )
        org_services.project_mapping_create(
            organization=self.org, local_project_key="LOC", remote_project_key="REM"
        )
        self.keys: dict[str, str] = {}

    def close(self) -> None:
        for side in self.sims:
            self.hooks[side].__exit__(None, None, None)
            self.sims[side].stop()

    # --- acting on a site ------------------------------------------------------------------

    def api(self, side, method, path, who=ALICE, **kwargs):
        response = requests.request(
            method,
            f"{self.sims[side].base_url}/rest/api/{self.versions[side]}{path}",
            auth=who,
            timeout=10,
            **kwargs,
        )
        assert response.status_code < 400, response.text
        return response.json() if response.content else None

    def create_issue(self, side: str, summary: str, *, project: str = "", **fields) -> dict:
        """A person creates an issue (in the side's mapped project unless `project`)."""
        project = project or ("LOC" if side == "local" else "REM")
        body = {"project": {"key": project}, "issuetype": {"name": "Task"}, "summary": summary}
        return self.api(side, "POST", "/issue", json={"fields": {**body, **fields}})

    def edit(self, side: str, **fields) -> None:
        self.api(side, "PUT", f"/issue/{self.keys[side]}", json={"fields": fields})

    def fields(self, side: str) -> dict:
        return self.api(side, "GET", f"/issue/{self.keys[side]}")["fields"]

    # --- webhooks ------------------------------------------------------------------------------

    def take(self, side: str) -> list[dict]:
        """The webhooks a site has sent since the last take, in the order sent."""
        self.sims[side].wait_idle()
        got = list(self.hooks[side].requests)
        self.hooks[side].clear()
        return got

    def feed(self, side: str, hook: dict, *, body: bytes | None = None) -> str:
        """Store a captured webhook as a delivery and run its sync, as the worker would."""
        raw = body if body is not None else hook["raw"]
        delivery, created = delivery_store(
            source=DeliverySource.LOCAL if side == "local" else DeliverySource.PARTNER,
            organization=None if side == "local" else self.org,
            body=raw,
            event=JiraEvent.from_body(raw),
            headers=hook["headers"] if body is None else {},
        )
        if not created:
            return "duplicate"
        process_delivery_task.apply(args=[delivery.pk])  # the worker's task, in this process
        delivery.refresh_from_db()
        return delivery.status

    def feed_all(self, side: str) -> list[str]:
        return [self.feed(side, hook) for hook in self.take(side)]

    # --- counting ----------------------------------------------------------------------------

    def reset_calls(self) -> None:
        for sim in self.sims.values():
            requests.delete(f"{sim.base_url}/_sim/calls", timeout=5)

    def calls(self, side: str, writes_only: bool = False) -> int:
        log = requests.get(f"{self.sims[side].base_url}/_sim/calls", timeout=5).json()["calls"]
        return sum(
            1
            for c in log
            if c.get("user") == SYNC[side][0]
            and (not writes_only or c["method"] in ("POST", "PUT", "DELETE"))
        )

    def total_calls(self) -> int:
        return self.calls("local") + self.calls("partner")

    def total_writes(self) -> int:
        return self.calls("local", True) + self.calls("partner", True)

    def link_pair(self) -> None:
        """A local issue pushed to the partner, every echo drained."""
        created = self.create_issue("local", "A", priority={"name": "Medium"})
        self.keys["local"] = created["key"]
        assert self.feed_all("local") == ["done"]
        self.keys["partner"] = IssueLink.objects.get().remote_issue_key
        assert set(self.feed_all("partner")) <= {"echo"}
        self.reset_calls()


OTHER = {"local": "partner", "partner": "local"}
# The side a person edits: "pull" tests a partner edit, "push" a local one.
WAYS = {"pull": "partner", "push": "local"}


@pytest.mark.parametrize("way", WAYS)
def test_an_echo_inside_the_ttl_costs_no_call(world, way):
    edited = WAYS[way]
    world.edit(edited, summary="W")
    assert world.feed_all(edited) == ["done"]
    assert world.fields(OTHER[edited])["summary"] == "W"
    assert world.total_writes() == 1
    world.reset_calls()
    echoes = SyncEvent.objects.filter(result="echo").count()

    assert world.feed_all(OTHER[edited]) == ["echo"]
    assert world.total_calls() == 0
    assert WebhookDelivery.objects.filter(status="echo").latest("pk").calls == 0
    assert not EchoLock.objects.exists()  # consumed once
    assert SyncEvent.objects.filter(result="echo").count() == echoes + 1


@pytest.mark.parametrize("way", WAYS)
def test_an_echo_after_the_ttl_is_checked_and_writes_nothing(world, way):
    edited = WAYS[way]
    world.edit(edited, summary="W")
    world.feed_all(edited)
    EchoLock.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    world.reset_calls()

    assert world.feed_all(OTHER[edited]) == ["done"]
    assert world.total_writes() == 0
    assert world.fields("local")["summary"] == world.fields("partner")["summary"] == "W"
    assert echo.echo_purge_expired() == 1


@pytest.mark.parametrize("way", WAYS)
def test_a_genuine_change_in_the_same_event_as_an_echo_still_propagates(world, way):
    edited = WAYS[way]
    other = OTHER[edited]
    world.edit(edited, summary="W")
    world.feed_all(edited)  # W written to `other`: its echo is on its way
    (echo_hook,) = world.take(other)
    world.edit(other, priority={"name": "Highest"})  # a person, on the other side
    (genuine_hook,) = world.take(other)
    # One event carrying both: our summary coming back and the person's priority.
    combined = json.loads(echo_hook["raw"])
    genuine = json.loads(genuine_hook["raw"])
    combined["changelog"]["items"] += genuine["changelog"]["items"]
    combined["issue"]["fields"]["priority"] = genuine["issue"]["fields"]["priority"]
    world.reset_calls()

    assert world.feed(other, echo_hook, body=json.dumps(combined).encode()) == "done"
    assert world.fields(edited)["priority"]["name"] == "Highest"
    assert world.fields(edited)["summary"] == "W"
    assert world.calls(edited, writes_only=True) == 1  # the priority, not the summary again
    assert world.calls(other, writes_only=True) == 0


@pytest.mark.parametrize("way", WAYS)
def test_out_of_order_echoes_are_both_recognised(world, way):
    edited = WAYS[way]
    other = OTHER[edited]
    world.edit(edited, summary="W")
    world.feed_all(edited)
    world.edit(edited, summary="X")
    world.feed_all(edited)
    echo_w, echo_x = world.take(other)
    world.reset_calls()

    assert world.feed(other, echo_x) == "echo"
    assert world.feed(other, echo_w) == "echo"
    assert world.total_calls() == 0
    assert world.fields(other)["summary"] == world.fields(edited)["summary"] == "X"


@pytest.mark.parametrize("way", WAYS)
def test_a_genuine_edit_while_a_lock_is_live_propagates(world, way):
    edited = WAYS[way]
    other = OTHER[edited]
    world.edit(edited, summary="W")
    world.feed_all(edited)  # lock for W on `other`
    (echo_w,) = world.take(other)
    world.edit(other, summary="Y")  # a person changes it again before our echo is seen
    (genuine_y,) = world.take(other)
    world.reset_calls()

    assert world.feed(other, genuine_y) == "done"
    assert world.fields(edited)["summary"] == "Y"
    assert world.feed(other, echo_w) == "echo"  # late, and still only an echo
    assert world.fields(edited)["summary"] == "Y"
    assert world.total_writes() == 1
    assert set(world.feed_all(edited)) == {"echo"}


@pytest.mark.parametrize("way", WAYS)
def test_an_echo_that_never_arrives_blocks_nothing(world, way):
    edited = WAYS[way]
    other = OTHER[edited]
    world.edit(edited, summary="W")
    world.feed_all(edited)
    world.take(other)  # the echo of W is lost
    world.edit(other, summary="Z")
    assert world.feed_all(other) == ["done"]
    assert world.fields(edited)["summary"] == "Z"
    world.feed_all(edited)  # echo of Z
    # The person sets W again: the stale lock for W must not swallow it.
    world.edit(other, summary="W")
    assert world.feed_all(other) == ["done"]
    assert world.fields(edited)["summary"] == "W"
    # The unused lock simply expires.
    EchoLock.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert echo.echo_purge_expired() >= 1


@pytest.mark.parametrize("way", WAYS)
def test_a_duplicate_delivery_is_stored_once_and_a_replay_writes_nothing(world, way):
    edited = WAYS[way]
    world.edit(edited, summary="W")
    (hook,) = world.take(edited)
    assert world.feed(edited, hook) == "done"
    assert world.feed(edited, hook) == "duplicate"  # same X-Atlassian-Webhook-Identifier
    world.reset_calls()
    replay = dict(
        hook, headers={**hook["headers"], "X-Atlassian-Webhook-Identifier": str(uuid.uuid4())}
    )
    assert world.feed(edited, replay) == "done"
    assert world.total_writes() == 0
    assert world.fields(OTHER[edited])["summary"] == "W"


def test_a_stale_event_never_overwrites_a_newer_value(world):
    world.edit("partner", summary="older")
    (older,) = world.take("partner")
    world.edit("partner", summary="newer")
    (newer,) = world.take("partner")
    assert world.feed("partner", newer) == "done"
    world.feed("partner", older)  # arrives late
    assert world.fields("local")["summary"] == "newer"


def test_simultaneous_edits_are_resolved_by_the_later_update_and_recorded(world):
    world.edit("local", summary="local says")
    world.edit("partner", summary="partner says")  # later
    (local_hook,) = world.take("local")
    (partner_hook,) = world.take("partner")
    world.feed("local", local_hook)
    world.feed("partner", partner_hook)
    world.feed_all("local")
    world.feed_all("partner")
    assert world.fields("local")["summary"] == world.fields("partner")["summary"] == "partner says"
    conflict = SyncEvent.objects.filter(result="conflict").first()
    assert conflict is not None and "summary" in conflict.message


def test_a_worker_that_lost_its_lease_writes_nothing_more(world):
    from sync.leases import LeaseBusy, issue_link_lease

    world.edit("local", summary="W")
    (hook,) = world.take("local")
    link = IssueLink.objects.get()
    with issue_link_lease(link) as held:
        # Another worker took the pair over: our lease ran out while we were slow.
        held.lease_until = timezone.now() - timedelta(seconds=1)
        IssueLink.objects.filter(pk=held.pk).update(lease_owner="someone-else")
        from sync import engine

        with pytest.raises(LeaseBusy):
            engine._expect(
                engine.Job(
                    organization=world.org,
                    project_mapping=world.org.project_mappings.get(),
                    way="push",
                    source=None,
                    target=None,
                    issue_id=held.local_issue_id,
                    issue_key=held.local_issue_key,
                ),
                held,
                {"summary": "W"},
            )
    assert not EchoLock.objects.filter(field="summary").exists()
    assert world.fields("partner")["summary"] == "A"
    assert hook  # the event itself is still there to be processed by the new holder


def test_a_lease_taken_a_moment_ago_is_not_renewed_before_a_write(world, settings):
    """No other worker can take a pair before its lease runs out, so a lease taken a moment
    ago needs no round trip to the database to be kept (the write still has nearly all of
    it ahead); with less of it left, it is renewed (and a lease lost meanwhile is found out,
    as above)."""
    from sync.leases import LEASE_KEPT_SHARE, issue_link_lease, issue_link_lease_renew

    link = IssueLink.objects.get()
    table = IssueLink._meta.db_table
    kept = timedelta(seconds=settings.SYNC_LEASE_SECONDS * LEASE_KEPT_SHARE)

    def lease_writes(held) -> list[str]:
        with CaptureQueriesContext(connection) as queries:
            issue_link_lease_renew(held)
        return [q["sql"] for q in queries if q["sql"].startswith(f"UPDATE {table} SET lease_until")]

    with issue_link_lease(link) as held:
        assert held.lease_until > timezone.now() + kept
        assert lease_writes(held) == []
        held.lease_until = timezone.now() + kept - timedelta(seconds=1)
        assert len(lease_writes(held)) == 1
        assert held.lease_until > timezone.now() + kept
        assert IssueLink.objects.get(pk=link.pk).lease_until == held.lease_until


def test_a_partner_that_keeps_failing_makes_the_delivery_dead_after_the_cap(world, settings):
    settings.SYNC_MAX_ATTEMPTS = 3
    settings.SYNC_RETRY_BASE_SECONDS = 0.01
    settings.SYNC_RETRY_MAX_SECONDS = 0.01
    requests.post(
        f"{world.sims['partner'].base_url}/_sim/faults",
        json={"error_ratio": 1.0, "error_statuses": [500]},
        timeout=5,
    )
    world.edit("local", summary="never arrives")
    (hook,) = world.take("local")
    delivery, _ = delivery_store(
        source=DeliverySource.LOCAL,
        organization=None,
        body=hook["raw"],
        event=JiraEvent.from_body(hook["raw"]),
        headers=hook["headers"],
    )
    process_delivery_task.apply(args=[delivery.pk])  # eager: each retry runs at once
    delivery.refresh_from_db()
    assert delivery.status == "dead"
    assert delivery.attempts == 3
    assert "500" in delivery.last_error
