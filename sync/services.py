"""Processing a stored delivery: which issue it is about, whether it is our own echo, and
which syncs it calls for."""

from __future__ import annotations

import json
import logging
from typing import Any

from jiraapi.client import JiraClient
from jiraapi.errors import JiraNotFound
from jiraapi.events import FieldChange, JiraEvent
from organizations.models import Organization, ProjectMapping
from webhooks.models import DeliverySource, DeliveryStatus, WebhookDelivery

from . import echo, engine, mapping, sites
from .mapping import PULL, PUSH
from .models import CommentLink, IssueLink, LinkStatus
from .sites import local_client, remote_client

logger = logging.getLogger(__name__)


def delivery_issue_ref(payload: dict) -> tuple[str, str, str]:
    """(issue id, key, project key) of a delivery; server comment events name only the id."""
    event = JiraEvent.parse(payload)
    return event.issue_id, event.issue_key, event.project_key


def comment_part(payload: dict) -> tuple[str, dict] | None:
    """("created"|"updated"|"deleted", comment) when the event is about a comment."""
    comment = JiraEvent.parse(payload).comment
    return None if comment is None else (comment.action, dict(comment.raw))


def _changelog_from(name: str, item: FieldChange) -> Any:
    """The value a changelog item says the field had before, in canonical form."""
    if name in ("assignee", "reporter"):
        return {"id": item.from_value} if item.from_value else None
    if name == "duedate":
        return item.from_value
    if name == "labels":
        return sorted((item.from_string or "").split())
    return item.from_string


def changed_fields(
    payload: dict, source_names: set[str]
) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """The mapped fields the event's changelog names: their new values, their old values.

    The bool is False when the changelog names a field we cannot identify (a custom field
    without `fieldId` in an older payload): such an event is never taken for an echo.
    """
    event = JiraEvent.parse(payload)
    changed: dict[str, Any] = {}
    before: dict[str, Any] = {}
    for item in event.changes:
        if item.identified and item.field in source_names:
            changed[item.field] = mapping.read_value(item.field, event.issue_fields)
            before[item.field] = _changelog_from(item.field, item)
    return changed, before, event.all_changes_identified


# --- the pre-check: our own echoes cost no Jira call ---------------------------------------


def precheck(
    *, organization: Organization, way: str, issue_id: str, payload: dict, client: JiraClient
) -> str | None:
    """Why nothing needs doing for this organization (echo / no mapped change), or None."""
    source_side = engine.SIDES[way][0]
    event = payload.get("webhookEvent")
    link = IssueLink.objects.filter(
        organization=organization, **{f"{source_side}_issue_id": issue_id}
    ).first()
    if event == "jira:issue_deleted":
        if link is None or link.status == LinkStatus.DELETED:
            return "echo: the issue is not linked (or its link is already closed)"
        return None
    if event == "jira:issue_created":
        if link is not None and link.origin != source_side:
            return "echo: we created this issue"
        if link is not None and link.status == LinkStatus.LINKED:
            return "the issue is already linked (a repeated create event)"
        if IssueLink.objects.filter(organization=organization, status=LinkStatus.CREATING).exists():
            tag = client.get_property(issue_id, engine.LINK_PROPERTY)
            if isinstance(tag, dict) and tag.get("origin") and tag.get("origin") != source_side:
                return "echo: this issue carries our tag (we are creating it)"
        return None
    if link is not None and link.status == LinkStatus.DELETED:
        return "the pair is no longer synced (one of its issues was deleted)"
    if link is None or link.status != LinkStatus.LINKED:
        return None  # unknown so far: sync it (it may have just entered the shared scope)
    source_names = {p.source(way) for p in mapping.field_pairs(organization, way)}
    changed, before, identifiable = changed_fields(payload, source_names)
    genuine = set(changed)
    if changed:
        genuine -= echo.echo_consume(
            organization=organization,
            side=source_side,
            issue_id=issue_id,
            values=changed,
            agreed=link.side_state(source_side),
            changed_from=before,
        )
    comment = comment_part(payload)
    comment_state = None  # "genuine" | "echo" | "in step"
    if comment is not None:
        kind, body = comment
        cid = str(body.get("id") or "")
        known = CommentLink.objects.filter(
            issue_link=link, **{f"{source_side}_comment_id": cid}
        ).first()
        if kind == "deleted":
            comment_state = "genuine" if known is not None else "echo"
        elif echo.echo_consume(
            organization=organization,
            side=source_side,
            issue_id=issue_id,
            values={"comment": body.get("body")},
        ):
            comment_state = "echo"
        elif known is not None and getattr(known, f"{source_side}_hash") == (
            engine.comment_text_hash(body.get("body"))
        ):
            comment_state = "in step"  # e.g. the second event Jira sends for one comment
        else:
            comment_state = "genuine"
    if genuine or comment_state == "genuine" or not identifiable:
        return None
    if changed or comment_state == "echo":
        return "echo: every change in the event is our own write coming back"
    if comment_state == "in step":
        return "the comment is already in step"
    return "no mapped field changed"


# --- processing a delivery ------------------------------------------------------------------


def delivery_process(*, delivery: WebhookDelivery) -> str:
    """Run the syncs a delivery calls for; returns the delivery's final status.

    The Jira calls it made are left in `delivery.calls` (added to earlier attempts').
    """
    before = sites.calls_made()
    try:
        return _process(delivery)
    finally:
        delivery.calls += sites.calls_made() - before


def _process(delivery: WebhookDelivery) -> str:
    payload = json.loads(delivery.body)
    if delivery.source == DeliverySource.LOCAL:
        return sync_delivery(delivery=delivery, payload=payload, way=PUSH)
    organization = delivery.organization
    if organization is None or not (organization.enabled and organization.is_bidirectional):
        delivery.last_error = "two-way sync is off for this organization"
        return DeliveryStatus.IGNORED
    return sync_delivery(delivery=delivery, payload=payload, way=PULL)


def _mappings(
    *, delivery: WebhookDelivery, way: str, project_key: str, issue_id: str
) -> list[ProjectMapping]:
    """The project mappings (one per organization) that cover the delivery's issue."""
    queryset = ProjectMapping.objects.select_related("organization").filter(
        organization__enabled=True
    )
    if way == PULL:
        queryset = queryset.filter(organization=delivery.organization)
    if project_key:
        field = "local_project_key" if way == PUSH else "remote_project_key"
        queryset = queryset.filter(**{field: project_key})
    else:  # server comment events name only the issue id: go by its link
        side = engine.SIDES[way][0]
        queryset = queryset.filter(**{f"organization__issue_links__{side}_issue_id": issue_id})
    found = {m.organization_id: m for m in queryset.exclude(organization__remote_base_url="")}
    return list(found.values())


def sync_delivery(*, delivery: WebhookDelivery, payload: dict, way: str) -> str:
    started = payload.get("timestamp")
    started = (
        started / 1000 if isinstance(started, int | float) else delivery.received_at.timestamp()
    )
    issue_id, issue_key, project_key = delivery_issue_ref(payload)
    if not issue_id:
        delivery.last_error = "the delivery names no issue"
        return DeliveryStatus.IGNORED
    mappings = _mappings(delivery=delivery, way=way, project_key=project_key, issue_id=issue_id)
    if not mappings:
        side = "local" if way == PUSH else "partner"
        delivery.last_error = f"{side} project {project_key or '?'} is not mapped"
        return DeliveryStatus.IGNORED
    deleted = payload.get("webhookEvent") == "jira:issue_deleted"
    issue: dict | None = None
    read = False
    echoes = 0
    for project_mapping in mappings:
        organization = project_mapping.organization
        source = local_client() if way == PUSH else remote_client(organization)
        target = remote_client(organization) if way == PUSH else local_client()
        reason = precheck(
            organization=organization, way=way, issue_id=issue_id, payload=payload, client=source
        )
        job = engine.Job(
            organization=organization,
            project_mapping=project_mapping,
            way=way,
            source=source,
            target=target,
            issue_id=issue_id,
            issue_key=issue_key or issue_id,
            comments_changed=comment_part(payload) is not None,
        )
        if reason is not None:
            echoes += reason.startswith("echo")
            change = engine.Change(action="echo" if reason.startswith("echo") else "none")
            engine.record(job, None, change, delivery=delivery, started=started)
            logger.info(
                "delivery.echo_suppressed" if reason.startswith("echo") else "delivery.no_change",
                extra={
                    "delivery": delivery.pk,
                    "organization": organization.public_id,
                    "issue": issue_key or issue_id,
                    "reason": reason,
                },
            )
            continue
        if not read and not deleted:
            read = True
            try:
                issue = source.get_issue(issue_id)
            except JiraNotFound:
                deleted = True  # gone since the event: treat as deleted
        if issue is not None:
            job.issue_key = issue["key"]
        job.issue = None if deleted else issue
        in_scope = not (way == PUSH and project_mapping.push_jql and issue is not None)
        if not in_scope and not _in_push_scope(source, project_mapping, job):
            continue
        engine.sync_issue(job, delivery=delivery, started=started)
    if echoes == len(mappings):
        return DeliveryStatus.ECHO
    return DeliveryStatus.DONE


def _in_push_scope(source: JiraClient, project_mapping: ProjectMapping, job: engine.Job) -> bool:
    """An issue already linked stays linked; a new one must match the mapping's JQL."""
    linked = IssueLink.objects.filter(
        organization=project_mapping.organization, local_issue_id=job.issue_id
    ).exclude(remote_issue_id=None)
    if linked.exists():
        return True
    jql = f"({project_mapping.push_jql}) AND key = {job.issue_key}"
    return bool(list(source.search(jql, fields=["summary"], page_size=1)))
