"""Writes on organizations and their mappings (the seed's addOrganization/updateOrganization)."""

import json
import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.crypto import generate_secret

from . import selectors
from .models import (
    ConnectionType,
    FieldMapping,
    HandshakeStatus,
    Organization,
    ProjectMapping,
    SyncDirection,
)

logger = logging.getLogger(__name__)

# Fields a caller may set through organization_create / organization_update.
ORGANIZATION_FIELDS = (
    "public_id",
    "name",
    "enabled",
    "remote_base_url",
    "remote_flavor",
    "remote_user",
    "remote_token",
    "remote_token_expires_at",
    "sync_direction",
    "remote_handshake_token",
    "require_signature",
    "conflict_policy",
    "remote_delete_policy",
    "remote_delete_status",
    "local_delete_policy",
    "local_delete_status",
    "target_gone_policy",
    "copy_restricted_comments",
    "link_type_map",
    "sync_worklogs",
    "create_missing_versions",
    "copy_attachments",
    "attachment_max_bytes",
    "attachment_exclude",
    "relay_partner_issues",
    "user_map",
    "unmapped_user_policy",
    "default_local_user",
    "default_remote_user",
)


# The partner's secrets: write-only, with the time each was last set (`<name>_set_at`).
PARTNER_SECRET_FIELDS = ("remote_token", "remote_handshake_token")


def _stamp_secrets(organization: Organization, changed: dict[str, Any]) -> None:
    """Note when each partner secret in `changed` was set (or clear the time when emptied)."""
    now = timezone.now()
    for name in PARTNER_SECRET_FIELDS:
        if name in changed:
            setattr(organization, f"{name}_set_at", now if changed[name] else None)


def _apply_direction(organization: Organization, direction: str) -> None:
    """Direction changes drive the handshake: two-way waits for the partner's first webhook.
    Not for an app connection (Scenario B): its handshake is the connection's own."""
    if organization.connection_type == ConnectionType.APP:
        pass
    elif direction == SyncDirection.BIDIRECTIONAL:
        if not organization.incoming_secret:
            organization.incoming_secret = generate_secret()
        if organization.handshake_status == HandshakeStatus.NONE:
            organization.handshake_status = HandshakeStatus.PENDING
    else:
        organization.handshake_status = HandshakeStatus.NONE
        organization.handshake_activated_at = None
    organization.sync_direction = direction


@transaction.atomic
def organization_create(*, name: str, **fields: Any) -> Organization:
    unknown = set(fields) - set(ORGANIZATION_FIELDS)
    if unknown:
        raise TypeError(f"unknown organization fields: {sorted(unknown)}")
    direction = fields.pop("sync_direction", SyncDirection.PUSH)
    organization = Organization(name=name, **fields)
    _stamp_secrets(organization, fields)
    organization.incoming_secret = generate_secret()
    _apply_direction(organization, direction)
    organization.full_clean()
    organization.save()
    logger.info(
        "organization.created",
        extra={"organization": organization.public_id, "direction": direction},
    )
    return organization


@transaction.atomic
def organization_update(*, organization: Organization, data: dict[str, Any]) -> Organization:
    unknown = set(data) - set(ORGANIZATION_FIELDS)
    if unknown:
        raise TypeError(f"unknown organization fields: {sorted(unknown)}")
    organization = Organization.objects.select_for_update().get(pk=organization.pk)
    data = dict(data)
    direction = data.pop("sync_direction", None)
    token_changed = bool(data.get("remote_token")) and data["remote_token"] != (
        organization.remote_token
    )
    _stamp_secrets(
        organization,
        {
            k: v
            for k, v in data.items()
            if k in PARTNER_SECRET_FIELDS and v != getattr(organization, k)
        },
    )
    for name, value in data.items():
        setattr(organization, name, value)
    if organization.credentials_rejected_at is not None and token_changed:
        _credentials_renewed(organization)
    if direction is not None and direction != organization.sync_direction:
        _apply_direction(organization, direction)
        logger.info(
            "organization.direction_changed",
            extra={"organization": organization.public_id, "direction": direction},
        )
    # Switching an organization off (push only, or disabled) must work even when its stored
    # partner URL no longer passes the URL policy: that is how an operator stops it. The
    # connect-time check still refuses every call to such a URL.
    winding_down = set(data) <= {"enabled"} and not data.get("enabled", False)
    winding_down = winding_down and direction in (None, SyncDirection.PUSH)
    organization.url_check = not winding_down
    organization.full_clean()
    organization.save()
    return organization


# The task (webhooks.tasks) that retries the deliveries waiting for new credentials. Sent by
# name: the organizations package sits below webhooks and does not import it.
CREDENTIALS_RENEWED_TASK = "webhooks.credentials_renewed"


def _credentials_renewed(organization: Organization) -> None:
    """A new token after a 401: the state clears and, once saved, the waiting deliveries go
    to a worker again."""
    from celery import current_app

    organization.credentials_rejected_at = None
    organization.credentials_rejected_message = ""
    organization_id = organization.pk
    logger.info("organization.credentials_renewed", extra={"organization": organization.public_id})
    transaction.on_commit(
        lambda: (
            current_app.tasks[CREDENTIALS_RENEWED_TASK].apply_async(
                kwargs={"organization_id": organization_id}
            )
            if CREDENTIALS_RENEWED_TASK in current_app.tasks
            else current_app.send_task(
                CREDENTIALS_RENEWED_TASK, kwargs={"organization_id": organization_id}
            )
        )
    )


def organization_credentials_reject(*, base_url: str, user: str, message: str) -> int:
    """A partner site answered 401 to our token: note it (time and Jira's words) on the
    organizations that call that site as that account, for the dashboard. Only on the 401
    path: one UPDATE, no lock. Returns how many organizations it marked."""
    base_url = base_url.rstrip("/")
    marked = Organization.objects.filter(
        remote_base_url__in=(base_url, base_url + "/"), remote_user=user
    ).update(credentials_rejected_at=timezone.now(), credentials_rejected_message=message[:2000])
    logger.warning(
        "organization.credentials_rejected",
        extra={"site": base_url, "organizations": marked, "error": message},
    )
    return marked


def organization_enable_two_way(*, organization: Organization) -> Organization:
    return organization_update(
        organization=organization, data={"sync_direction": SyncDirection.BIDIRECTIONAL}
    )


def organization_disable_two_way(*, organization: Organization) -> Organization:
    return organization_update(organization=organization, data={"sync_direction": "push"})


# At most this many rotated-out secrets stay valid at once (the oldest go first).
MAX_PREVIOUS_SECRETS = 5


@transaction.atomic
def organization_rotate_secret(
    *, organization: Organization, grace_period: timedelta | None = None
) -> Organization:
    """A new incoming secret. The old one stays valid for the grace period, and so does every
    secret rotated out before it, each until its own grace period ends (at most
    MAX_PREVIOUS_SECRETS of them). A zero grace period invalidates every old secret at once."""
    if grace_period is None:
        grace_period = timedelta(seconds=settings.SECRET_ROTATION_GRACE_SECONDS)
    organization = Organization.objects.select_for_update().get(pk=organization.pk)
    now = timezone.now()
    previous = []
    if grace_period > timedelta(0):
        previous = [
            (secret, until)
            for secret, until in selectors.organization_previous_secrets(organization=organization)
            if until > now
            and organization.previous_secret_valid_until
            and now < organization.previous_secret_valid_until
        ]
        if organization.incoming_secret:
            previous.append((organization.incoming_secret, now + grace_period))
        previous = sorted(previous, key=lambda entry: entry[1])[-MAX_PREVIOUS_SECRETS:]
    organization.previous_incoming_secrets = (
        json.dumps([{"secret": s, "validUntil": u.isoformat()} for s, u in previous])
        if previous
        else ""
    )
    organization.previous_secret_valid_until = max((u for _, u in previous), default=None)
    organization.incoming_secret = generate_secret()
    organization.secret_rotated_at = now
    organization.save()
    logger.info(
        "organization.secret_rotated",
        extra={
            "organization": organization.public_id,
            "grace_seconds": int(grace_period.total_seconds()),
            "previous_valid": len(previous),
        },
    )
    return organization


def organization_record_delivery(*, organization: Organization) -> Organization:
    """An authenticated partner delivery arrived: note it, and complete a pending handshake.

    Conditional UPDATEs and no row lock: deliveries of one partner arrive in bursts, and
    must not queue behind each other. `last_delivery_at` moves at most once a second (so
    most deliveries cost no query here).
    """
    now = timezone.now()
    second_ago = now - timedelta(seconds=1)
    last = organization.last_delivery_at
    if last is None or last < second_ago:
        (
            Organization.objects.filter(pk=organization.pk)
            .filter(Q(last_delivery_at__isnull=True) | Q(last_delivery_at__lt=second_ago))
            .update(last_delivery_at=now)
        )
        # Untouched: another process moved it within the second (the organization may be
        # kept in memory: `webhooks.auth.incoming_credentials_remember`).
        organization.last_delivery_at = now
    # An `app` organization (Scenario B) becomes active by its signed hellos, never by a
    # Jira webhook.
    if (
        organization.handshake_status == HandshakeStatus.PENDING
        and organization.connection_type == ConnectionType.JIRA_WEBHOOK
    ):
        activated = Organization.objects.filter(
            pk=organization.pk, handshake_status=HandshakeStatus.PENDING
        ).update(handshake_status=HandshakeStatus.ACTIVE, handshake_activated_at=now)
        if activated:
            organization.handshake_status = HandshakeStatus.ACTIVE
            organization.handshake_activated_at = now
            logger.info(
                "organization.handshake_active", extra={"organization": organization.public_id}
            )
    return organization


@transaction.atomic
def organization_delete(*, organization: Organization) -> None:
    logger.info("organization.deleted", extra={"organization": organization.public_id})
    organization.delete()


def _save_validated(instance):
    instance.full_clean()
    instance.save()
    return instance


def project_mapping_create(*, organization: Organization, **fields: Any) -> ProjectMapping:
    return _save_validated(ProjectMapping(organization=organization, **fields))


def project_mapping_update(*, mapping: ProjectMapping, data: dict[str, Any]) -> ProjectMapping:
    for name, value in data.items():
        setattr(mapping, name, value)
    return _save_validated(mapping)


def field_mapping_create(*, organization: Organization, **fields: Any) -> FieldMapping:
    return _save_validated(FieldMapping(organization=organization, **fields))


def field_mapping_update(*, mapping: FieldMapping, data: dict[str, Any]) -> FieldMapping:
    for name, value in data.items():
        setattr(mapping, name, value)
    return _save_validated(mapping)


def project_mapping_delete(*, mapping: ProjectMapping) -> None:
    logger.info(
        "project_mapping.deleted",
        extra={"organization": mapping.organization.public_id, "mapping": mapping.pk},
    )
    mapping.delete()


def field_mapping_delete(*, mapping: FieldMapping) -> None:
    logger.info(
        "field_mapping.deleted",
        extra={"organization": mapping.organization.public_id, "mapping": mapping.pk},
    )
    mapping.delete()
