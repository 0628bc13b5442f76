"""Celery tasks: claim a stored delivery, hand its event to the sync engine, record the outcome.

The task alone writes a delivery's status, error and Jira calls.

Retries go through Celery (a worker never sleeps on a rate limit): at least `Retry-After`
for 429/503, exponential backoff with jitter otherwise, capped, then `dead`.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from jiraapi.client import counting_calls
from jiraapi.errors import JiraAuthError, JiraError
from jiraapi.events import JiraEvent
from organizations.relay import connection_history_prune
from organizations.services import organization_credentials_reject
from sync import echo
from sync.leases import LeaseBusy
from sync.mapping import PULL, PUSH
from sync.retries import backoff_seconds
from sync.services import DeliveryOutcome, event_process, peer_message_process

from .models import DeliverySource, DeliveryStatus, WebhookDelivery
from .publish import delivery_publish
from .retention import history_prune

logger = logging.getLogger(__name__)

# The start of a delivery's error while it waits for new credentials (a 401 from a site).
CREDENTIALS_REJECTED = "credentials rejected"
PARTNER_SITE = "the partner's"

FINAL = (DeliveryStatus.DONE, DeliveryStatus.IGNORED, DeliveryStatus.ECHO, DeliveryStatus.DEAD)


def claim(delivery_id: int) -> WebhookDelivery | None:
    """Take a delivery for processing, unless it is finished or another worker has it."""
    stale = timezone.now() - timedelta(seconds=settings.SYNC_PROCESSING_STALE_SECONDS)
    with transaction.atomic():
        claimed = (
            WebhookDelivery.objects.filter(pk=delivery_id)
            .filter(
                Q(status__in=(DeliveryStatus.PENDING, DeliveryStatus.FAILED))
                | Q(status=DeliveryStatus.PROCESSING, updated_at__lt=stale)
            )
            .update(status=DeliveryStatus.PROCESSING, updated_at=timezone.now())
        )
    if not claimed:
        return None
    return WebhookDelivery.objects.get(pk=delivery_id)


def _finish(
    delivery: WebhookDelivery, status: str, error: str = "", *, attempt: bool, calls: int = 0
) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=status,
        last_error=error.replace("\x00", "")[:4000],  # PostgreSQL stores no NUL
        updated_at=timezone.now(),
        attempts=F("attempts") + (1 if attempt else 0),
        calls=F("calls") + calls,
    )


def delivery_process(delivery: WebhookDelivery) -> DeliveryOutcome:
    """Hand a stored delivery's event to the sync engine (PUSH from our Jira, PULL from a
    partner's); the outcome says how it ended."""
    if delivery.event_type.startswith("peer:"):  # from the partner's install (Scenario B)
        return peer_message_process(
            organization=delivery.organization,
            body=delivery.body.encode("utf-8"),
            delivery_id=delivery.pk,
            received_at=delivery.received_at,
        )
    return event_process(
        event=JiraEvent.from_body(delivery.body.encode("utf-8")),
        way=PUSH if delivery.source == DeliverySource.LOCAL else PULL,
        organization=delivery.organization,
        delivery_id=delivery.pk,
        received_at=delivery.received_at,
    )


@shared_task(
    name="webhooks.process_delivery",
    bind=True,
    acks_late=True,
    ignore_result=True,
    max_retries=None,
)
def process_delivery_task(self, delivery_id: int) -> None:
    delivery = claim(delivery_id)
    if delivery is None:
        return
    with counting_calls() as calls:
        try:
            outcome = delivery_process(delivery)
        except LeaseBusy:
            # Another worker is on this issue pair: come back shortly, no attempt spent.
            _finish(delivery, DeliveryStatus.PENDING, attempt=False, calls=calls.count)
            raise self.retry(countdown=0.5 + random.uniform(0, 1.0)) from None  # noqa: S311
        except Exception as exc:
            _failed(self, delivery, exc, calls=calls.count)
            return
    _finish(delivery, outcome.status, outcome.reason, attempt=True, calls=outcome.calls)


def _failed(task, delivery: WebhookDelivery, exc: Exception, *, calls: int) -> None:
    """A failed attempt: retried with backoff while it can pass, else `dead`."""
    attempts = delivery.attempts + 1
    if isinstance(exc, JiraError):
        message = f"{exc} — {exc.jira_message}" if exc.jira_message != str(exc) else str(exc)
        retryable, retry_after = exc.retryable, exc.retry_after
    else:
        message = f"{type(exc).__name__}: {exc}"
        retryable, retry_after = True, None
        logger.exception("delivery.error", extra={"delivery": delivery.pk})
    if isinstance(exc, JiraAuthError) and exc.status == 401:
        _credentials_rejected(delivery, exc, message, calls=calls)
        return
    if not retryable or attempts >= settings.SYNC_MAX_ATTEMPTS:
        _finish(delivery, DeliveryStatus.DEAD, message, attempt=True, calls=calls)
        logger.warning("delivery.dead", extra={"delivery": delivery.pk, "error": message})
        return
    _finish(delivery, DeliveryStatus.FAILED, message, attempt=True, calls=calls)
    countdown = backoff_seconds(attempts, retry_after)
    logger.info(
        "delivery.retry",
        extra={"delivery": delivery.pk, "attempt": attempts, "countdown": round(countdown, 2)},
    )
    raise task.retry(countdown=countdown) from None


def _credentials_rejected(
    delivery: WebhookDelivery, exc: JiraAuthError, message: str, *, calls: int
) -> None:
    """A site answered 401: the delivery waits (failed, no retry of its own; the sweeper's
    slow round or a new token sends it again), and the partner organization shows
    "credentials rejected" (our own Jira's rejection shows on the delivery alone)."""
    local = not exc.base_url or exc.base_url == settings.LOCAL_JIRA_URL.rstrip("/")
    text = f"{CREDENTIALS_REJECTED} by {'our' if local else PARTNER_SITE} Jira: {message}"
    _finish(delivery, DeliveryStatus.FAILED, text, attempt=True, calls=calls)
    if not local:
        organization_credentials_reject(base_url=exc.base_url, user=exc.user, message=text)
    logger.warning("delivery.credentials_rejected", extra={"delivery": delivery.pk, "error": text})


@shared_task(name="webhooks.credentials_renewed", ignore_result=True)
def credentials_renewed_task(organization_id: int) -> int:
    """A new partner token was saved: the deliveries waiting for it go again. Those from our
    own Jira carry no organization: every one that a partner refused goes again (one still
    refused by another partner only waits again)."""
    from .services import delivery_retry

    return delivery_retry(
        deliveries=WebhookDelivery.objects.filter(
            Q(organization_id=organization_id) | Q(organization__isnull=True),
            status=DeliveryStatus.FAILED,
            last_error__startswith=f"{CREDENTIALS_REJECTED} by {PARTNER_SITE} Jira",
        )
    )


def delivery_queue(organization_id: int | None) -> str:
    """The queue of a delivery's tenant: our own Jira's, or its organization's bucket.

    Every worker consumes every bucket in turn (settings.CELERY_TASK_QUEUES), so one tenant's
    backlog delays only itself. Organizations share a bucket only beyond
    `SYNC_QUEUE_BUCKETS` of them (consecutive ids take consecutive buckets).
    """
    if not settings.SYNC_FAIR_QUEUES:
        return settings.CELERY_TASK_DEFAULT_QUEUE
    if organization_id is None:
        return "sync.local"
    return f"sync.org.{organization_id % settings.SYNC_QUEUE_BUCKETS}"


def delivery_send(delivery_id: int, *, organization_id: int | None) -> None:
    """Queue a delivery for a worker now, on its tenant's queue (the task's retries stay
    there: Celery resends a retry to the queue the message came from).

    Eager mode (tests without a worker) runs the task through `apply_async`; otherwise the
    message is published directly (webhooks/publish.py)."""
    queue = delivery_queue(organization_id)
    if settings.CELERY_TASK_ALWAYS_EAGER:
        process_delivery_task.apply_async((delivery_id,), queue=queue)
        return
    delivery_publish(delivery_id, queue=queue)


def delivery_enqueue(delivery_id: int, *, organization_id: int | None = None) -> None:
    """Hand a stored delivery to a worker once the transaction that stored it commits.

    `organization_id`: the partner organization it came from; None for our own Jira's.
    """

    def send() -> None:
        try:
            delivery_send(delivery_id, organization_id=organization_id)
        except Exception:  # The broker is down: the row is safe, the sweeper will send it.
            logger.warning("delivery.enqueue_failed", extra={"delivery": delivery_id})

    transaction.on_commit(send)


def delivery_stored_enqueue(delivery_id: int, *, organization_id: int | None = None) -> None:
    """A delivery just inserted as pending: with the relay in use (webhooks/pending_relay.py)
    its trigger's notification sends it, at commit; otherwise as `delivery_enqueue`.

    Only for an INSERT of a pending row (the trigger fires on nothing else): a row set back
    to pending by an UPDATE (a retry) goes through `delivery_enqueue`."""
    from .pending_relay import relay_in_use

    if relay_in_use():
        return
    delivery_enqueue(delivery_id, organization_id=organization_id)


@shared_task(name="webhooks.sweep_deliveries", ignore_result=True)
def sweep_deliveries_task() -> int:
    """Re-send deliveries left behind: never sent (broker down), or their worker died."""
    now = timezone.now()
    pending_before = now - timedelta(seconds=settings.SYNC_PENDING_STALE_SECONDS)
    processing_before = now - timedelta(seconds=settings.SYNC_PROCESSING_STALE_SECONDS)
    failed_before = now - timedelta(seconds=settings.SYNC_RETRY_MAX_SECONDS * 2)
    rows = list(
        WebhookDelivery.objects.filter(
            Q(status=DeliveryStatus.PENDING, updated_at__lt=pending_before)
            | Q(status=DeliveryStatus.PROCESSING, updated_at__lt=processing_before)
            | Q(status=DeliveryStatus.FAILED, updated_at__lt=failed_before)
        )
        .order_by("received_at")
        .values_list("pk", "organization_id")[:1000]
    )
    ids = [pk for pk, _ in rows]
    # Back to pending (a dead worker's claim is void), and touched, so that a long queue is
    # not sent again on every sweep.
    WebhookDelivery.objects.filter(pk__in=ids).update(status=DeliveryStatus.PENDING, updated_at=now)
    for delivery_id, organization_id in rows:
        delivery_send(delivery_id, organization_id=organization_id)
    purged = echo.echo_purge_expired()
    if ids or purged:
        logger.info("sweeper.run", extra={"resent": len(ids), "echo_locks_purged": purged})
    return len(ids)


@shared_task(name="webhooks.prune_history", ignore_result=True)
def prune_history_task() -> int:
    """Beat's retention run: finished deliveries and sync events older than RETENTION_DAYS
    (0 keeps everything), at most RETENTION_MAX_BATCHES batches a run; the next run goes on.
    Scenario B's received message ids and delivered outbox messages go after a day."""
    connection_history_prune()
    if settings.RETENTION_DAYS <= 0:
        return 0
    result = history_prune(
        older_than=timezone.now() - timedelta(days=settings.RETENTION_DAYS),
        batch_size=settings.RETENTION_BATCH_SIZE,
        max_batches=settings.RETENTION_MAX_BATCHES,
    )
    return result.deliveries
