"""Retention: deleting finished deliveries and their sync events after RETENTION_DAYS."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from sync.models import SyncEvent

from .models import DeliveryStatus, WebhookDelivery

logger = logging.getLogger(__name__)


# Deliveries that are finished; the others (pending, processing, failed, dead) are kept
# until resolved, with their sync events.
PRUNABLE = (DeliveryStatus.DONE, DeliveryStatus.ECHO, DeliveryStatus.IGNORED)


@dataclass(frozen=True)
class PruneResult:
    deliveries: int = 0
    sync_events: int = 0
    more: bool = False  # stopped at `max_batches` with more to delete


def history_prune(
    *, older_than: datetime, batch_size: int = 1000, max_batches: int | None = None
) -> PruneResult:
    """Delete finished deliveries last touched before `older_than` and their sync events,
    then sync events of no delivery created before it; `batch_size` rows per transaction.

    Failed, dead and unfinished deliveries (and their sync events) stay until resolved: a
    dead delivery retried and done counts from when it was done.
    """
    deliveries = events = batches = 0
    # received_at <= updated_at: the indexed received_at bounds the scan to old rows.
    finished = WebhookDelivery.objects.filter(
        status__in=PRUNABLE, received_at__lt=older_than, updated_at__lt=older_than
    ).order_by("pk")
    lone_events = SyncEvent.objects.filter(delivery=None, created_at__lt=older_than).order_by("pk")
    for source in ("deliveries", "events"):
        while max_batches is None or batches < max_batches:
            query = finished if source == "deliveries" else lone_events
            ids = list(query.values_list("pk", flat=True)[:batch_size])
            if not ids:
                break
            batches += 1
            with transaction.atomic():
                if source == "deliveries":
                    events += SyncEvent.objects.filter(delivery_id__in=ids).delete()[0]
                    deliveries += WebhookDelivery.objects.filter(pk__in=ids).delete()[0]
                else:
                    events += SyncEvent.objects.filter(pk__in=ids).delete()[0]
    more = (
        max_batches is not None
        and batches >= max_batches
        and (finished.exists() or lone_events.exists())
    )
    if deliveries or events:
        logger.info(
            "history.pruned",
            extra={"deliveries": deliveries, "sync_events": events, "more": more},
        )
    return PruneResult(deliveries=deliveries, sync_events=events, more=more)
