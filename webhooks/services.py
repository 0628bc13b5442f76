"""Storing deliveries in the inbox."""

import hashlib
import json
import logging
from contextlib import nullcontext
from typing import Any

from django.db import IntegrityError, transaction

from jiraapi.events import WEBHOOK_EVENTS
from organizations.models import Organization

from .models import DeliveryStatus, WebhookDelivery

logger = logging.getLogger(__name__)

# The event types the sync engine handles; anything else is stored as ignored.
HANDLED_EVENTS = frozenset(WEBHOOK_EVENTS)
# Headers kept with a delivery (for deduplication, ordering and the operator's view).
KEPT_HEADERS = (
    "X-Atlassian-Webhook-Identifier",
    "X-Atlassian-Webhook-Retry",
    "X-Atlassian-Webhook-Flow",
    "X-Hub-Signature",
    "User-Agent",
)


def _issue_of(payload: dict[str, Any]) -> tuple[str, str, str]:
    issue = payload.get("issue") if isinstance(payload.get("issue"), dict) else {}
    fields = issue.get("fields") if isinstance(issue.get("fields"), dict) else {}
    project = fields.get("project") if isinstance(fields.get("project"), dict) else {}
    return str(issue.get("id") or ""), str(issue.get("key") or ""), str(project.get("key") or "")


def _ignored_reason(*, event_type: str, project_key: str, organization: Organization | None) -> str:
    if event_type not in HANDLED_EVENTS:
        return f"event type {event_type or '(none)'!r} is not handled"
    if organization is not None and project_key:
        mapped = getattr(organization, "maps_project", None)  # from organization_get
        if mapped is None:
            mapped = organization.project_mappings.filter(remote_project_key=project_key).exists()
        if not mapped:
            return f"partner project {project_key!r} is not mapped"
    return ""


def delivery_store(
    *,
    source: str,
    organization: Organization | None,
    body: bytes,
    payload: dict[str, Any],
    headers: dict[str, str],
) -> tuple[WebhookDelivery, bool]:
    """Store a delivery once; a repeat (same identifier, or same body) returns the first row.

    Returns (delivery, created).
    """
    identifier = headers.get("X-Atlassian-Webhook-Identifier") or (
        "sha256-" + hashlib.sha256(body).hexdigest()
    )
    scope = organization.pk if organization is not None else "-"
    dedupe_key = f"{source}:{scope}:{identifier}"[:200]
    event_type = str(payload.get("webhookEvent") or "")
    issue_id, issue_key, project_key = _issue_of(payload)
    reason = _ignored_reason(
        event_type=event_type, project_key=project_key, organization=organization
    )
    # A savepoint only when a transaction is open (a refused duplicate must not abort it);
    # on its own the INSERT is one round trip.
    guard = transaction.atomic() if transaction.get_connection().in_atomic_block else nullcontext()
    try:
        with guard:
            delivery = WebhookDelivery.objects.create(
                source=source,
                organization=organization,
                dedupe_key=dedupe_key,
                event_type=event_type[:64],
                issue_id=issue_id[:32],
                issue_key=issue_key[:64],
                body=body.decode("utf-8"),
                headers={k: v for k, v in headers.items() if k in KEPT_HEADERS},
                status=DeliveryStatus.IGNORED if reason else DeliveryStatus.PENDING,
                last_error=reason,
            )
    except IntegrityError:
        delivery = WebhookDelivery.objects.get(dedupe_key=dedupe_key)
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


def payload_project_key(payload: dict | None) -> str:
    """The project key a delivery's issue names, if any."""
    return _issue_of(payload or {})[2]


def payload_parse(body: bytes) -> dict[str, Any]:
    """The JSON object of a delivery; ValueError when it is not one."""
    payload = json.loads(body.decode("utf-8"))
    if not isinstance(payload, dict):
        raise ValueError("the body is not a JSON object")
    return payload


def delivery_retry(*, deliveries) -> int:
    """Send failed, dead or stuck deliveries to a worker again, with a fresh attempt count."""
    from webhooks.tasks import delivery_enqueue  # noqa: PLC0415 - tasks import services

    ids = list(deliveries.values_list("pk", flat=True))
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk__in=ids).update(
            status=DeliveryStatus.PENDING, attempts=0, last_error=""
        )
        for delivery_id in ids:
            delivery_enqueue(delivery_id)
    logger.info("delivery.retry_requested", extra={"count": len(ids)})
    return len(ids)
