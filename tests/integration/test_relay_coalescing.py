"""The relay sends no task for a delivery that queues behind a pending one of the same issue
(same source, organization, and both an issue create or update): the task of the first
takes it along (`claim_behind`), so its own task would only find it taken. Every other
delivery is sent as before; nothing is left without a task that will take it."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from webhooks import pending_relay
from webhooks.models import DeliverySource, DeliveryStatus, WebhookDelivery
from webhooks.tasks import claim, claim_behind

pytestmark = pytest.mark.django_db(transaction=True)

UPDATED, CREATED, COMMENTED = "jira:issue_updated", "jira:issue_created", "comment_created"


class Relay(pending_relay.PendingRelay):
    def __init__(self) -> None:
        super().__init__(
            pending_relay.relay_conninfo(connection.settings_dict),
            send=lambda delivery_id, organization_id: self.sent_ids.append(delivery_id),
            catch_up_seconds=60,
            standby_seconds=1,
        )
        self.sent_ids: list[int] = []

    def relay(self, deliveries: list[WebhookDelivery]) -> list[int]:
        with psycopg.connect(**self.conninfo, autocommit=True) as conn:
            self._relay(conn, [d.pk for d in deliveries])
        return self.sent_ids


@pytest.fixture
def relay() -> Relay:
    return Relay()


def delivery(n: int, *, issue="10001", event=UPDATED, org=None, source=None, status=None):
    return WebhookDelivery.objects.create(
        source=source or (DeliverySource.PARTNER if org else DeliverySource.LOCAL),
        organization=org,
        dedupe_key=f"t:{n}",
        event_type=event,
        issue_id=issue,
        body="{}",
        status=status or DeliveryStatus.PENDING,
    )


def test_updates_queued_behind_a_pending_one_get_no_task_and_its_task_takes_them(relay):
    first, second, third = (delivery(n) for n in range(3))
    assert relay.relay([first, second, third]) == [first.pk]
    assert relay.behind == 2
    taken = claim(first.pk)
    assert [d.pk for d in claim_behind(taken)] == [second.pk, third.pk]


def test_a_create_then_updates_go_with_the_create(relay):
    created, updated = delivery(1, event=CREATED), delivery(2)
    assert relay.relay([created, updated]) == [created.pk]


def test_behind_one_already_taken_a_delivery_gets_its_task(relay):
    """The first is being synced: what arrives now may come after its last look behind."""
    first = delivery(1)
    claim(first.pk)
    second = delivery(2)
    assert relay.relay([second]) == [second.pk]


@pytest.mark.parametrize(
    "other",
    [
        {"issue": "10002"},  # another issue
        {"event": COMMENTED},  # not an issue create or update: never merged
        {"status": DeliveryStatus.FAILED},  # waiting for its retry, not pending
    ],
)
def test_every_other_delivery_gets_its_task(relay, other):
    first = delivery(1, **other)
    second = delivery(2)
    sent = relay.relay([first, second])
    assert second.pk in sent
    assert (first.pk in sent) == (first.status == DeliveryStatus.PENDING)


def test_a_comment_behind_a_pending_update_gets_its_task(relay):
    first, comment = delivery(1), delivery(2, event=COMMENTED)
    assert relay.relay([first, comment]) == [first.pk, comment.pk]


def test_the_same_issue_of_another_source_or_organization_gets_its_task(relay, make_org):
    a, b = make_org(name="A"), make_org(name="B")
    ours, of_a, of_b = delivery(1), delivery(2, org=a), delivery(3, org=b)
    assert relay.relay([ours, of_a, of_b]) == [ours.pk, of_a.pk, of_b.pk]
