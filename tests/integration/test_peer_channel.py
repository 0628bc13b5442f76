"""Scenario B's change channel at one install: what it sends for its Jira's changes, and
what it does with the partner install's signed changes and acks.

Our Jira is a simulator over HTTP whose webhooks are captured and fed to the engine; the
partner's install is played by the test (its own key pair, its own signatures, its messages
posted to our public endpoint). Our outbox is read instead of relayed (the relay has its own
tests and the two-install system tests)."""

from __future__ import annotations

import json

import pytest
import requests

from jiraapi.events import WEBHOOK_EVENTS, JiraEvent
from jirasim import JiraSim
from jirasim.testing import WebhookReceiver
from organizations import envelope
from organizations import services as org_services
from organizations.models import (
    Connection,
    ConnectionMessage,
    ConnectionRole,
    Organization,
    OutboxMessage,
)
from sync.models import CommentLink, IssueLink
from webhooks.models import DeliverySource, WebhookDelivery
from webhooks.services import delivery_store
from webhooks.tasks import process_delivery_task

pytestmark = pytest.mark.django_db

SYNC = ("sync@local.example", "local-token")
ALICE = ("alice@example.com", "alice-token")


class Install:
    """Our Jira (a Cloud simulator), its captured webhooks, and an organization connected
    to a partner install that the test plays."""

    def __init__(self, settings, *, direction: str = "bidirectional"):
        self.sim = JiraSim("cloud", ["LOC:Local"], [":".join(SYNC), ":".join(ALICE)])
        self.sim.start()
        self.hooks = WebhookReceiver()
        self.hooks.__enter__()
        self.sim.register_webhook(self.hooks.url, list(WEBHOOK_EVENTS), 'project = "LOC"')
        settings.LOCAL_JIRA_URL = self.sim.base_url
        settings.LOCAL_JIRA_USER, settings.LOCAL_JIRA_TOKEN = SYNC
        self.org = org_services.organization_create(
            name="Partner Co",
            remote_flavor="datacenter",
            sync_direction=direction,
        )
        # Connected app to app, as an accepted invitation leaves it (the handshake has its
        # own tests: tests/integration/test_connections.py).
        Organization.objects.filter(pk=self.org.pk).update(
            connection_type="app", handshake_status="active"
        )
        self.org.refresh_from_db()
        org_services.project_mapping_create(
            organization=self.org, local_project_key="LOC", remote_project_key="THEIRS"
        )
        private, public = envelope.generate_key_pair()
        self.partner_private, partner_public = envelope.generate_key_pair()
        self.connection = Connection.objects.create(
            organization=self.org,
            role=ConnectionRole.INVITER,
            signing_private_key=private,
            signing_public_key=public,
            partner_base_url="http://127.0.0.1:9",
            partner_connection_id="f" * 32,
            partner_public_key=partner_public,
            our_hello_verified=True,
            partner_hello_verified=True,
        )

    def close(self):
        self.hooks.__exit__(None, None, None)
        self.sim.stop()

    def api(self, method, path, **kwargs):
        response = requests.request(
            method, f"{self.sim.base_url}/rest/api/3{path}", auth=ALICE, timeout=10, **kwargs
        )
        assert response.status_code < 400, response.text
        return response.json() if response.content else None

    def create(self, **fields) -> dict:
        """A Task in our project LOC, made by a person."""
        base = {"project": {"key": "LOC"}, "issuetype": {"name": "Task"}}
        return self.api("POST", "/issue", json={"fields": {**base, **fields}})

    def feed_all(self) -> list[str]:
        """Our Jira's webhooks since the last call, through the inbox and the worker's task."""
        self.sim.wait_idle()
        got = list(self.hooks.requests)
        self.hooks.clear()
        statuses = []
        for hook in got:
            delivery, _ = delivery_store(
                source=DeliverySource.LOCAL,
                organization=None,
                body=hook["raw"],
                event=JiraEvent.from_body(hook["raw"]),
                headers=hook["headers"],
            )
            process_delivery_task.apply(args=[delivery.pk])
            delivery.refresh_from_db()
            statuses.append(delivery.status)
        return statuses

    def send(self, client, payload: dict, *, key: str | None = None, headers=None):
        """The partner install posts a signed message; a stored one is processed at once."""
        body = json.dumps(payload).encode()
        headers = headers or envelope.signed_headers(
            private_key=key or self.partner_private, body=body
        )
        before = WebhookDelivery.objects.count()
        response = client.post(
            f"/connections/{self.connection.connection_id}/messages/",
            data=body,
            content_type="application/json",
            headers=headers,
        )
        if WebhookDelivery.objects.count() > before:
            delivery = WebhookDelivery.objects.latest("pk")
            process_delivery_task.apply(args=[delivery.pk])
        return response

    def outbox(self, kind: str) -> list[dict]:
        rows = OutboxMessage.objects.filter(connection=self.connection, kind=kind).order_by("pk")
        return [json.loads(m.body) for m in rows]

    def writes(self) -> int:
        log = requests.get(f"{self.sim.base_url}/_sim/calls", timeout=5).json()["calls"]
        return sum(1 for c in log if c.get("user") == SYNC[0] and c["method"] != "GET")

    def reset_calls(self):
        requests.delete(f"{self.sim.base_url}/_sim/calls", timeout=5)


@pytest.fixture
def install(settings):
    world = Install(settings)
    yield world
    world.close()


def _change(seq: int, *, issue_id="7001", key="THEIRS-1", fields=None, comments=None, **extra):
    return {
        "type": "change",
        "seq": seq,
        "issue": {"id": issue_id, "key": key, "project": "THEIRS", "url": ""},
        "flavor": "datacenter",
        "site": "http://partner-jira.example",
        "fields": fields if fields is not None else {},
        "comments": comments,
        "changedAt": "2026-11-26T10:00:00.000+0000",
        **extra,
    }


def test_a_local_issue_goes_out_whole_once_then_only_what_changed(install):
    created = install.create(summary="Printer on fire", labels=["hot"])
    assert install.feed_all() == ["done"]
    (first,) = install.outbox("change")
    assert first["seq"] == 1 and first["issue"]["id"] == created["id"]
    assert first["yourIssueId"] is None and first["flavor"] == "cloud"
    assert first["fields"]["summary"] == "Printer on fire"
    assert first["fields"]["labels"] == ["hot"]
    assert first["comments"] == []
    # No partner credentials anywhere in what goes out, and no raw REST extras.
    assert "self" not in json.dumps(first["fields"])


def test_the_partner_acks_and_later_changes_carry_only_what_changed(install, client):
    created = install.create(summary="S1", labels=["a"])
    install.feed_all()
    (first,) = install.outbox("change")
    ack = {
        "type": "ack",
        "issue": {"id": "9001", "key": "THEIRS-5"},
        "yourIssueId": created["id"],
        "ackSeq": 1,
        "received": first["fields"],
        "comments": [],
    }
    assert install.send(client, ack).status_code == 200
    link = IssueLink.objects.get(organization=install.org)
    assert (link.remote_issue_id, link.remote_issue_key, link.status) == (
        "9001",
        "THEIRS-5",
        "linked",
    )
    install.api("PUT", f"/issue/{created['key']}", json={"fields": {"summary": "S2"}})
    assert install.feed_all() == ["done"]
    second = install.outbox("change")[-1]
    assert second["seq"] == 2 and second["yourIssueId"] == "9001"
    assert second["fields"] == {"summary": "S2"}
    assert second["comments"] is None


def test_a_partner_change_creates_our_issue_once_acks_it_and_its_echo_goes_nowhere(install, client):
    payload = _change(
        1,
        fields={"summary": "From them", "labels": ["x"], "priority": "High"},
        comments=[
            {
                "id": "c1",
                "body": "first *comment*",
                "author": {"displayName": "Bob"},
                "created": "2026-11-26T10:00:00.000+0000",
                "updated": "2026-11-26T10:00:00.000+0000",
            }
        ],
    )
    assert install.send(client, payload).status_code == 200
    link = IssueLink.objects.get(organization=install.org)
    assert link.remote_issue_id == "7001" and link.local_issue_key.startswith("LOC-")
    ours = install.api("GET", f"/issue/{link.local_issue_key}")["fields"]
    assert ours["summary"] == "From them" and ours["labels"] == ["x"]
    assert ours["priority"]["name"] == "High"
    comments = install.api("GET", f"/issue/{link.local_issue_key}/comment")["comments"]
    assert len(comments) == 1
    (ack,) = install.outbox("ack")
    assert ack["yourIssueId"] == "7001" and ack["ackSeq"] == 1
    assert ack["issue"] == {"id": link.local_issue_id, "key": link.local_issue_key}
    assert ack["comments"] == [
        {
            "yourId": "c1",
            "yourHash": CommentLink.objects.get().remote_hash,
            "id": str(comments[0]["id"]),
            "hash": CommentLink.objects.get().local_hash,
        }
    ]
    # Our Jira's webhooks for what we wrote: echoes, nothing goes back.
    statuses = install.feed_all()
    assert statuses and set(statuses) <= {"echo", "done"}
    assert install.outbox("change") == []

    # The same message again (a new id: the relay resent it) or an older one: skipped.
    install.reset_calls()
    assert install.send(client, payload).status_code == 200
    assert WebhookDelivery.objects.latest("pk").status == "ignored"
    assert install.writes() == 0
    assert IssueLink.objects.filter(organization=install.org).count() == 1


def test_a_partner_change_to_one_field_writes_that_field_only(install, client):
    install.send(client, _change(1, fields={"summary": "One", "labels": ["x"]}, comments=[]))
    install.feed_all()
    install.reset_calls()
    assert install.send(client, _change(2, fields={"labels": ["y"]})).status_code == 200
    link = IssueLink.objects.get(organization=install.org)
    ours = install.api("GET", f"/issue/{link.local_issue_key}")["fields"]
    assert ours["labels"] == ["y"] and ours["summary"] == "One"
    assert install.writes() == 1
    assert install.feed_all() == ["echo"]
    assert install.outbox("change") == []


def test_a_change_after_disconnect_a_bad_signature_or_a_replay_stores_nothing(install, client):
    other, _ = envelope.generate_key_pair()
    assert install.send(client, _change(1, fields={"summary": "x"}), key=other).status_code == 401
    body = json.dumps(_change(1, fields={"summary": "x"})).encode()
    headers = envelope.signed_headers(private_key=install.partner_private, body=body)
    first = install.send(client, json.loads(body), headers=headers)
    assert first.status_code == 200
    stored = WebhookDelivery.objects.count()
    assert install.send(client, json.loads(body), headers=headers).status_code == 409
    install.connection.disconnected_at = install.connection.created_at
    install.connection.save()
    assert install.send(client, _change(2, fields={"summary": "y"})).status_code == 410
    assert WebhookDelivery.objects.count() == stored
    assert ConnectionMessage.objects.count() == 1


def test_a_malformed_change_is_422_and_stores_nothing(install, client):
    bad = _change(1, fields={"summary": "x"})
    bad["seq"] = "one"
    assert install.send(client, bad).status_code == 422
    bad = _change(1, fields=None)
    bad["fields"] = ["not", "an", "object"]
    assert install.send(client, bad).status_code == 422
    bad = _change(1, fields={"summary": "x"})
    bad["issue"] = {"id": "x" * 100, "key": "K-1", "project": "THEIRS"}
    assert install.send(client, bad).status_code == 422
    assert WebhookDelivery.objects.count() == 0
    assert ConnectionMessage.objects.count() == 0


def test_a_push_only_organization_acks_but_does_not_apply(settings, client):
    world = Install(settings, direction="push")
    try:
        assert world.send(client, _change(1, fields={"summary": "x"})).status_code == 200
        assert WebhookDelivery.objects.get().status == "ignored"
        assert not IssueLink.objects.exists()
        (ack,) = world.outbox("ack")
        assert ack["applied"] is False
    finally:
        world.close()


# --- what each side sends ------------------------------------------------------------------


def _offer(connection, side: str, fields: list[str], projects: list[str], version: int = 1):
    offer = {"version": version, "projects": projects, "fields": fields}
    setattr(connection, f"offer_{side}", offer)
    setattr(connection, f"offer_{side}_accepted", dict(offer))
    connection.save()


def test_more_from_the_partner_waits_for_our_acceptance(install, client, api):
    _offer(install.connection, "in", ["summary"], ["THEIRS"])
    install.send(client, _change(1, fields={"summary": "S", "labels": ["l1"]}, comments=[]))
    link = IssueLink.objects.get(organization=install.org)
    ours = install.api("GET", f"/issue/{link.local_issue_key}")["fields"]
    assert ours["summary"] == "S" and ours["labels"] == []  # labels: not accepted from them
    install.feed_all()

    offer = {
        "type": "offer",
        "version": 2,
        "offer": {"projects": ["THEIRS"], "fields": ["labels", "summary"]},
    }
    assert install.send(client, offer).status_code == 200
    detail = api.get(f"/api/organizations/{install.org.public_id}/").json()
    assert detail["theySend"]["pending"] is True
    assert detail["theySend"]["added"]["fields"] == ["labels"]
    assert detail["theySend"]["inEffect"]["fields"] == ["summary"]
    install.send(client, _change(2, fields={"labels": ["l2"]}))
    assert install.api("GET", f"/issue/{link.local_issue_key}")["fields"]["labels"] == []

    assert api.post(f"/api/organizations/{install.org.public_id}/accept-offer/").status_code == 200
    assert install.outbox("offerAccepted") == [{"type": "offerAccepted", "version": 2}]
    detail = api.get(f"/api/organizations/{install.org.public_id}/").json()
    assert detail["theySend"]["pending"] is False
    install.send(client, _change(3, fields={"labels": ["l3"]}))
    assert install.api("GET", f"/issue/{link.local_issue_key}")["fields"]["labels"] == ["l3"]
    # Nothing new to accept now.
    assert api.post(f"/api/organizations/{install.org.public_id}/accept-offer/").status_code == 409


def test_less_from_the_partner_takes_effect_at_once(install, client):
    _offer(install.connection, "in", ["labels", "summary"], ["THEIRS"])
    offer = {
        "type": "offer",
        "version": 2,
        "offer": {"projects": ["THEIRS"], "fields": ["summary"]},
    }
    assert install.send(client, offer).status_code == 200
    install.connection.refresh_from_db()
    assert install.connection.offer_in_accepted["fields"] == ["summary"]
    assert install.outbox("offerAccepted") == [{"type": "offerAccepted", "version": 2}]
    # An older announcement arriving late changes nothing.
    stale = {"type": "offer", "version": 1, "offer": {"projects": ["THEIRS"], "fields": ["labels"]}}
    assert install.send(client, stale).status_code == 200
    install.connection.refresh_from_db()
    assert install.connection.offer_in["version"] == 2


def test_more_from_us_is_sent_once_the_partner_accepts_and_less_at_once(install, client):
    from organizations.connections import connection_offer_refresh

    _offer(install.connection, "out", ["summary"], ["LOC"])
    created = install.create(summary="A", labels=["x"])
    install.feed_all()
    assert set(install.outbox("change")[-1]["fields"]) == {"summary"}
    assert install.outbox("change")[-1]["comments"] is None  # comments: not in what they took

    # Our mappings say more: announced, not yet in effect.
    assert connection_offer_refresh(connection=install.connection) is True
    (announced,) = install.outbox("offer")
    assert announced["version"] == 2 and "labels" in announced["offer"]["fields"]
    assert connection_offer_refresh(connection=install.connection) is False  # once
    install.api(
        "PUT", f"/issue/{created['key']}", json={"fields": {"labels": ["y"], "summary": "B"}}
    )
    install.feed_all()
    assert set(install.outbox("change")[-1]["fields"]) == {"summary"}

    assert install.send(client, {"type": "offerAccepted", "version": 2}).status_code == 200
    install.api("PUT", f"/issue/{created['key']}", json={"fields": {"labels": ["z"]}})
    install.feed_all()
    assert install.outbox("change")[-1]["fields"]["labels"] == ["z"]

    # Labels become pull-only here: we stop sending them at once.
    org_services.field_mapping_create(
        organization=install.org, local_field="labels", remote_field="labels", direction="pull"
    )
    install.connection.refresh_from_db()
    assert connection_offer_refresh(connection=install.connection) is True
    install.connection.refresh_from_db()
    assert "labels" not in install.connection.offer_out_accepted["fields"]
    install.api(
        "PUT", f"/issue/{created['key']}", json={"fields": {"labels": ["w"], "summary": "C"}}
    )
    install.feed_all()
    assert "labels" not in install.outbox("change")[-1]["fields"]


def test_the_backfill_sends_existing_issues_once_and_its_dry_run_sends_nothing(install):
    from io import StringIO

    from django.core.management import call_command

    for summary in ("one", "two"):
        install.create(summary=summary)
    install.hooks.clear()  # created before the organization was connected: never delivered
    out = StringIO()
    call_command("sync_backfill", install.org.public_id, "--dry-run", stdout=out)
    assert "would be sent" in out.getvalue() or "create" in out.getvalue()
    assert install.outbox("change") == []
    call_command("sync_backfill", install.org.public_id, stdout=StringIO())
    sent = install.outbox("change")
    assert sorted(m["fields"]["summary"] for m in sent) == ["one", "two"]
    call_command("sync_backfill", install.org.public_id, stdout=StringIO())
    # Sent again only while the partner has not confirmed them (no ack yet): the same
    # issues, never a third one.
    assert {m["issue"]["id"] for m in install.outbox("change")} == {m["issue"]["id"] for m in sent}


def test_another_partners_issue_is_not_passed_on_unless_the_organization_allows_it(install):
    other = org_services.organization_create(
        name="Other Partner", remote_base_url="http://127.0.0.1:9", remote_flavor="cloud"
    )
    created = install.create(summary="theirs")
    install.hooks.clear()
    # The issue is the copy of the other partner's issue (created here for them).
    IssueLink.objects.create(
        organization=other,
        local_issue_id=created["id"],
        local_issue_key=created["key"],
        remote_issue_id="555",
        remote_issue_key="OTH-1",
        origin="remote",
        status="linked",
    )
    install.api("PUT", f"/issue/{created['key']}", json={"fields": {"summary": "edited"}})
    install.feed_all()
    assert install.outbox("change") == []
    install.org.relay_partner_issues = True
    install.org.save()
    install.api("PUT", f"/issue/{created['key']}", json={"fields": {"summary": "edited again"}})
    install.feed_all()
    assert install.outbox("change")[-1]["fields"]["summary"] == "edited again"


def test_a_mapping_that_creates_no_issues_here_acks_without_a_copy(install, client):
    install.org.project_mappings.update(create_local_issues=False)
    assert install.send(client, _change(1, fields={"summary": "x"}, comments=[])).status_code == 200
    assert install.writes() == 0
    (ack,) = install.outbox("ack")
    assert ack["applied"] is False and ack["issue"] == {"id": "-", "key": "-"}
    assert ack["yourIssueId"] == "7001"
