"""Scenario B's outbox and relay: messages for the partner's install, written in the same
transaction as the sync records that call for them, sent in order, at least once.

The relay of one connection runs in one worker at a time (a lock in the shared cache, not a
row lock: the same row is locked by the messages the partner sends us meanwhile). A partner
that cannot be reached, or answers 429/5xx, is tried again with backoff (capped), by the
relay task itself and, should that chain break, by beat's sweep; everything waits in order
meanwhile. A message the partner refuses for good (another 4xx) is set aside with its
reason, so that it does not hold up the rest. The receiver refuses a message id it has
seen (409): a message sent again after a lost answer counts as delivered.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .connections import (
    ConnectionRefused,
    PartnerUnavailable,
    connection_mark_disconnected,
    connection_offer_refresh,
    connection_send_signed,
)
from .models import Connection, OutboxMessage

logger = logging.getLogger(__name__)

BATCH = 100
LOCK_SECONDS = 300
BACKOFF_CAP_SECONDS = 60.0
# The sweep picks up a connection whose next attempt is this late (its retry chain broke).
OVERDUE_SECONDS = 10.0


class RelayWait(Exception):
    """The partner is unavailable; try again after `countdown` seconds."""

    def __init__(self, countdown: float):
        super().__init__(f"partner unavailable; next attempt in {countdown:.1f}s")
        self.countdown = countdown


def outbox_add(
    *, connection: Connection, kind: str, payload: dict[str, Any], pair: str = "", seq: int = 0
) -> OutboxMessage:
    """Queue a message for the partner (in the caller's transaction); the relay is started
    once that transaction commits."""
    message = OutboxMessage.objects.create(
        connection=connection,
        kind=kind,
        pair=pair[:64],
        seq=seq,
        body=json.dumps({"type": kind, **payload}, separators=(",", ":"), sort_keys=True),
    )
    connection_relay_enqueue(connection_pk=connection.pk)
    return message


def connection_relay_enqueue(*, connection_pk: int) -> None:
    from .tasks import connection_relay_task

    def send() -> None:
        try:
            connection_relay_task.delay(connection_pk)
        except Exception:  # the broker is down: the rows are safe, beat's sweep sends them
            logger.warning("relay.enqueue_failed", extra={"connection_pk": connection_pk})

    transaction.on_commit(send)


def backoff(attempts: int) -> float:
    """Seconds before attempt `attempts + 1`: doubling from 1 s, capped, with jitter."""
    base = min(BACKOFF_CAP_SECONDS, 2.0 ** max(attempts - 1, 0))
    return base * (0.75 + random.random() / 2)  # noqa: S311 - jitter, not a secret


def connection_relay(*, connection_pk: int) -> int:
    """Send the connection's pending messages, oldest first; returns how many were delivered.
    Raises RelayWait when the partner is unavailable (the caller tries again later)."""
    lock = f"relay:connection:{connection_pk}"
    token = secrets.token_hex(8)
    sent = 0
    while True:
        if not cache.add(lock, token, LOCK_SECONDS):
            return sent  # another worker is relaying; it looks again before it stops
        try:
            live, count = _relay_pending(connection_pk)
        finally:
            if cache.get(lock) == token:
                cache.delete(lock)
        sent += count
        # A message committed while we were finishing: its task found the lock taken.
        if not live or not _pending(connection_pk).exists():
            return sent


def _pending(connection_pk: int):
    return OutboxMessage.objects.filter(connection_id=connection_pk, sent_at__isnull=True)


def _relay_pending(connection_pk: int) -> tuple[bool, int]:
    """(whether the connection is live, how many messages went)."""
    connection = Connection.objects.filter(pk=connection_pk).first()
    if connection is None or connection.disconnected_at or not connection.is_active:
        return False, 0
    sent = 0
    while True:
        batch = list(_pending(connection_pk).order_by("id")[:BATCH])
        if not batch:
            return True, sent
        for message in batch:
            _send_one(connection, message)
            sent += 1


def _send_one(connection: Connection, message: OutboxMessage) -> None:
    now = timezone.now()
    if message.next_attempt_at and message.next_attempt_at > now:
        raise RelayWait((message.next_attempt_at - now).total_seconds())
    try:
        response = connection_send_signed(
            connection=connection, body=message.body.encode(), message_id=message.message_id
        )
        status = response.status_code
        reason = response.text[:500]
    except PartnerUnavailable as exc:
        status, reason = 0, str(exc)
    except ConnectionRefused as exc:  # the partner's URL is refused by our URL policy
        status, reason = 400, str(exc)
    if status in (200, 201, 202, 409):  # 409: it has this message already
        OutboxMessage.objects.filter(pk=message.pk).update(
            sent_at=timezone.now(), attempts=message.attempts + 1, last_error=""
        )
        return
    attempts = message.attempts + 1
    if status == 410:  # the partner disconnected (its message saying so did not reach us)
        connection_mark_disconnected(connection_pk=connection.pk)
        raise RelayWait(BACKOFF_CAP_SECONDS)
    # 401: signed with a key the partner does not hold yet (a key rotation under way): the
    # next attempt is signed again, with the key we hold then.
    if status in (0, 401, 429) or status >= 500:
        wait = backoff(attempts)
        OutboxMessage.objects.filter(pk=message.pk).update(
            attempts=attempts,
            next_attempt_at=timezone.now() + timedelta(seconds=wait),
            last_error=f"{status or 'unreachable'}: {reason}"[:2000],
        )
        logger.info(
            "relay.partner_unavailable",
            extra={"connection": connection.connection_id, "status": status, "wait": wait},
        )
        raise RelayWait(wait)
    # Refused for good: set aside (kept, with the reason), so the rest is not held up.
    OutboxMessage.objects.filter(pk=message.pk).update(
        sent_at=timezone.now(), attempts=attempts, last_error=f"refused {status}: {reason}"[:2000]
    )
    logger.warning(
        "relay.message_refused",
        extra={"connection": connection.connection_id, "status": status, "kind": message.kind},
    )


def relay_retry_claim(*, connection_pk: int, countdown: float) -> bool:
    """Whether this relay run schedules the connection's retry (no other one is waiting)."""
    try:
        return bool(cache.add(f"relay:retry:{connection_pk}", 1, max(1, int(countdown))))
    except Exception:  # a cache outage: retry anyway (the lock keeps the runs apart)
        return True


def outbox_sweep() -> int:
    """Start the relay of every live connection with pending messages that nothing is
    relaying (never started: the broker was down; or its retry chain broke)."""
    overdue = timezone.now() - timedelta(seconds=OVERDUE_SECONDS)
    pks = set(
        OutboxMessage.objects.filter(
            sent_at__isnull=True,
            connection__disconnected_at__isnull=True,
        )
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lt=overdue))
        .values_list("connection_id", flat=True)
        .distinct()
    )
    for pk in pks:
        connection_relay_enqueue(connection_pk=pk)
    live = Connection.objects.filter(
        disconnected_at__isnull=True, our_hello_verified=True, partner_hello_verified=True
    ).select_related("organization")
    for connection in live:
        connection_offer_refresh(connection=connection)
    return len(pks)


# A received message's id refuses its replay; past the signing window a replay is refused
# by its timestamp anyway, so ids are kept a day (well past the window) and then dropped.
MESSAGE_IDS_KEPT = timedelta(days=1)


def connection_history_prune(*, batch_size: int = 5000) -> tuple[int, int]:
    """Drop received message ids older than MESSAGE_IDS_KEPT, and outbox messages delivered
    that long ago (a message the partner refused stays, with its reason, for the operator).
    Returns (ids dropped, outbox messages dropped)."""
    from .models import ConnectionMessage

    cutoff = timezone.now() - MESSAGE_IDS_KEPT
    counts = []
    for query in (
        ConnectionMessage.objects.filter(received_at__lt=cutoff),
        OutboxMessage.objects.filter(sent_at__lt=cutoff, last_error=""),
    ):
        total = 0
        while True:
            ids = list(query.order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not ids:
                break
            total += query.model.objects.filter(pk__in=ids).delete()[0]
        counts.append(total)
    return counts[0], counts[1]
