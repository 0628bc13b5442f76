"""Storing deliveries in the inbox."""

import hashlib
import logging
import uuid
from contextlib import nullcontext
from functools import cache

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.db.backends.postgresql.base import ServerBindingCursor as PostgresServerBindingCursor
from django.utils import timezone

from core.logging import escape_controls
from jiraapi.events import JiraEvent
from organizations.connections import ConnectionRefused, Received, connection_message_record
from organizations.models import Organization
from sync import peer

from . import blocks
from .models import DeliverySource, DeliveryStatus, WebhookDelivery
from .tasks import delivery_enqueue, delivery_stored_enqueue

logger = logging.getLogger(__name__)

# Headers kept with a delivery (for deduplication, ordering and the operator's view).
KEPT_HEADERS = (
    "X-Atlassian-Webhook-Identifier",
    "X-Atlassian-Webhook-Retry",
    "X-Atlassian-Webhook-Flow",
    "X-Hub-Signature",
    "User-Agent",
)


class OrganizationGone(Exception):
    """The delivery's organization was deleted while its delivery was being stored."""


class CredentialsUnconfirmed(Exception):
    """Storing a delivery did not confirm the cached credentials it was accepted on: the
    organization changed or went since they were read (the row held was deleted), or the
    delivery is a repeat (nothing was written). Nothing was announced or queued."""


# A held row's reason: stored on credentials found stale by its own INSERT (or for a sender
# blocked meanwhile, `webhooks.blocks`), as ignored (which no trigger announces and no sweep
# sends), and deleted right after.
HELD_REASON = "held: the organization changed since its credentials were cached"


def _ignored_reason(*, event: JiraEvent, organization: Organization | None) -> str:
    """Why a delivery is stored as ignored ("" when the sync engine is to take it)."""
    if not event.handled:
        return f"event type {event.kind or '(none)'!r} is not handled"
    project_key = event.project_key
    if organization is not None and project_key:
        mapped = getattr(organization, "maps_project", None)  # from webhooks.auth
        if mapped is None:
            mapped = organization.project_mappings.filter(remote_project_key=project_key).exists()
        # A move out of a mapped project still reaches the engine, which only lets the
        # organization's own links follow the issue's new key (its `Key` changelog item).
        if not mapped and event.change("key") is None:
            return f"partner project {project_key!r} is not mapped"
    return ""


# Fields whose values PostgreSQL takes as Python holds them (psycopg adapts them): the others
# (JSON) are prepared by the field, as the ORM's INSERT prepares them.
_AS_IS = (models.CharField, models.TextField, models.IntegerField, models.DateTimeField)


# The columns a checked INSERT (`_insert_sql`) writes as given only while the organization's
# `config_version` is the one its credentials were read with; a held row takes a key of its
# own, so that it never passes for the delivery (nor for a repeat of it) even for a moment.
_CHECKED = ("dedupe_key", "status", "last_error")


@cache
def _insert_sql(vendor: str, checked: bool = False) -> tuple[str, tuple]:
    """The INSERT of one delivery that skips a repeat (`dedupe_key` taken) and returns the
    new row's id and reason, with the fields it writes in order (each with its preparation,
    or None).

    `checked`: the key, the status and the reason are each `CASE WHEN <the organization's
    config_version> = %s AND <no live block of the client> THEN %s ELSE %s END`, the
    organization's id first, then the version, the client's key and the time (six values in
    place of one): a row stored on stale credentials, or for a blocked client
    (`webhooks.blocks`), is held as ignored, which the pending trigger (migration 0003) does
    not announce and no sweep sends."""
    meta = WebhookDelivery._meta
    quote = connection.ops.quote_name
    fields = tuple(f for f in meta.concrete_fields if not f.primary_key)
    org_meta = Organization._meta
    reason = quote(meta.get_field("last_error").column)
    version = (
        f"(SELECT {quote(org_meta.get_field('config_version').column)}"  # noqa: S608 - names from the model
        f" FROM {quote(org_meta.db_table)} WHERE {quote(org_meta.pk.column)} = %s)"
    )
    confirmed = f"{version} = %s AND {blocks.unblocked_sql()}"
    values = (
        f"CASE WHEN {confirmed} THEN %s ELSE %s END" if checked and f.name in _CHECKED else "%s"
        for f in fields
    )
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)})"  # noqa: S608 - names from the model; the values are bound
        f" VALUES ({', '.join(values)})"
        f" ON CONFLICT ({quote(meta.get_field('dedupe_key').column)})"
        f" DO NOTHING RETURNING {quote(meta.pk.column)}, {reason}"
    )
    prepared = (
        (f.attname, None if isinstance(f, (*_AS_IS, models.ForeignKey)) else f.get_db_prep_save)
        for f in fields
    )
    return sql, tuple(prepared)


class _PreparedCursor(PostgresServerBindingCursor):
    """psycopg's cursor with the values bound by the server (not quoted into the text), each
    statement prepared on its connection at its first execution."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=binary)


def _insert_cursor():
    """The cursor of the INSERT: Django's (its query log, its error wrapping), on a prepared
    psycopg cursor of the same connection unless WEBHOOK_PREPARED_INSERT is off. Django turns
    prepared statements off by default (for poolers); this one statement is the hot path of
    the endpoint, where quoting a body into the SQL text and parsing and planning it again
    cost more than the rest of the INSERT."""
    if not settings.WEBHOOK_PREPARED_INSERT:
        return connection.cursor()
    connection.ensure_connection()
    raw = _PreparedCursor(connection.connection)
    return (
        connection.make_debug_cursor(raw)
        if connection.queries_logged
        else connection.make_cursor(raw)
    )


def _insert(
    delivery: WebhookDelivery, config_version: int | None = None, client_key: str = ""
) -> bool:
    """Insert `delivery` (setting its pk) unless a row has its `dedupe_key`: whether it did.

    On PostgreSQL one statement, compiled once, with the values the ORM's INSERT would send:
    the INSERT is the larger part of a delivery's cost in the web process. Elsewhere the
    ORM's, where a repeat raises IntegrityError.

    `config_version` (PostgreSQL): the organization's, as its cached credentials were read;
    the same statement checks it, and that no live block names `client_key` (the sender's
    `core.throttle.key_digest`); a row stored otherwise is held and deleted:
    CredentialsUnconfirmed."""
    if connection.vendor != "postgresql":
        delivery.save(force_insert=True)
        return True
    checked = config_version is not None
    sql, fields = _insert_sql(connection.vendor, checked)
    delivery.received_at = delivery.updated_at = timezone.now()  # auto_now(_add)
    values = [
        getattr(delivery, attname)
        if prepare is None
        else prepare(getattr(delivery, attname), connection)
        for attname, prepare in fields
    ]
    if checked:  # each checked value, with the organization, its version, the client's key,
        # the time and the held value
        held_values = {
            "dedupe_key": f"held:{uuid.uuid4().hex}",
            "status": DeliveryStatus.IGNORED,
            "last_error": HELD_REASON,
        }
        for index in sorted((i for i, (a, _) in enumerate(fields) if a in _CHECKED), reverse=True):
            held = held_values[fields[index][0]]
            values[index : index + 1] = [
                delivery.organization_id,
                config_version,
                client_key,
                delivery.received_at,
                values[index],
                held,
            ]
    with _insert_cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
        if row is not None and checked and row[1] == HELD_REASON:
            cursor.execute(
                f"DELETE FROM {connection.ops.quote_name(WebhookDelivery._meta.db_table)}"  # noqa: S608
                " WHERE id = %s AND last_error = %s",
                [row[0], HELD_REASON],
            )
            logger.info("delivery.held", extra={"organization": delivery.organization_id})
            raise CredentialsUnconfirmed
    if row is None:
        if checked:
            raise CredentialsUnconfirmed
        return False
    delivery.pk = row[0]
    delivery._state.adding, delivery._state.db = False, connection.alias
    return True


def delivery_store(
    *,
    source: str,
    organization: Organization | None,
    body: bytes,
    event: JiraEvent,
    headers: dict[str, str],
    config_version: int | None = None,
    client_key: str = "",
) -> tuple[WebhookDelivery, bool]:
    """Store a delivery (`body`, parsed as `event`) once; a repeat (same identifier, or same
    body) returns the first row.

    `config_version`: `organization`'s, as the cached credentials the delivery was accepted
    on read it (`webhooks.auth.incoming_credentials_cached`); stored only if it still is and
    no live block names `client_key` (the sender, `webhooks.blocks`), or
    CredentialsUnconfirmed (also for a repeat, and for an organization gone).

    Returns (delivery, created).
    """
    identifier = headers.get("X-Atlassian-Webhook-Identifier") or (
        "sha256-" + hashlib.sha256(body).hexdigest()
    )
    if escape_controls(identifier) != identifier:  # PostgreSQL refuses NUL: keep it as a hash
        identifier = (
            "id-sha256-" + hashlib.sha256(identifier.encode("utf-8", "replace")).hexdigest()
        )
    scope = organization.pk if organization is not None else "-"
    dedupe_key = f"{source}:{scope}:{identifier}"[:200]
    event_type, issue_id, issue_key = event.kind, event.issue_id, event.issue_key
    reason = _ignored_reason(event=event, organization=organization)
    delivery = WebhookDelivery(
        source=source,
        organization=organization,
        dedupe_key=dedupe_key,
        event_type=event_type[:64],
        issue_id=issue_id[:32],
        issue_key=issue_key[:64],
        body=body.decode("utf-8"),
        headers={k: escape_controls(v) for k, v in headers.items() if k in KEPT_HEADERS},
        status=DeliveryStatus.IGNORED if reason else DeliveryStatus.PENDING,
        last_error=reason,
    )
    # A savepoint only when a transaction is open (a refused row must not abort it); on its
    # own the INSERT is one round trip.
    guard = transaction.atomic() if transaction.get_connection().in_atomic_block else nullcontext()
    try:
        with guard:
            created = _insert(delivery, config_version, client_key)
    except IntegrityError:  # a repeat (not on PostgreSQL), or the organization is gone
        if config_version is not None:
            raise CredentialsUnconfirmed from None
        created = False
    if not created:
        delivery = WebhookDelivery.objects.filter(dedupe_key=dedupe_key).first()
        if delivery is None:  # not a repeat: its organization was deleted a moment ago
            raise OrganizationGone from None
        logger.info(
            "delivery.duplicate",
            extra={"delivery": delivery.pk, "source": source, "issue": issue_key or issue_id},
        )
        return delivery, False
    logger.info(
        "delivery.ignored" if reason else "delivery.stored",
        extra={
            "delivery": delivery.pk,
            "source": source,
            "organization": organization.public_id if organization else None,
            "event": event_type,
            "issue": issue_key or issue_id,
            **({"reason": reason} if reason else {}),
        },
    )
    return delivery, True


def peer_message_store(*, received: Received, body: bytes) -> dict[str, str]:
    """A verified change or ack from the partner's install, stored in the inbox (with its
    message id, which refuses a replay) before it is answered; a worker applies it."""
    try:
        issue = peer.peer_message_check(received.payload)
    except peer.BadMessage as exc:
        raise ConnectionRefused(f"malformed {received.kind}: {exc}", status=422) from None
    with transaction.atomic():
        connection = connection_message_record(received=received)
        organization = connection.organization
        delivery = WebhookDelivery.objects.create(
            source=DeliverySource.PARTNER,
            organization=organization,
            dedupe_key=f"partner:{organization.pk}:message-{received.message_id}"[:200],
            event_type=f"peer:{received.kind}",
            issue_id=issue["id"],
            issue_key=issue["key"],
            body=body.decode("utf-8"),
            headers={},
            status=DeliveryStatus.PENDING,
        )
        delivery_stored_enqueue(delivery.pk, organization_id=organization.pk)
    logger.info(
        "delivery.stored",
        extra={
            "delivery": delivery.pk,
            "source": "partner-install",
            "organization": organization.public_id,
            "event": delivery.event_type,
            "issue": issue["key"],
        },
    )
    return {"status": "ok", "type": received.kind}


def delivery_retry(*, deliveries) -> int:
    """Send failed, dead or stuck deliveries to a worker again, with a fresh attempt count."""
    rows = list(deliveries.values_list("pk", "organization_id"))
    ids = [pk for pk, _ in rows]
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk__in=ids).update(
            status=DeliveryStatus.PENDING, attempts=0, last_error=""
        )
        for delivery_id, organization_id in rows:
            delivery_enqueue(delivery_id, organization_id=organization_id)
    logger.info("delivery.retry_requested", extra={"count": len(ids)})
    return len(ids)
