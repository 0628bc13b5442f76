"""Reads for the operator: the health of sync, overall or for one organization."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Min, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce, TruncHour
from django.utils import timezone

from jiraapi import adf
from organizations.models import Organization, OutboxMessage
from sync.models import (
    AttachmentLink,
    AttachmentStatus,
    Drift,
    DriftCheck,
    DriftKind,
    ReconcileMark,
    ReconcileRun,
    Side,
    SyncEvent,
    SyncResult,
    UnmappedUser,
)
from webhooks.models import DeliveryStatus, WebhookDelivery

PROBLEMS = (DeliveryStatus.FAILED, DeliveryStatus.DEAD)


def sync_status(*, organization: Organization | None = None, hours: int = 24) -> dict:
    """Deliveries per status (total and per hour), sync results, problems, organizations."""
    now = timezone.now()
    since = now - timedelta(hours=hours)
    deliveries = WebhookDelivery.objects.all()
    events = SyncEvent.objects.all()
    organizations = Organization.objects.all()
    if organization is not None:
        deliveries = deliveries.filter(organization=organization)
        events = events.filter(organization=organization)
        organizations = organizations.filter(pk=organization.pk)
    recent = deliveries.filter(received_at__gte=since)
    by_status: dict[str, int] = {}
    for (_source, status), n in delivery_counts(organization=organization, since=since).items():
        by_status[status] = by_status.get(status, 0) + n
    hourly: dict = {}
    for hour, status, n in (
        recent.annotate(hour=TruncHour("received_at"))
        .values_list("hour", "status")
        .annotate(n=Count("id"))
        .values_list("hour", "status", "n")
    ):
        hourly.setdefault(hour, {})[status] = n
    start = since.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    series = [
        {"hour": start + timedelta(hours=i), "counts": hourly.get(start + timedelta(hours=i), {})}
        for i in range(hours)
    ]
    results: dict[str, int] = {}
    for (_org, result), n in result_counts(organization=organization, since=since).items():
        results[result] = results.get(result, 0) + n
    per_org = list(_with_counts(organizations, since))
    outboxes = peer_outboxes([o.pk for o in per_org if o.is_app])
    drifts = drift_per_organization([o.pk for o in per_org])
    catch_up = reconciliation([o.pk for o in per_org], since)
    for o in per_org:
        o.outbox = outboxes.get(o.pk)
        o.drift = drifts[o.pk]
        o.reconcile = catch_up[o.pk]
        o.credentials = credentials_state(organization=o, today=timezone.localdate(now))
    return {
        "generated_at": now,
        "hours": hours,
        "deliveries": {s: by_status.get(s, 0) for s in DeliveryStatus.values},
        "backlog": sum(
            n
            for (_org, status), n in queue_depth(organization=organization).items()
            if status in (DeliveryStatus.PENDING, DeliveryStatus.PROCESSING)
        ),
        "latency": latency_histogram(organization=organization, since=since),
        "results": results,
        "series": series,
        "problems": list(
            deliveries.filter(status__in=PROBLEMS).select_related("organization")[:50]
        ),
        "conflicts": list(
            events.filter(result="conflict").select_related("issue_link", "organization")[:20]
        ),
        # Pairs closed because the other side's issue was deleted at its site.
        "closed": list(
            events.filter(result="closed").select_related("issue_link", "organization")[:20]
        ),
        # Syncs that ended in an error the delivery does not show (it is `done`): a status
        # no transition reaches, a transition or field Jira refused.
        "errors": list(
            events.filter(result=SyncResult.ERROR, created_at__gte=since).select_related(
                "issue_link", "organization"
            )[:20]
        ),
        "recent_events": list(events.select_related("issue_link", "organization")[:30]),
        "organizations": list(per_org),
        "unmapped_users": unmapped_users(organization=organization),
        "attachments_refused": attachments_refused(organization=organization),
        "drift": drift_summary(organization=organization),
        "drift_rows": drift_rows(organization=organization),
    }


# Shared by the dashboard (`sync_status`) and `/metrics` (ops/metrics.py): each is one
# aggregate query on indexed columns (received_at, status, created_at).

# Deliveries waiting for a worker (`pending`, `processing`) or for their next retry (`failed`).
QUEUED = (DeliveryStatus.PENDING, DeliveryStatus.PROCESSING, DeliveryStatus.FAILED)
# The end-to-end latency histogram's upper bounds (milliseconds): Jira's change to our write.
LATENCY_BOUNDS_MS = (100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000)


def delivery_counts(*, organization: Organization | None = None, since) -> dict:
    """Deliveries received since `since`, per (source, status)."""
    rows = WebhookDelivery.objects.filter(received_at__gte=since)
    if organization is not None:
        rows = rows.filter(organization=organization)
    return {
        (source, status): n
        for source, status, n in rows.order_by()
        .values_list("source", "status")
        .annotate(n=Count("id"))
        .values_list("source", "status", "n")
    }


def queue_depth(*, organization: Organization | None = None) -> dict:
    """Deliveries queued now, whenever received, per (organization's public id, status);
    our own Jira's deliveries (no organization) under ""."""
    rows = WebhookDelivery.objects.filter(status__in=QUEUED)
    return _per_organization(rows, "status", organization)


def result_counts(*, organization: Organization | None = None, since) -> dict:
    """Sync events since `since` (written, echo, conflict, error, ...), per (organization's
    public id, result)."""
    rows = SyncEvent.objects.filter(created_at__gte=since)
    return _per_organization(rows, "result", organization)


def _per_organization(rows, column: str, organization: Organization | None) -> dict:
    """`rows` counted per (organization's public id, `column`): one grouped query."""
    if organization is not None:
        rows = rows.filter(organization=organization)
    counted = list(
        rows.order_by()
        .values_list("organization_id", column)
        .annotate(n=Count("id"))
        .values_list("organization_id", column, "n")
    )
    wanted = {pk for pk, _value, _n in counted if pk is not None}
    ids = dict(Organization.objects.filter(pk__in=wanted).values_list("pk", "public_id"))
    return {(ids.get(pk, ""), value): n for pk, value, n in counted}


def latency_histogram(*, organization: Organization | None = None, since) -> dict:
    """End-to-end latency of the syncs since `since` that recorded one, per direction (push,
    pull): how many took at most each of LATENCY_BOUNDS_MS, the count and the sum (ms)."""
    rows = SyncEvent.objects.filter(created_at__gte=since, latency_ms__isnull=False)
    if organization is not None:
        rows = rows.filter(organization=organization)
    buckets = {f"le{b}": Count("id", filter=Q(latency_ms__lte=b)) for b in LATENCY_BOUNDS_MS}
    found = {}
    for row in (
        rows.order_by()
        .values("direction")
        .annotate(count=Count("id"), sum_ms=Sum("latency_ms"), **buckets)
    ):
        found[row["direction"]] = {
            "buckets": {b: row[f"le{b}"] for b in LATENCY_BOUNDS_MS},
            "count": row["count"],
            "sumMs": row["sum_ms"] or 0,
        }
    return found


def attachments_refused(*, organization: Organization | None = None) -> int:
    """Attachments not copied (over the size limit, or excluded by name): each is recorded
    once and not tried again."""
    refused = AttachmentLink.objects.filter(status=AttachmentStatus.REFUSED)
    if organization is not None:
        refused = refused.filter(issue_link__organization=organization)
    return refused.count()


def drift_summary(*, organization: Organization | None = None) -> dict:
    """What the last drift checks found: pairs that differ, their differing fields and
    comments, and pairs whose issue is gone on a side."""
    rows = Drift.objects.all()
    if organization is not None:
        rows = rows.filter(organization=organization)
    return {
        "pairs": rows.values("issue_link_id").distinct().count(),
        "fields": rows.exclude(kind=DriftKind.GONE).count(),
        "gone": rows.filter(kind=DriftKind.GONE).values("issue_link_id").distinct().count(),
    }


def drift_per_organization(organization_ids: list[int]) -> dict[int, dict]:
    """Per organization: its drift (as `drift_summary`) and its last check."""
    found = {pk: {"pairs": 0, "fields": 0, "gone": 0, "check": None} for pk in organization_ids}
    rows = Drift.objects.filter(organization_id__in=organization_ids)
    for pk, n in (
        rows.values_list("organization_id").annotate(n=Count("issue_link_id", distinct=True))
    ).values_list("organization_id", "n"):
        found[pk]["pairs"] = n
    for pk, n in (
        rows.exclude(kind=DriftKind.GONE)
        .values_list("organization_id")
        .annotate(n=Count("id"))
        .values_list("organization_id", "n")
    ):
        found[pk]["fields"] = n
    for pk, n in (
        rows.filter(kind=DriftKind.GONE)
        .values_list("organization_id")
        .annotate(n=Count("issue_link_id", distinct=True))
        .values_list("organization_id", "n")
    ):
        found[pk]["gone"] = n
    for check in DriftCheck.objects.filter(organization_id__in=organization_ids):
        found[check.organization_id]["check"] = check
    return found


def drift_rows(*, organization: Organization | None = None, limit: int = 200) -> list:
    """The differences the drift check recorded, each with both values shown as text."""
    rows = Drift.objects.select_related("issue_link", "organization")
    if organization is not None:
        rows = rows.filter(organization=organization)
    found = list(rows[:limit])
    for row in found:
        row.local_shown = shown_value(row.local_value)
        row.remote_shown = shown_value(row.remote_value)
    return found


def shown_value(value, limit: int = 300) -> str:
    """A canonical field value as a short text for a person."""
    if value in (None, "", []):
        return "—"
    if isinstance(value, dict) and value.get("type") == "doc":
        text = adf.adf_to_wiki(value)
    elif isinstance(value, dict):
        text = str(
            value.get("name")
            or value.get("displayName")
            or value.get("value")
            or value.get("email")
            or value.get("id")
            or value
        )
    elif isinstance(value, list):
        text = ", ".join(shown_value(v, limit) for v in value)
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def peer_outboxes(organization_ids: list[int]) -> dict[int, dict]:
    """Scenario B: per organization connected to a partner install, its outbox (messages
    not yet delivered, the oldest one's age, the last error) and the latest message
    the partner refused for good."""
    found: dict[int, dict] = {}
    pending = OutboxMessage.objects.filter(sent_at__isnull=True)
    for organization_id in organization_ids:
        mine = pending.filter(connection__organization_id=organization_id)
        head = mine.order_by("pk").first()
        refused = (
            OutboxMessage.objects.filter(
                connection__organization_id=organization_id, sent_at__isnull=False
            )
            .exclude(last_error="")
            .order_by("-pk")
            .first()
        )
        found[organization_id] = {
            "pending": mine.count() if head else 0,
            "oldest_pending_at": head.created_at if head else None,
            "last_error": head.last_error if head else "",
            "refused": refused.last_error if refused else "",
        }
    return found


def reconciliation(organization_ids: list[int], since) -> dict[int, dict]:
    """Per organization: when each side was last reconciled (every project mapping's side
    by then), how many changes catch-up had to heal since `since`, and whether that is more
    than SYNC_RECONCILE_WARN_HEALED (a sign that webhooks are being lost)."""
    found = {pk: {"last": {}, "healed": 0, "warn": False, "stopped": ""} for pk in organization_ids}
    marks = (
        ReconcileMark.objects.filter(organization_id__in=organization_ids)
        .values_list("organization_id", "side")
        .annotate(last=Min("last_run_at"))
    )
    for organization_id, side, last in marks:
        found[organization_id]["last"][side] = last
    healed = (
        ReconcileRun.objects.filter(organization_id__in=organization_ids, started_at__gte=since)
        .values_list("organization_id")
        .annotate(n=Sum("healed"))
    )
    for organization_id, n in healed:
        found[organization_id]["healed"] = n or 0
        found[organization_id]["warn"] = (n or 0) > settings.SYNC_RECONCILE_WARN_HEALED
    for organization_id in organization_ids:
        latest = ReconcileRun.objects.filter(organization_id=organization_id).first()
        found[organization_id]["stopped"] = latest.stopped if latest else ""
    return found


def credentials_state(*, organization: Organization, today) -> dict:
    """The partner credentials' state: `rejected` (the site answered 401), `expired`,
    `expiring` (within CREDENTIALS_EXPIRY_WARNING_DAYS) or `ok`; no query."""
    expires = organization.remote_token_expires_at
    days_left = (expires - today).days if expires else None
    if organization.credentials_rejected_at:
        state = "rejected"
    elif days_left is not None and days_left < 0:
        state = "expired"
    elif days_left is not None and days_left <= settings.CREDENTIALS_EXPIRY_WARNING_DAYS:
        state = "expiring"
    else:
        state = "ok"
    return {
        "state": state,
        "expires_at": expires,
        "days_left": days_left,
        "rejected_at": organization.credentials_rejected_at,
        "message": organization.credentials_rejected_message,
    }


def _credentials_json(credentials: dict) -> dict:
    return {
        "state": credentials["state"],
        "tokenExpiresAt": (
            credentials["expires_at"].isoformat() if credentials["expires_at"] else None
        ),
        "daysLeft": credentials["days_left"],
        "rejectedAt": (
            credentials["rejected_at"].isoformat() if credentials["rejected_at"] else None
        ),
        "message": credentials["message"],
    }


def _count_of_organization(queryset, **filters):
    """How many rows of `queryset` (filtered) belong to the outer organization: a correlated
    subquery, so counts over two tables never multiply each other (a join of deliveries and
    sync events per organization grows as their product)."""
    counted = (
        queryset.filter(organization=OuterRef("pk"), **filters)
        .order_by()
        .values("organization")
        .annotate(n=Count("pk"))
        .values("n")[:1]
    )
    return Coalesce(Subquery(counted), 0)


def _with_counts(organizations, since):
    """Each organization with its deliveries, problems and conflicts since `since`."""
    deliveries, events = WebhookDelivery.objects.all(), SyncEvent.objects.all()
    return organizations.annotate(
        delivery_count=_count_of_organization(deliveries, received_at__gte=since),
        problems=_count_of_organization(deliveries, status__in=PROBLEMS),
        conflicts=_count_of_organization(events, result="conflict", created_at__gte=since),
        errors=_count_of_organization(events, result=SyncResult.ERROR, created_at__gte=since),
    ).order_by("name")


def sync_status_json(status: dict) -> dict:
    """The same status in JSON for monitoring."""
    return {
        "generatedAt": status["generated_at"].isoformat(),
        "hours": status["hours"],
        "healthy": not status["problems"],
        "backlog": status["backlog"],
        "deliveries": status["deliveries"],
        "results": status["results"],
        "latency": status["latency"],
        "problems": [
            {
                "delivery": d.pk,
                "organization": d.organization.public_id if d.organization else None,
                "status": d.status,
                "event": d.event_type,
                "issue": d.issue_key,
                "attempts": d.attempts,
                "error": d.last_error,
            }
            for d in status["problems"]
        ],
        "unmappedUsers": [
            {
                "organization": u.organization.public_id,
                "side": u.side,
                "userId": u.user_id,
                "displayName": u.display_name,
                "email": u.email,
                "field": u.field,
                "firstSeen": u.first_seen.isoformat(),
                "lastSeen": u.last_seen.isoformat(),
                "count": u.count,
            }
            for u in status["unmapped_users"]
        ],
        "errors": [
            {
                "organization": e.organization.public_id,
                "issuePair": str(e.issue_link) if e.issue_link else None,
                "direction": e.direction,
                "at": e.created_at.isoformat(),
                "message": e.message,
            }
            for e in status["errors"]
        ],
        "drift": status["drift"],
        "attachmentsRefused": status["attachments_refused"],
        "organizations": [
            {
                "id": o.public_id,
                "name": o.name,
                "enabled": o.enabled,
                "syncDirection": o.sync_direction,
                "handshakeStatus": o.handshake_status,
                "lastDeliveryAt": o.last_delivery_at.isoformat() if o.last_delivery_at else None,
                "deliveries": o.delivery_count,
                "problems": o.problems,
                "conflicts": o.conflicts,
                "errors": o.errors,
                "connectionType": o.connection_type,
                "drift": _drift_json(o.drift),
                "reconciliation": _reconcile_json(o.reconcile),
                "credentials": _credentials_json(o.credentials),
                **({"outbox": _outbox_json(o.outbox)} if getattr(o, "outbox", None) else {}),
            }
            for o in status["organizations"]
        ],
    }


def _drift_json(drift: dict) -> dict:
    check = drift["check"]
    return {
        "pairs": drift["pairs"],
        "fields": drift["fields"],
        "gone": drift["gone"],
        "lastCheckedAt": check.checked_at.isoformat() if check else None,
        "lastCheckPairs": check.pairs if check else None,
        "lastCheckCalls": check.calls if check else None,
        "lastCheckError": check.error if check else "",
    }


def _reconcile_json(catch_up: dict) -> dict:
    last = catch_up["last"]
    return {
        "lastReconciled": {
            side: last[side].isoformat() if last.get(side) else None for side in Side.values
        },
        "healed24h": catch_up["healed"],
        "warning": catch_up["warn"],
        "stopped": catch_up["stopped"],
    }


def _outbox_json(outbox: dict) -> dict:
    oldest = outbox["oldest_pending_at"]
    return {
        "pending": outbox["pending"],
        "oldestPendingAt": oldest.isoformat() if oldest else None,
        "lastError": outbox["last_error"],
        "lastRefused": outbox["refused"],
    }


def unmapped_users(*, organization: Organization | None = None, limit: int = 50) -> list:
    """Users met with no counterpart on the other side and not mapped since, latest first.

    Each carries `map_hint`: the user map entry the admin would add ("id": "?" for our
    users, "?": "id" for the partner's).
    """
    users = UnmappedUser.objects.select_related("organization")
    if organization is not None:
        users = users.filter(organization=organization)
    found = []
    for user in users[: limit * 2]:
        table = user.organization.user_map or {}
        mapped = table if user.side == Side.LOCAL else {v: k for k, v in table.items()}
        if user.user_id in mapped:
            continue  # mapped since it was seen
        user.map_hint = (
            f'"{user.user_id}": "?"' if user.side == Side.LOCAL else f'"?": "{user.user_id}"'
        )
        found.append(user)
        if len(found) == limit:
            break
    return found


def organization_activity(*, organization: Organization, hours: int = 24) -> dict:
    """Sync activity for the admin: counts per result over `hours`, and the latest events."""
    since = timezone.now() - timedelta(hours=hours)
    events = SyncEvent.objects.filter(organization=organization)
    counts = dict(
        events.filter(created_at__gte=since)
        .values_list("result")
        .annotate(n=Count("id"))
        .values_list("result", "n")
    )
    return {
        "hours": hours,
        "counts": counts,
        "recent": list(events.select_related("issue_link")[:15]),
        "unmapped_users": unmapped_users(organization=organization),
        "drift": drift_summary(organization=organization),
        "drift_rows": drift_rows(organization=organization),
    }
