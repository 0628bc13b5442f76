"""Processing one Jira event: which organizations' project mappings cover its issue, whether
it is our own echo, and which syncs it calls for.

`event_process` returns a `DeliveryOutcome`; the caller (the webhooks task) records it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import datetime

from django.db.models import Q, QuerySet

from core.rows import instances
from jiraapi.client import JiraClient, counting_calls
from jiraapi.errors import JiraNotFound
from jiraapi.events import (
    ISSUE_CREATED,
    ISSUE_UPDATED,
    WORKLOG_CREATED,
    WORKLOG_DELETED,
    WORKLOG_UPDATED,
    JiraEvent,
)
from organizations.models import ConnectionType, Organization, ProjectMapping
from organizations.selectors import organization_at_stamp, organization_stamps_mapping

from . import echo, engine, peer, relations, worklogs
from .jobs import Job, issue_in_push_scope, job_build
from .leases import issue_column
from .mapping import PULL, PUSH, SIDES, project_mappings_of
from .models import IssueLink, LinkStatus

logger = logging.getLogger(__name__)

DONE, ECHO, IGNORED = "done", "echo", "ignored"
WORKLOG_EVENTS = (WORKLOG_CREATED, WORKLOG_UPDATED, WORKLOG_DELETED)


@dataclass(frozen=True)
class DeliveryOutcome:
    """How processing an event ended: `done`, `echo` or `ignored`, why, and its Jira calls.

    `synced`: the organizations whose pair was synced from the issue read for this event
    (that read covers every mergeable event of the issue received before it)."""

    status: str
    reason: str = ""
    calls: int = 0
    synced: frozenset[int] = frozenset()


# The event types whose changes a later sync of the same issue covers (it reads the issue's
# current state); deletes, comments, links and worklogs keep their own path.
MERGEABLE_TYPES = (ISSUE_CREATED, ISSUE_UPDATED)


def event_mergeable(event: JiraEvent) -> bool:
    """Is the event a plain issue create/update, whose change a sync of its issue that read
    the issue after the event arrived carries along? Not: deletes, comments, issue links
    (a `Link` item or an `issuelinks` change), worklogs, attachments, moves (a `Key` item)."""
    return (
        event.kind in MERGEABLE_TYPES
        and bool(event.issue_id)
        and event.comment is None
        and event.link is None
        and event.worklog is None
        and event.change("key") is None
        and event.change("issuelinks") is None
        and not any(c.field in ("attachment", "issuelinks", "key") for c in event.changes)
    )


def event_process(
    *,
    event: JiraEvent,
    way: str,
    organization: Organization | None = None,
    delivery_id: int | None = None,
    received_at: datetime | None = None,
    covered: dict[int, int] | None = None,
) -> DeliveryOutcome:
    """Run the syncs an event calls for: PUSH for our own Jira's events (every organization
    mapping the project), PULL for a partner's (`organization`'s only).

    `covered`: organization id -> the delivery whose sync of this issue read it after this
    event arrived. A mergeable event (`event_mergeable`) is still pre-checked for each
    organization (its echo locks consumed), but a genuine change is not synced again for
    an organization so covered: the delivery is `done`, merged into that one."""
    synced: set[int] = set()
    with counting_calls() as calls:
        status, reason = _process(
            event=event,
            way=way,
            organization=organization,
            delivery_id=delivery_id,
            received_at=received_at,
            covered=(covered or {}) if event_mergeable(event) else {},
            synced=synced,
        )
    return DeliveryOutcome(
        status=status, reason=reason, calls=calls.count, synced=frozenset(synced)
    )


def peer_message_process(
    *,
    organization: Organization,
    body: bytes,
    delivery_id: int | None = None,
    received_at: datetime | None = None,
) -> DeliveryOutcome:
    """A message from the partner's install (Scenario B): a change to apply to our Jira, or
    the ack of one of ours (`peer.py`)."""
    with counting_calls() as calls:
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise peer.BadMessage("the body must be a JSON object")
            if payload.get("type") == "ack":
                status, reason = peer.peer_ack_apply(
                    organization=organization,
                    payload=payload,
                    started=received_at.timestamp() if received_at else None,
                )
            else:
                status, reason = peer.peer_apply(
                    organization=organization,
                    payload=payload,
                    delivery_id=delivery_id,
                    started=received_at.timestamp() if received_at else None,
                )
        except (ValueError, KeyError, TypeError) as exc:  # BadMessage is a ValueError
            status, reason = IGNORED, f"malformed message from the partner's install: {exc}"
            logger.warning("peer.bad_message", extra={"delivery": delivery_id, "error": str(exc)})
    return DeliveryOutcome(status=status, reason=reason, calls=calls.count)


def _mappings(
    *, event: JiraEvent, way: str, organization: Organization | None
) -> list[ProjectMapping]:
    """The project mappings (one per organization) that cover the event's issue.

    PULL: of `organization`, read with the delivery's claim; PUSH: of every organization
    mapping the project, found by one light query (ids and stamps). Both then come from this
    process's copies of those configuration versions (`organization_at_stamp`,
    `project_mappings_of`)."""
    if not event.project_key:  # server comment events name only the issue id: go by its link
        return _mappings_by_link(event=event, way=way, organization=organization)
    field = "local_project_key" if way == PUSH else "remote_project_key"
    if way == PULL:
        organizations = [organization] if organization is not None else []
    else:
        organizations = [
            organization_at_stamp(pk=pk, stamp=stamp)
            for pk, stamp in organization_stamps_mapping(local_project_key=event.project_key)
        ]
    found = []
    for org in organizations:
        if not org.enabled or not (
            org.remote_base_url or org.connection_type == ConnectionType.APP
        ):
            continue
        found += [m for m in project_mappings_of(org) if getattr(m, field) == event.project_key]
    return found


def _served(organizations: QuerySet[Organization]) -> QuerySet[Organization]:
    """An organization needs its partner's Jira (Scenario A) or its partner's install (B)."""
    return organizations.exclude(Q(remote_base_url="") & ~Q(connection_type=ConnectionType.APP))


def _mappings_by_link(
    *, event: JiraEvent, way: str, organization: Organization | None
) -> list[ProjectMapping]:
    """`_mappings` for an event naming no project: by the issue's links (read afresh)."""
    queryset = ProjectMapping.objects.select_related("organization").filter(
        organization__in=_served(Organization.objects.filter(enabled=True))
    )
    if way == PULL:
        queryset = queryset.filter(organization=organization)
    side = SIDES[way][0]
    queryset = queryset.filter(**{f"organization__issue_links__{side}_issue_id": event.issue_id})
    found = {m.organization_id: m for m in queryset}
    return list(found.values())


def _links_of(*, side: str, issue_id: str, organization: Organization | None) -> list[IssueLink]:
    """The links of the issue `issue_id` of `side` (of `organization`, if given), written as
    SQL: the ORM would compile the SELECT of every column for each delivery, at more than
    the cost of running it."""
    sql = f"SELECT * FROM {IssueLink._meta.db_table} WHERE {issue_column(side)} = %s"  # noqa: S608
    params: list = [issue_id]
    if organization is not None:
        sql += " AND organization_id = %s"
        params.append(organization.pk)
    return instances(IssueLink, sql, params)


def _process(
    *,
    event: JiraEvent,
    way: str,
    organization: Organization | None,
    delivery_id: int | None,
    received_at: datetime | None,
    covered: dict[int, int],
    synced: set[int],
) -> tuple[str, str]:
    moved = event.change("key")
    if moved is not None and moved.to_string and event.issue_id:
        _follow_move(event=event, way=way, organization=organization, new_key=moved.to_string)
    if way == PULL and (
        organization is None or not (organization.enabled and organization.is_bidirectional)
    ):
        return IGNORED, "two-way sync is off for this organization"
    when = event.timestamp or received_at
    if when and received_at and when > received_at:
        when = received_at  # the sender's clock is ahead of ours: count from receipt
    started = when.timestamp() if when else None
    if event.link is not None:
        return _process_link_event(
            event=event,
            way=way,
            organization=organization,
            delivery_id=delivery_id,
            started=started,
        )
    if event.worklog is not None or event.kind in WORKLOG_EVENTS:
        return worklogs.worklog_event_process(
            event=event,
            way=way,
            organization=organization,
            delivery_id=delivery_id,
            started=started,
        )
    if not event.issue_id:
        return IGNORED, "the delivery names no issue"
    mappings = _mappings(event=event, way=way, organization=organization)
    moved_out = 0
    if moved is not None and moved.to_string:
        moved_out = _moved_out(
            event=event,
            way=way,
            organization=organization,
            staying={m.organization_id for m in mappings},
            old_key=moved.from_string or "",
            delivery_id=delivery_id,
            started=started,
        )
    if not mappings:
        if moved_out:
            return DONE, ""
        side = "local" if way == PUSH else "partner"
        return IGNORED, f"{side} project {event.project_key or '?'} is not mapped"
    source_side = SIDES[way][0]
    # Did we delete this issue ourselves (a partner deleted theirs, its policy deletes ours)?
    deleted_for = (
        echo.echo_deletion_by(side=source_side, issue_id=event.issue_id)
        if event.is_delete
        else None
    )
    reader = _SourceReader(gone=deleted_for is not None)
    echoes = refused = 0
    merged: list[int] = []
    moved_notes = _moved_between(event=event, way=way, mappings=mappings) if moved else {}
    # The issue's links, read once for the pre-checks and (PUSH) the partner it came from.
    # PULL: a partner's issue ids are its site's, so only this organization's.
    links = _links_of(
        side=source_side,
        issue_id=event.issue_id,
        organization=organization if way == PULL else None,
    )
    for project_mapping in mappings:
        job = job_build(
            project_mapping=project_mapping,
            way=way,
            issue_id=event.issue_id,
            issue_key=event.issue_key,
            comments_changed=event.comment is not None,
            deleted_for=deleted_for,
            fresh=True,  # `_mappings`: the organization as of this delivery
            links=links,
        )
        check = echo.echo_precheck(
            organization=job.organization,
            side=job.source_side,
            event=event,
            source_names={p.source(way) for p in job.pairs},
            client=job.source,
            links=links,
        )
        reason = check.reason
        if (
            reason == echo.NO_MAPPED_CHANGE
            and event.change("issuelinks") is not None
            and relations.relation_change_pending(
                organization=job.organization,
                side=job.source_side,
                issue_id=event.issue_id,
                issue_fields=event.issue_fields,
            )
        ):
            reason = None  # a link change (Cloud's `Link` item) with no link event of its own
            job = replace(job, links_changed=True)
        if reason is not None:
            echoes += reason.startswith("echo")
            _record_nothing_to_do(
                job,
                reason,
                delivery_id=delivery_id,
                started=started,
                notes=moved_notes.get(project_mapping.organization_id, ()),
            )
            continue
        if job.organization.pk in covered:
            merged.append(covered[job.organization.pk])
            continue  # a sync that read the issue after this event arrived carried it
        issue = reader.read(job.source, event.issue_id)
        job = replace(job, issue=issue, issue_key=(issue or {}).get("key") or job.issue_key)
        if event.is_delete and issue is not None:
            refused += 1
            _record_refused_delete(job, delivery_id=delivery_id)
            continue
        scoped = way == PUSH and project_mapping.push_jql and issue is not None
        if scoped and not issue_in_push_scope(job.source, project_mapping, job):
            continue
        notes = (*check.notes, *moved_notes.get(project_mapping.organization_id, ()))
        if job.organization.is_app:
            peer.peer_publish(job, delivery_id=delivery_id, started=started, notes=notes)
        else:
            engine.sync_issue(job, delivery_id=delivery_id, started=started, notes=notes)
            synced.add(job.organization.pk)
    if echoes == len(mappings):
        return ECHO, ""
    if merged and echoes + len(merged) == len(mappings):
        return DONE, "merged into delivery " + ", ".join(str(n) for n in sorted(set(merged)))
    if refused:
        side = "local" if way == PUSH else "partner"
        return IGNORED, (
            f"delete refused: the {side} issue {event.issue_key or event.issue_id} still exists "
            "at its site (a delete is applied only once its site answers 404); nothing changed"
        )
    return DONE, ""


def _process_link_event(
    *,
    event: JiraEvent,
    way: str,
    organization: Organization | None,
    delivery_id: int | None,
    started: float | None,
) -> tuple[str, str]:
    """An issue link made or unmade (`issuelink_*`): for each organization syncing one of
    its issues, the pair whose links changed is synced (its links mirrored, `relations.py`);
    our own copies coming back, and links to issues not synced, cost no Jira call."""
    side = SIDES[way][0]
    link = event.link
    ends = [link.source_issue_id, link.destination_issue_id]
    orgs = Organization.objects.filter(
        enabled=True, **{f"issue_links__{side}_issue_id__in": ends}
    ).distinct()
    if way == PULL:
        orgs = orgs.filter(pk=organization.pk)
    reasons: list[str] = []
    synced = 0
    for org in orgs:
        if org.is_app:
            continue  # Scenario B: not mirrored yet
        pair, reason = relations.relation_event_pair(organization=org, side=side, link=link)
        if pair is None:
            reasons.append(reason)
            continue
        issue_id = getattr(pair, f"{side}_issue_id")
        key = getattr(pair, f"{side}_issue_key") or ""
        field = "local_project_key" if way == PUSH else "remote_project_key"
        project_mapping = ProjectMapping.objects.filter(
            organization=org, **{field: key.rsplit("-", 1)[0]}
        ).first()
        if project_mapping is None:
            reasons.append(f"project of {key or issue_id} is not mapped")
            continue
        job = job_build(project_mapping=project_mapping, way=way, issue_id=issue_id, issue_key=key)
        try:
            issue = job.source.get_issue(issue_id)
        except JiraNotFound:
            reasons.append(f"{key or issue_id} is gone")
            continue
        job = replace(job, issue=issue, issue_key=issue.get("key") or key, links_changed=True)
        engine.sync_issue(job, delivery_id=delivery_id, started=started)
        synced += 1
    if synced:
        return DONE, ""
    if reasons and all(r.startswith("echo") for r in reasons):
        return ECHO, ""
    return IGNORED, "; ".join(reasons) or "the link's issues are not synced"


def _follow_move(
    *, event: JiraEvent, way: str, organization: Organization | None, new_key: str
) -> None:
    """The issue moved to another project (its changelog's `Key` item): its id stays, so its
    links stay; they take the new key. Only events carrying such an item get here."""
    side = SIDES[way][0]
    if way == PULL and organization is None:
        return
    links = IssueLink.objects.filter(**{f"{side}_issue_id": event.issue_id})
    if way == PULL:
        links = links.filter(organization=organization)
    updated = links.exclude(**{f"{side}_issue_key": new_key}).update(
        **{f"{side}_issue_key": new_key}
    )
    if updated:
        logger.info(
            "sync.issue_moved",
            extra={"issue": event.issue_id, "key": new_key, "side": side, "links": updated},
        )


def _moved_out(
    *,
    event: JiraEvent,
    way: str,
    organization: Organization | None,
    staying: set[int],
    old_key: str,
    delivery_id: int | None,
    started: float | None,
) -> int:
    """The issue moved (its changelog's `Key` item) to a project that the organizations in
    `staying` map and no other: every other organization's open pair of it gets its delete
    policy, as if the issue were deleted (`engine.sync_moved_out`). The site is asked once
    where the issue is now, so a late event never closes a pair whose issue moved back.
    Returns how many pairs were closed. Only events carrying a `Key` item get here."""
    side = SIDES[way][0]
    links = (
        IssueLink.objects.select_related("organization")
        .filter(status=LinkStatus.LINKED, organization__enabled=True)
        .filter(**{f"{side}_issue_id": event.issue_id})
        .exclude(organization_id__in=staying)
    )
    if way == PULL:
        links = links.filter(organization=organization)
    closed = 0
    where: dict[str, str] = {}  # the issue's project now, read once
    key_field = "local_project_key" if way == PUSH else "remote_project_key"
    for link in links:
        project_mappings = list(link.organization.project_mappings.all())
        if not project_mappings or (link.organization.is_app and way == PUSH):
            continue
        old_project = old_key.rpartition("-")[0]
        mapping = next(
            (m for m in project_mappings if getattr(m, key_field) == old_project),
            project_mappings[0],
        )
        job = job_build(
            project_mapping=mapping, way=way, issue_id=event.issue_id, issue_key=event.issue_key
        )
        if "project" not in where:
            try:
                issue = job.source.get_issue(event.issue_id, fields=["project"])
            except JiraNotFound:
                return closed  # deleted since: its delete event decides
            where["project"] = str(((issue.get("fields") or {}).get("project") or {}).get("key"))
            where["key"] = str(issue.get("key") or event.issue_key)
        if any(getattr(m, key_field) == where["project"] for m in project_mappings):
            continue  # in a mapped project (again): the ordinary sync's business
        job = replace(job, issue_key=where["key"])
        engine.sync_moved_out(
            job,
            link,
            moved_to=where["project"],
            old_key=old_key,
            delivery_id=delivery_id,
            started=started,
        )
        closed += 1
    return closed


def _moved_between(
    *, event: JiraEvent, way: str, mappings: list[ProjectMapping]
) -> dict[int, tuple[str, ...]]:
    """Per organization, a note when the issue moved to a mapped project whose partner
    project is not the one its copy is in: Jira's REST API cannot move issues (Cloud has no
    single-issue move), so the copy stays where it is and the pair keeps syncing."""
    side, target = SIDES[way]
    notes: dict[int, tuple[str, ...]] = {}
    links = {
        link.organization_id: link
        for link in IssueLink.objects.filter(
            organization_id__in=[m.organization_id for m in mappings],
            status=LinkStatus.LINKED,
            **{f"{side}_issue_id": event.issue_id},
        )
    }
    for m in mappings:
        link = links.get(m.organization_id)
        wanted = m.remote_project_key if way == PUSH else m.local_project_key
        copy_key = getattr(link, f"{target}_issue_key", "") if link else ""
        if copy_key and copy_key.rpartition("-")[0] != wanted:
            notes[m.organization_id] = (
                f"{event.issue_key} moved to {event.project_key}, whose mapped project is "
                f"{wanted}; its copy {copy_key} stays where it is (Jira's REST API cannot move "
                "an issue to another project) and the pair keeps syncing",
            )
    return notes


@dataclass
class _SourceReader:
    """The source issue, read once (now) for every organization that needs it.

    Read for deletes too: a delete event is believed only when the source site confirms the
    issue is gone (404); an issue the site still returns is never deleted anywhere.
    """

    gone: bool = False  # known gone without asking (we deleted it ourselves)
    issue: dict | None = None
    done: bool = False

    def read(self, client: JiraClient, issue_id: str) -> dict | None:
        if not self.done and not self.gone:
            self.done = True
            try:
                self.issue = client.get_issue(issue_id)
            except JiraNotFound:
                self.gone = True  # confirmed gone (or gone since the event): a delete
        return None if self.gone else self.issue


def _record_refused_delete(job: Job, *, delivery_id: int | None) -> None:
    message = f"delete refused: {job.issue_key} still exists at its site; nothing was changed"
    change = engine.Change(action=engine.SKIPPED, fields=["delete refused"], notes=[message])
    engine.record(job, None, change, delivery_id=delivery_id)
    logger.warning(
        "delivery.delete_refused",
        extra={
            "delivery": delivery_id,
            "organization": job.organization.public_id,
            "issue": job.issue_key,
        },
    )


def _record_nothing_to_do(
    job: Job, reason: str, *, delivery_id, started, notes: tuple[str, ...] = ()
) -> None:
    is_echo = reason.startswith("echo")
    change = engine.Change(action="echo" if is_echo else "none", notes=list(notes))
    engine.record(job, None, change, delivery_id=delivery_id, started=started)
    logger.info(
        "delivery.echo_suppressed" if is_echo else "delivery.no_change",
        extra={
            "delivery": delivery_id,
            "organization": job.organization.public_id,
            "issue": job.issue_key,
            "reason": reason,
        },
    )


def issue_catch_up(
    *,
    project_mapping: ProjectMapping,
    way: str,
    issue_id: str,
    issue_key: str,
    comments_changed: bool,
    dry_run: bool = False,
    note: str = "",
) -> engine.Change | None:
    """Sync one issue that changed without its webhook reaching us (reconciliation's
    catch-up), by the path a webhook's event takes from the point the event is known to be
    genuine: the issue read now, the push scope, then the engine (echo locks, the pair's
    lease) or, for a partner install, the outbox. None: nothing to do (gone, out of scope).
    `dry_run`: the plan only."""
    job = job_build(
        project_mapping=project_mapping,
        way=way,
        issue_id=issue_id,
        issue_key=issue_key,
        comments_changed=comments_changed,
    )
    try:
        issue = job.source.get_issue(issue_id)
    except JiraNotFound:
        return None  # deleted since the search: its delete is a webhook's (or drift's) job
    job = replace(job, issue=issue, issue_key=issue.get("key") or job.issue_key)
    if (
        way == PUSH
        and project_mapping.push_jql
        and not issue_in_push_scope(job.source, project_mapping, job)
    ):
        return None
    notes = (note,) if note else ()
    if job.organization.is_app:
        return peer.peer_preview(job) if dry_run else peer.peer_publish(job, notes=notes)
    return engine.preview(job) if dry_run else engine.sync_issue(job, notes=notes)
