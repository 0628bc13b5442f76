"""Retention: finished deliveries and their sync events older than RETENTION_DAYS are
deleted in bounded batches; failed, dead and unfinished ones stay until resolved."""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from organizations import services as org_services
from sync.models import SyncEvent
from webhooks.models import DeliverySource, DeliveryStatus, WebhookDelivery
from webhooks.retention import history_prune
from webhooks.tasks import prune_history_task

pytestmark = pytest.mark.django_db

KEPT = (
    DeliveryStatus.PENDING,
    DeliveryStatus.PROCESSING,
    DeliveryStatus.FAILED,
    DeliveryStatus.DEAD,
)
FINISHED = (DeliveryStatus.DONE, DeliveryStatus.ECHO, DeliveryStatus.IGNORED)


@pytest.fixture
def org():
    return org_services.organization_create(name="Partner", sync_direction="bidirectional")


def delivery(org, status: str, age_days: float, n: list[int] = [0]) -> WebhookDelivery:  # noqa: B006
    n[0] += 1
    row = WebhookDelivery.objects.create(
        source=DeliverySource.PARTNER,
        organization=org,
        dedupe_key=f"retention-{n[0]}",
        body="{}",
        status=status,
    )
    when = timezone.now() - timedelta(days=age_days)
    WebhookDelivery.objects.filter(pk=row.pk).update(received_at=when, updated_at=when)
    return row


def event(org, row: WebhookDelivery | None, age_days: float) -> SyncEvent:
    created = SyncEvent.objects.create(
        organization=org, delivery=row, direction="pull", action="update", result="written"
    )
    when = timezone.now() - timedelta(days=age_days)
    SyncEvent.objects.filter(pk=created.pk).update(created_at=when)
    return created


def test_finished_deliveries_and_their_events_older_than_the_retention_are_deleted(org):
    old = [delivery(org, status, 40) for status in FINISHED]
    old_events = [event(org, row, 40) for row in old]
    recent = [delivery(org, status, 5) for status in FINISHED]
    recent_events = [event(org, row, 5) for row in recent]
    lone_old, lone_recent = event(org, None, 40), event(org, None, 5)

    result = history_prune(older_than=timezone.now() - timedelta(days=30))

    assert result.deliveries == 3
    assert result.sync_events == 4
    assert not WebhookDelivery.objects.filter(pk__in=[r.pk for r in old]).exists()
    assert not SyncEvent.objects.filter(pk__in=[e.pk for e in [*old_events, lone_old]]).exists()
    assert WebhookDelivery.objects.filter(pk__in=[r.pk for r in recent]).count() == 3
    assert (
        SyncEvent.objects.filter(pk__in=[e.pk for e in [*recent_events, lone_recent]]).count() == 4
    )


def test_failed_dead_and_unfinished_deliveries_stay_with_their_events_until_resolved(org):
    kept = [delivery(org, status, 400) for status in KEPT]
    kept_events = [event(org, row, 400) for row in kept]

    result = history_prune(older_than=timezone.now() - timedelta(days=30))

    assert (result.deliveries, result.sync_events) == (0, 0)
    assert WebhookDelivery.objects.filter(pk__in=[r.pk for r in kept]).count() == len(KEPT)
    assert SyncEvent.objects.filter(pk__in=[e.pk for e in kept_events]).count() == len(KEPT)
    # A dead delivery retried and done long ago is resolved: its time counts from then.
    dead = kept[-1]
    WebhookDelivery.objects.filter(pk=dead.pk).update(
        status=DeliveryStatus.DONE, updated_at=timezone.now() - timedelta(days=1)
    )
    assert history_prune(older_than=timezone.now() - timedelta(days=30)).deliveries == 0
    WebhookDelivery.objects.filter(pk=dead.pk).update(
        updated_at=timezone.now() - timedelta(days=31)
    )
    assert history_prune(older_than=timezone.now() - timedelta(days=30)).deliveries == 1


def test_pruning_deletes_in_bounded_batches_and_stops_at_the_run_limit(org):
    rows = [delivery(org, DeliveryStatus.DONE, 40) for _ in range(5)]
    for row in rows:
        event(org, row, 40)
    with CaptureQueriesContext(connection) as queries:
        result = history_prune(
            older_than=timezone.now() - timedelta(days=30), batch_size=2, max_batches=2
        )
    assert result.deliveries == 4
    assert result.more
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert deletes
    for sql in deletes:  # each statement names at most one batch of rows
        for listed in re.findall(r"IN \(([^)]*)\)", sql):
            assert len(listed.split(",")) <= 2, sql
    assert WebhookDelivery.objects.filter(pk__in=[r.pk for r in rows]).count() == 1
    result = history_prune(older_than=timezone.now() - timedelta(days=30), batch_size=2)
    assert (result.deliveries, result.more) == (1, False)


def test_the_command_prunes_by_retention_days(org, settings):
    settings.RETENTION_DAYS = 30
    old, recent = delivery(org, DeliveryStatus.DONE, 31), delivery(org, DeliveryStatus.DONE, 29)
    out = StringIO()
    call_command("prune_history", stdout=out)
    assert "1 deliveries" in out.getvalue()
    assert not WebhookDelivery.objects.filter(pk=old.pk).exists()
    assert WebhookDelivery.objects.filter(pk=recent.pk).exists()
    call_command("prune_history", "--days", "10", stdout=out)
    assert not WebhookDelivery.objects.filter(pk=recent.pk).exists()


def test_beat_prunes_on_a_schedule_and_retention_zero_keeps_everything(org, settings):
    schedule = django_settings.CELERY_BEAT_SCHEDULE
    assert any(entry["task"] == "webhooks.prune_history" for entry in schedule.values())
    row = delivery(org, DeliveryStatus.DONE, 365)
    settings.RETENTION_DAYS = 0
    assert prune_history_task() == 0
    assert WebhookDelivery.objects.filter(pk=row.pk).exists()
    settings.RETENTION_DAYS = 30
    assert prune_history_task() == 1
    assert not WebhookDelivery.objects.filter(pk=row.pk).exists()


def test_the_blocks_of_throttled_webhook_clients_go_once_ended_whatever_the_retention(
    client, settings, two_way_org
):
    from webhooks.models import AuthFailureBlock

    settings.WEBHOOK_AUTH_FAILURE_LIMIT = 2
    for _ in range(2):
        answer = client.post(
            f"/webhooks/incoming/{two_way_org.public_id}/?secret=guess",
            data=b"{}",
            content_type="application/json",
        )
        assert answer.status_code == 401
    live = AuthFailureBlock.objects.get()
    assert live.until > timezone.now()
    ended = AuthFailureBlock.objects.create(
        key="0" * 32, until=timezone.now() - timedelta(minutes=5)
    )
    settings.RETENTION_DAYS = 0
    prune_history_task()
    assert list(AuthFailureBlock.objects.values_list("pk", flat=True)) == [live.pk]
    assert not AuthFailureBlock.objects.filter(pk=ended.pk).exists()
