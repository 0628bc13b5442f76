"""Processing a stored delivery: what it is about, and which sync runs for it."""

from __future__ import annotations

import json
import logging
import re

from django.db.models import Q

from organizations.models import ProjectMapping
from syncapp.jira.errors import JiraNotFound
from webhooks.models import DeliverySource, DeliveryStatus, WebhookDelivery

from . import push
from .sites import local_client, remote_client

logger = logging.getLogger(__name__)

_COMMENT_SELF = re.compile(r"/issue/(\d+)/comment/")


def delivery_issue_ref(payload: dict) -> tuple[str, str, str]:
    """(issue id, key, project key) of a delivery; server comment events name only the id."""
    issue = payload.get("issue") or {}
    fields = issue.get("fields") or {}
    issue_id = str(issue.get("id") or "")
    if not issue_id:
        match = _COMMENT_SELF.search(str((payload.get("comment") or {}).get("self", "")))
        issue_id = match.group(1) if match else ""
    return (
        issue_id,
        str(issue.get("key") or ""),
        str((fields.get("project") or {}).get("key") or ""),
    )


def is_comment_event(payload: dict) -> bool:
    return payload.get("webhookEvent") in push.COMMENT_EVENTS or (
        payload.get("issue_event_type_name") in push.COMMENT_EVENT_TYPES
    )


def delivery_process(*, delivery: WebhookDelivery) -> str:
    """Run the sync a delivery calls for; returns the delivery's final status."""
    payload = json.loads(delivery.body)
    if delivery.source == DeliverySource.LOCAL:
        return push_delivery(delivery=delivery, payload=payload)
    from . import pull  # noqa: PLC0415  (the reverse direction)

    return pull.pull_delivery(delivery=delivery, payload=payload)


def push_delivery(*, delivery: WebhookDelivery, payload: dict) -> str:
    started = payload.get("timestamp")
    started = (
        started / 1000 if isinstance(started, int | float) else delivery.received_at.timestamp()
    )
    issue_id, issue_key, project_key = delivery_issue_ref(payload)
    if not issue_id:
        delivery.last_error = "the delivery names no issue"
        return DeliveryStatus.IGNORED
    source = local_client()
    deleted = payload.get("webhookEvent") == "jira:issue_deleted"
    issue = None
    if not deleted:
        try:
            issue = source.get_issue(issue_id)
        except JiraNotFound:
            deleted = True  # gone since the event: treat as deleted
    if issue is not None:
        issue_key = issue["key"]
        project_key = issue["fields"]["project"]["key"]
    mappings = ProjectMapping.objects.select_related("organization").filter(
        Q(local_project_key=project_key) if project_key else Q(pk__in=[]),
        organization__enabled=True,
    )
    if deleted and not project_key:
        mappings = ProjectMapping.objects.select_related("organization").filter(
            organization__enabled=True,
            organization__issue_links__local_issue_id=issue_id,
        )
    mappings = list(mappings.exclude(organization__remote_base_url=""))
    if not mappings:
        delivery.last_error = f"local project {project_key or '?'} is not mapped to any partner"
        return DeliveryStatus.IGNORED
    comments_changed = is_comment_event(payload)
    for project_mapping in mappings:
        organization = project_mapping.organization
        if (
            project_mapping.push_jql
            and issue is not None
            and not _matches(source, project_mapping.push_jql, issue_key, organization, issue_id)
        ):
            continue
        ctx = push.PushContext(
            organization=organization,
            project_mapping=project_mapping,
            source=source,
            target=remote_client(organization),
            issue=issue,
            issue_id=issue_id,
            issue_key=issue_key,
            comments_changed=comments_changed,
        )
        push.push_issue(ctx, delivery=delivery, started=started)
    return DeliveryStatus.DONE


def _matches(source, jql: str, issue_key: str, organization, issue_id: str) -> bool:
    """An issue already linked stays linked; a new one must match the mapping's JQL."""
    linked = organization.issue_links.filter(local_issue_id=issue_id).exclude(remote_issue_id=None)
    if linked.exists():
        return True
    found = list(source.search(f"({jql}) AND key = {issue_key}", fields=["summary"], page_size=1))
    return bool(found)
