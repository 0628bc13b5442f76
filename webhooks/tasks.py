"""Celery tasks: claim a stored delivery, hand its event to the sync engine, record the outcome.

The task alone writes a delivery's status, error and Jira calls.

Retries go through Celery (a worker never sleeps on a rate limit): at least `Retry-After`
for 429/503, exponential backoff with jitter otherwise, capped, then `dead`.
"""

from __future__ import annotations

import functools
import logging
import random
from datetime import timedelta

from celery import shared_task
from celery.exceptions import Retry
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from core.rows import instances
from jiraapi.client import counting_calls
from jiraapi.errors import JiraAuthError, JiraError
from jiraapi.events import JiraEvent
from organizations.models import Organization
from organizations.relay import connection_history_prune
from organizations.selectors import (
    ORGANIZATION_STAMP_SQL,
    organization_at_stamp,
    stamps_read_once,
)
from organizations.services import organization_credentials_reject
from sync import echo
from sync.leases import LeaseBusy, issue_column_sql
from sync.mapping import PULL, PUSH
from sync.models import IssueLink
from sync.retries import backoff_seconds
from sync.services import MERGEABLE_TYPES, DeliveryOutcome, event_process, peer_message_process

from .blocks import auth_blocks_prune
from .models import DeliverySource, DeliveryStatus, WebhookDelivery
from .publish import delivery_publish
from .retention import history_prune

logger = logging.getLogger(__name__)

# The start of a delivery's error while it waits for new credentials (a 401 from a site).
CREDENTIALS_REJECTED = "credentials rejected"
PARTNER_SITE = "the partner's"

FINAL = (DeliveryStatus.DONE, DeliveryStatus.IGNORED, DeliveryStatus.ECHO, DeliveryStatus.DEAD)


# A worker that ran a delivery's sync takes, this many times at most, the deliveries of the
# same issue that queued behind it meanwhile (then it leaves the rest to their own tasks).
COALESCE_ROUNDS = 3
COALESCE_BATCH = 200


# Whether another worker holds the lease of the delivery's issue pair (read with the claim):
# then the delivery goes alone (the pair's holder takes what queued behind it).
_PAIR_BUSY = (
    "EXISTS (SELECT 1 FROM {links} l WHERE l.lease_until > %s AND {d}.event_type NOT LIKE 'peer:%%'"  # noqa: S608
    " AND {d}.issue_id <> ''"
    " AND ({d}.organization_id IS NULL OR l.organization_id = {d}.organization_id)"
    " AND "
    + issue_column_sql(link="l", local_when="{d}.source = %s", issue_id="{d}.issue_id")
    + ") AS pair_busy"
)


def claim(delivery_id: int) -> WebhookDelivery | None:
    """Take a delivery for processing, unless it is finished or another worker has it: one
    `UPDATE ... RETURNING` (the claim, the row, whether its issue pair is busy: `pair_busy`,
    and its organization's stamp, which says whether this process's copy of it will do)."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.SYNC_PROCESSING_STALE_SECONDS)
    table = WebhookDelivery._meta.db_table
    # The table by its name, not an alias: SQLite's RETURNING sees no alias in a subquery.
    busy = _PAIR_BUSY.format(links=IssueLink._meta.db_table, d=table)
    orgs = Organization._meta.db_table
    stamp = (
        f"(SELECT {ORGANIZATION_STAMP_SQL.format(table=orgs)} FROM {orgs} "  # noqa: S608
        f"WHERE {orgs}.id = {table}.organization_id) AS organization_stamp"
    )
    rows = instances(
        WebhookDelivery,
        f"UPDATE {table} SET status = %s, updated_at = %s "  # noqa: S608
        "WHERE id = %s AND (status IN (%s, %s) OR (status = %s AND updated_at < %s)) "
        f"RETURNING *, {busy}, {stamp}",
        [
            DeliveryStatus.PROCESSING,
            now,
            delivery_id,
            DeliveryStatus.PENDING,
            DeliveryStatus.FAILED,
            DeliveryStatus.PROCESSING,
            stale,
            now,
            DeliverySource.LOCAL,
        ],
    )
    if not rows:
        return None
    delivery = rows[0]
    if delivery.organization_stamp is not None:
        delivery.organization = organization_at_stamp(
            pk=delivery.organization_id, stamp=delivery.organization_stamp
        )
    return delivery


def claim_behind(delivery: WebhookDelivery) -> list[WebhookDelivery]:
    """The pending deliveries of the same issue from the same source and organization that
    queued up to now, taken for processing with `delivery` (coalescing: one sync that reads
    the issue after they all arrived covers the plain updates among them). Only issue
    create/update events; the rest keep their own tasks. Their queued tasks, when they run,
    find them taken or final and do nothing."""
    if not delivery.issue_id or delivery.event_type not in MERGEABLE_TYPES:
        return []
    table = WebhookDelivery._meta.db_table
    org = delivery.organization_id
    rows = instances(
        WebhookDelivery,
        f"UPDATE {table} SET status = %s, updated_at = %s WHERE id IN ("  # noqa: S608
        f"SELECT id FROM {table} WHERE status = %s AND source = %s AND issue_id = %s "
        f"AND event_type IN (%s, %s) AND id <> %s AND "
        + ("organization_id IS NULL" if org is None else "organization_id = %s")
        + " ORDER BY id LIMIT %s"
        # PostgreSQL: rows another worker is taking are left to it; SQLite writes one at a time.
        + (
            " FOR UPDATE SKIP LOCKED"
            if connection.features.has_select_for_update_skip_locked
            else ""
        )
        + ") RETURNING *",
        [
            DeliveryStatus.PROCESSING,
            timezone.now(),
            DeliveryStatus.PENDING,
            delivery.source,
            delivery.issue_id,
            *MERGEABLE_TYPES,
            delivery.pk,
            *([] if org is None else [org]),
            COALESCE_BATCH,
        ],
    )
    taken = sorted(rows, key=lambda d: d.pk)
    if org is not None:
        for d in taken:  # the same organization, read once for the batch
            d.organization = delivery.organization
    return taken


@functools.cache
def _finish_sql(count: int) -> str:
    """Every delivery ends here: one statement for `count` deliveries with the same outcome,
    written once (the ORM would build and compile the UPDATE with its F() sums each time, at
    more than the cost of running it)."""
    return (
        f"UPDATE {WebhookDelivery._meta.db_table} SET status = %s, last_error = %s, "  # noqa: S608
        "updated_at = %s, attempts = attempts + %s, calls = calls + %s "
        f"WHERE id IN ({', '.join(['%s'] * count)})"
    )


def _finish(
    delivery: WebhookDelivery, status: str, error: str = "", *, attempt: bool, calls: int = 0
) -> None:
    delivery.status = status  # the instance in step with its row
    _finish_rows([delivery.pk], status, error, attempt=attempt, calls=calls)


def _finish_rows(ids: list[int], status: str, error: str, *, attempt: bool, calls: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            _finish_sql(len(ids)),
            [
                status,
                error.replace("\x00", "")[:4000],  # PostgreSQL stores no NUL
                connection.ops.adapt_datetimefield_value(timezone.now()),
                1 if attempt else 0,
                calls,
                *ids,
            ],
        )


def _finish_all(ended: list[tuple[WebhookDelivery, str, int]]) -> None:
    """The outcomes of a round's processed deliveries (`_one` records them in `ended` as
    (delivery, reason, calls); the status is already on each instance): one UPDATE for each
    outcome that several share, as the deliveries merged into one sync mostly do, instead
    of one for each. Emptied once written.

    A worker that dies before this leaves them `processing`; the sweeper sends them again
    after SYNC_PROCESSING_STALE_SECONDS, and processing one twice writes nothing twice (its
    sync finds the other site in step, its echo lock is gone)."""
    groups: dict[tuple[str, str, int], list[int]] = {}
    for delivery, reason, calls in ended:
        groups.setdefault((delivery.status, reason, calls), []).append(delivery.pk)
    ended.clear()
    for (status, reason, calls), ids in groups.items():
        _finish_rows(ids, status, reason, attempt=True, calls=calls)


def delivery_process(
    delivery: WebhookDelivery, *, covered: dict[int, int] | None = None
) -> DeliveryOutcome:
    """Hand a stored delivery's event to the sync engine (PUSH from our Jira, PULL from a
    partner's); the outcome says how it ended. `covered`: see `event_process`."""
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
        covered=covered,
    )


def _claim(delivery_id: int) -> WebhookDelivery | None:
    """`claim`, as the task's first statement: its connection is not checked before the task
    (`db_health_check=False`, syncapp.celery), so one that broke while idle (the database
    restarted) is closed here and the claim made once more on a new one."""
    try:
        return claim(delivery_id)
    except (InterfaceError, OperationalError):
        if connection.in_atomic_block:
            raise
        logger.warning("delivery.claim_reconnect", extra={"delivery": delivery_id})
        connection.close()
        return claim(delivery_id)


@shared_task(
    name="webhooks.process_delivery",
    bind=True,
    acks_late=True,
    ignore_result=True,
    max_retries=None,
    db_health_check=False,  # `_claim` reconnects by itself: no `SELECT 1` before each task
)
def process_delivery_task(self, delivery_id: int) -> None:
    delivery = _claim(delivery_id)
    if delivery is None:
        return
    # A pair busy with another worker: its holder takes what queued behind it.
    batch = [delivery] if delivery.pair_busy else [delivery, *claim_behind(delivery)]
    full = len(batch) > COALESCE_BATCH  # more may queue behind than it took
    retry_own: Retry | None = None
    ended: list[tuple[WebhookDelivery, str, int]] = []  # processed, written per round
    for round_ in range(COALESCE_ROUNDS):
        # Every delivery in `batch` arrived before any sync below reads the issue: the first
        # sync of an organization's pair covers the plain updates after it (`covered`).
        covered: dict[int, int] = {}
        stop: float | None = None
        try:
            with stamps_read_once():  # all received before the round began
                for n, member in enumerate(batch):
                    own = member.pk == delivery.pk
                    retry, stop = _one(self, member, covered, ended, own=own)
                    if own and retry is not None:
                        retry_own = retry
                    if stop is not None:  # the pair is busy, or its sync failed: the rest waits
                        _release(batch[n + 1 :], countdown=stop)
                        break
        finally:
            _finish_all(ended)
        if stop is not None or retry_own is not None or round_ + 1 == COALESCE_ROUNDS:
            break
        if all(member.status == DeliveryStatus.ECHO for member in batch):
            break  # nothing synced, no lease held: what queued meanwhile has its own tasks
        # What queued behind while we synced (it may have found the pair busy): ours now.
        batch = claim_behind(delivery)
        full = len(batch) >= COALESCE_BATCH
        if not batch:
            break
    # The relay sent no task for what queued behind this delivery while it was pending; this
    # task takes it along, unless its pair was busy (it took nothing) and it still ended
    # (an echo needs no lease): then the first of them gets a task. Full batches: the rest.
    if full or (delivery.pair_busy and delivery.status in FINAL):
        _send_next_behind(delivery)
    if retry_own is not None:
        raise retry_own


def _send_next_behind(delivery: WebhookDelivery) -> None:
    """A task for the first delivery still queued behind `delivery` (the relay sent none for
    it: `pending_relay._BEHIND_SQL`); that task takes the rest along."""
    org = delivery.organization_id
    following = (
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING,
            source=delivery.source,
            issue_id=delivery.issue_id,
            organization_id=org,
            event_type__in=MERGEABLE_TYPES,
        )
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )
    if following is not None:
        delivery_send(following, organization_id=org)


def _one(
    task,
    delivery: WebhookDelivery,
    covered: dict[int, int],
    ended: list[tuple[WebhookDelivery, str, int]],
    *,
    own: bool,
) -> tuple[Retry | None, float | None]:
    """Process one delivery of a batch and record its outcome (a processed one in `ended`,
    for `_finish_all`; a busy pair or a failure at once); `covered` learns the
    organizations it synced. Returns the task's own retry (already sent) for the task to
    raise once the batch is done; another delivery of the batch is sent again by itself), and
    when the pair was busy (another worker holds it) or its sync failed, in how many seconds
    the rest of the batch may go again."""
    with counting_calls() as calls:
        try:
            outcome = delivery_process(delivery, covered=covered)
        except LeaseBusy:
            # Another worker is on this issue pair: come back shortly, no attempt spent.
            _finish(delivery, DeliveryStatus.PENDING, attempt=False, calls=calls.count)
            countdown = _busy_countdown()
            return _again(task, delivery, countdown, own=own), countdown
        except Exception as exc:
            countdown = _failed(task, delivery, exc, calls=calls.count, own=False)
            if countdown is None:  # dead, or waiting for new credentials
                return None, _busy_countdown()
            return _again(task, delivery, countdown, own=own), countdown
    for organization_id in outcome.synced:
        covered.setdefault(organization_id, delivery.pk)
    delivery.status = outcome.status  # the instance says how it ended; its row, once written
    ended.append((delivery, outcome.reason, outcome.calls))
    return None, None


def _busy_countdown() -> float:
    return 0.5 + random.uniform(0, 1.0)  # noqa: S311


def _release(rest: list[WebhookDelivery], *, countdown: float) -> None:
    """Deliveries taken along but not processed (their pair turned out busy, or a sync of it
    failed): pending again, each sent again after `countdown` (the pair's holder may take
    them first)."""
    if not rest:
        return
    WebhookDelivery.objects.filter(
        pk__in=[d.pk for d in rest], status=DeliveryStatus.PROCESSING
    ).update(status=DeliveryStatus.PENDING, updated_at=timezone.now())
    for d in rest:
        _again(None, d, countdown, own=False)


def _again(task, delivery: WebhookDelivery, countdown: float, *, own: bool) -> Retry | None:
    """The task's own delivery retries through Celery (to the queue its message came from;
    the caller raises the retry); one taken along with it is sent again on its own."""
    if own:
        try:
            raise task.retry(countdown=countdown)
        except Retry as retry:
            return retry
    process_delivery_task.apply_async(
        (delivery.pk,), queue=delivery_queue(delivery.organization_id), countdown=countdown
    )
    return None


def _failed(
    task, delivery: WebhookDelivery, exc: Exception, *, calls: int, own: bool = True
) -> float | None:
    """A failed attempt: retried with backoff while it can pass, else `dead`. `own`: the
    task's own delivery (its retry raised here), else the countdown is returned."""
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
        return None
    if not retryable or attempts >= settings.SYNC_MAX_ATTEMPTS:
        _finish(delivery, DeliveryStatus.DEAD, message, attempt=True, calls=calls)
        logger.warning("delivery.dead", extra={"delivery": delivery.pk, "error": message})
        return None
    _finish(delivery, DeliveryStatus.FAILED, message, attempt=True, calls=calls)
    countdown = backoff_seconds(attempts, retry_after)
    logger.info(
        "delivery.retry",
        extra={"delivery": delivery.pk, "attempt": attempts, "countdown": round(countdown, 2)},
    )
    if own:
        raise task.retry(countdown=countdown) from None
    return countdown


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
    and a relay leading, its trigger's notification sends it, at commit; otherwise as
    `delivery_enqueue` (no worker runs a relay: the request publishes).

    Only for an INSERT of a pending row (the trigger fires on nothing else): a row set back
    to pending by an UPDATE (a retry) goes through `delivery_enqueue`."""
    from .pending_relay import relay_in_use, relay_leads

    if relay_in_use() and relay_leads():
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
    Scenario B's received message ids and delivered outbox messages go after a day, and
    the blocks of throttled webhook clients once they ended (`webhooks.blocks`)."""
    connection_history_prune()
    auth_blocks_prune()
    if settings.RETENTION_DAYS <= 0:
        return 0
    result = history_prune(
        older_than=timezone.now() - timedelta(days=settings.RETENTION_DAYS),
        batch_size=settings.RETENTION_BATCH_SIZE,
        max_batches=settings.RETENTION_MAX_BATCHES,
    )
    return result.deliveries
