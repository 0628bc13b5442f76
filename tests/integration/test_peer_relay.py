"""Scenario B's relay: the outbox's messages reach the partner install in order, at least
once, signed, with backoff while it is unavailable. The partner is a recording HTTP server
answering from a script."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from jirasim.testing import WebhookReceiver
from organizations import envelope
from organizations import services as org_services
from organizations.models import Connection, ConnectionRole, Organization, OutboxMessage
from organizations.relay import RelayWait, connection_relay, outbox_add, outbox_sweep

pytestmark = pytest.mark.django_db


@pytest.fixture
def partner():
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def connection(partner):
    org = org_services.organization_create(name="Peer", sync_direction="bidirectional")
    Organization.objects.filter(pk=org.pk).update(connection_type="app", handshake_status="active")
    private, public = envelope.generate_key_pair()
    return Connection.objects.create(
        organization=org,
        role=ConnectionRole.ACCEPTOR,
        signing_private_key=private,
        signing_public_key=public,
        partner_base_url=partner.url.removesuffix("/hook"),
        partner_connection_id="a" * 32,
        partner_public_key=envelope.generate_key_pair()[1],
        our_hello_verified=True,
        partner_hello_verified=True,
    )


def _queue(connection, n: int, start: int = 1) -> list[OutboxMessage]:
    return [
        outbox_add(
            connection=connection,
            kind="change",
            payload={"n": i},
            pair="10001",
            seq=i,
        )
        for i in range(start, start + n)
    ]


def test_messages_go_in_order_signed_by_our_key_with_their_own_ids(connection, partner):
    queued = _queue(connection, 3)
    assert connection_relay(connection_pk=connection.pk) == 3
    got = partner.requests
    assert [r["json"]["n"] for r in got] == [1, 2, 3]
    assert {r["path"] for r in got} == {f"/connections/{'a' * 32}/messages/"}
    for request, message in zip(got, queued, strict=True):
        signed = envelope.parse_headers(request["headers"])
        assert signed.message_id == message.message_id
        envelope.verify(
            public_keys=[connection.signing_public_key], signed=signed, body=request["raw"]
        )
    assert not OutboxMessage.objects.filter(sent_at__isnull=True).exists()
    assert connection_relay(connection_pk=connection.pk) == 0  # nothing is sent twice
    assert len(partner.requests) == 3


def test_an_unavailable_partner_holds_everything_in_order_until_it_is_back(connection, partner):
    _queue(connection, 3)
    partner.responses = [503]
    with pytest.raises(RelayWait) as wait:
        connection_relay(connection_pk=connection.pk)
    assert wait.value.countdown > 0
    head = OutboxMessage.objects.order_by("pk").first()
    assert head.attempts == 1 and head.next_attempt_at > timezone.now()
    assert "503" in head.last_error
    assert OutboxMessage.objects.filter(sent_at__isnull=True).count() == 3
    # Before its time, nothing is tried.
    with pytest.raises(RelayWait):
        connection_relay(connection_pk=connection.pk)
    assert len(partner.requests) == 1
    OutboxMessage.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert connection_relay(connection_pk=connection.pk) == 3
    assert [r["json"]["n"] for r in partner.requests] == [1, 1, 2, 3]
    # The same message id both times: the partner knows the second for a resend.
    assert (
        partner.requests[0]["headers"]["X-Sync-Message-Id"]
        == (partner.requests[1]["headers"]["X-Sync-Message-Id"])
    )


def test_an_unreachable_partner_waits_with_growing_backoff(connection, partner):
    _queue(connection, 1)
    Connection.objects.filter(pk=connection.pk).update(partner_base_url="http://127.0.0.1:9")
    waits = []
    for _ in range(4):
        with pytest.raises(RelayWait) as wait:
            connection_relay(connection_pk=connection.pk)
        waits.append(wait.value.countdown)
        OutboxMessage.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert OutboxMessage.objects.get().attempts == 4
    assert waits[-1] > waits[0]
    assert OutboxMessage.objects.get().sent_at is None


def test_a_message_the_partner_already_has_counts_as_delivered(connection, partner):
    _queue(connection, 2)
    partner.responses = [409]
    assert connection_relay(connection_pk=connection.pk) == 2
    assert not OutboxMessage.objects.filter(sent_at__isnull=True).exists()


def test_a_message_refused_for_good_is_set_aside_and_the_rest_goes(connection, partner):
    _queue(connection, 2)
    partner.responses = [422]
    assert connection_relay(connection_pk=connection.pk) == 2
    first, second = OutboxMessage.objects.order_by("pk")
    assert first.sent_at is not None and first.last_error.startswith("refused 422")
    assert second.sent_at is not None and second.last_error == ""


def test_nothing_goes_to_a_disconnected_partner(connection, partner):
    _queue(connection, 1)
    Connection.objects.filter(pk=connection.pk).update(disconnected_at=timezone.now())
    assert connection_relay(connection_pk=connection.pk) == 0
    assert partner.requests == []
    assert outbox_sweep() == 0


def test_the_sweep_picks_up_pending_messages_nothing_is_relaying(
    connection, partner, django_capture_on_commit_callbacks, settings
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    _queue(connection, 2)
    OutboxMessage.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox_sweep() == 1
    assert not OutboxMessage.objects.filter(sent_at__isnull=True).exists()
    changes = [r["json"]["n"] for r in partner.requests if r["json"]["type"] == "change"]
    assert changes == [1, 2]


def test_message_ids_and_delivered_messages_go_after_a_day_refused_ones_stay(connection, partner):
    from organizations.models import ConnectionMessage
    from organizations.relay import connection_history_prune

    _queue(connection, 3)
    partner.responses = [200, 422, 200]
    connection_relay(connection_pk=connection.pk)
    old = timezone.now() - timedelta(days=2)
    OutboxMessage.objects.update(sent_at=old)
    fresh = ConnectionMessage.objects.create(connection=connection, message_id="n" * 32, kind="x")
    stale = ConnectionMessage.objects.create(connection=connection, message_id="o" * 32, kind="x")
    ConnectionMessage.objects.filter(pk=stale.pk).update(received_at=old)
    assert connection_history_prune() == (1, 2)
    assert list(ConnectionMessage.objects.values_list("pk", flat=True)) == [fresh.pk]
    assert OutboxMessage.objects.get().last_error.startswith("refused 422")


def test_the_dashboard_and_status_show_what_waits_for_the_partner(
    connection, partner, api, client, superuser
):
    _queue(connection, 2)
    partner.responses = [503]
    with pytest.raises(RelayWait):
        connection_relay(connection_pk=connection.pk)
    org = connection.organization
    (row,) = [
        o for o in api.get("/api/status/").json()["organizations"] if o["id"] == org.public_id
    ]
    assert row["connectionType"] == "app"
    assert row["outbox"]["pending"] == 2 and "503" in row["outbox"]["lastError"]
    assert row["outbox"]["oldestPendingAt"]
    client.force_login(superuser)
    page = client.get("/admin/dashboard/").content.decode()
    assert 'data-pending="2"' in page and "messages to the partner install waiting" in page
    OutboxMessage.objects.update(next_attempt_at=None)
    assert connection_relay(connection_pk=connection.pk) == 2
    (row,) = [
        o for o in api.get("/api/status/").json()["organizations"] if o["id"] == org.public_id
    ]
    assert row["outbox"]["pending"] == 0 and row["outbox"]["oldestPendingAt"] is None


def test_a_signature_the_partner_cannot_check_yet_is_retried_not_dropped(connection, partner):
    _queue(connection, 1)
    partner.responses = [401]
    with pytest.raises(RelayWait):
        connection_relay(connection_pk=connection.pk)
    assert OutboxMessage.objects.get().sent_at is None
    OutboxMessage.objects.update(next_attempt_at=None)
    assert connection_relay(connection_pk=connection.pk) == 1


def test_a_partner_that_says_disconnected_is_disconnected_here_too(connection, partner):
    _queue(connection, 1)
    partner.responses = [410]
    with pytest.raises(RelayWait):
        connection_relay(connection_pk=connection.pk)
    connection.refresh_from_db()
    connection.organization.refresh_from_db()
    assert connection.disconnected_at is not None
    assert connection.organization.handshake_status == "disconnected"
    assert connection_relay(connection_pk=connection.pk) == 0
