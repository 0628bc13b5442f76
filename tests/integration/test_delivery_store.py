"""Storing a delivery: one row per delivery, a repeat answered with the first row, and an
organization deleted meanwhile refused, inside a transaction or not."""

import json

import pytest
from django.db import transaction
from django.utils import timezone

from jiraapi.events import JiraEvent
from organizations.models import Organization
from webhooks.models import DeliverySource, DeliveryStatus, WebhookDelivery
from webhooks.services import OrganizationGone, delivery_store

pytestmark = pytest.mark.django_db(transaction=True)

BODY = json.dumps(
    {
        "webhookEvent": "jira:issue_updated",
        "issue": {
            "id": "10001",
            "key": "REMOTE_PROJ-1",
            "fields": {"project": {"key": "REMOTE_PROJ"}},
        },
    }
).encode()


def store(organization, identifier="hook-1", body=BODY):
    return delivery_store(
        source=DeliverySource.PARTNER,
        organization=organization,
        body=body,
        event=JiraEvent.from_body(body),
        headers={"X-Atlassian-Webhook-Identifier": identifier, "User-Agent": "Jira", "Other": "x"},
    )


def test_a_stored_delivery_reads_back_as_it_was_given(two_way_org):
    before = timezone.now()
    delivery, created = store(two_way_org)
    stored = WebhookDelivery.objects.get()
    assert created and stored.pk == delivery.pk
    assert not delivery._state.adding
    assert stored.organization_id == two_way_org.pk
    assert stored.status == delivery.status == DeliveryStatus.PENDING
    assert stored.body.encode() == BODY
    assert stored.headers == {"X-Atlassian-Webhook-Identifier": "hook-1", "User-Agent": "Jira"}
    assert (stored.event_type, stored.issue_id, stored.issue_key) == (
        "jira:issue_updated",
        "10001",
        "REMOTE_PROJ-1",
    )
    assert (stored.attempts, stored.calls, stored.last_error) == (0, 0, "")
    assert before <= stored.received_at <= timezone.now()
    assert stored.updated_at >= stored.received_at


def test_a_repeat_returns_the_first_row_and_leaves_an_open_transaction_usable(two_way_org):
    first, _ = store(two_way_org)
    with transaction.atomic():
        again, created = store(two_way_org)
        other, other_created = store(two_way_org, identifier="hook-2")
    assert (again.pk, created) == (first.pk, False)
    assert other_created and other.pk != first.pk
    assert WebhookDelivery.objects.count() == 2


def test_an_organization_deleted_meanwhile_stores_nothing(two_way_org):
    """As the endpoint stores (autocommit): the row's foreign key is checked as it commits."""
    stale = Organization.objects.get(pk=two_way_org.pk)
    Organization.objects.filter(pk=two_way_org.pk).delete()
    with pytest.raises(OrganizationGone):
        store(stale)
    assert not WebhookDelivery.objects.exists()
